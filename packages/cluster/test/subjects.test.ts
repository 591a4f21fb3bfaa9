import { describe, expect, it } from 'vitest'
import { checkPrefix, keyTokens, recordSubject, subjectToken } from '../src/index.js'

describe('subjectToken', () => {
  it.each([
    ['Dog', 'Dog'],
    ['a_b-c9', 'a_b-c9'],
    ['', '~'],
    ['kitchen.temp', 'kitchen~2Etemp'],
    ['a b', 'a~20b'],
    ['*', '~2A'],
    ['>', '~3E'],
    ['~', '~7E'],
    ['é', '~C3~A9'],
  ])('encodes %j as %j', (text, token) => {
    expect(subjectToken(text)).toBe(token)
  })

  it('never yields a token NATS refuses, and keeps distinct texts distinct', () => {
    const texts = ['', '~', '~~', '.', 'a.b', 'a~2Eb', 'x'.repeat(64), 'x'.repeat(65), '\u0000', '\t']
    const tokens = texts.map(subjectToken)
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_~-]+$/)
    expect(new Set(tokens).size).toBe(texts.length)
  })

  it('hashes tokens longer than 64 characters', () => {
    const token = subjectToken('y'.repeat(200))
    expect(token).toMatch(/^~h[A-Za-z0-9_-]{22}$/)
    expect(subjectToken('y'.repeat(200))).toBe(token)
    expect(subjectToken('y'.repeat(201))).not.toBe(token)
  })
})

describe('recordSubject', () => {
  it('splits string ids on / so topic levels become tokens', () => {
    expect(recordSubject('proj', 'm', '__topics', 'sensors/kitchen/temp')).toBe(
      'proj.m.__topics.sensors.kitchen.temp',
    )
    expect(recordSubject('proj', 'r', 'Dog', '/a//b')).toBe('proj.r.Dog.~.a.~.b')
  })

  it('names numbers and array keys element by element', () => {
    expect(recordSubject('p', 'r', 'Dog', 42)).toBe('p.r.Dog.42')
    expect(recordSubject('p', 'r', '__state.mqtt-inflight', ['client/1', 7])).toBe(
      'p.r.__state~2Emqtt-inflight.client~2F1.7',
    )
    expect(keyTokens(['a', 1])).toEqual(['a', '1'])
  })
})

describe('checkPrefix', () => {
  it('accepts stream-safe names and refuses the rest', () => {
    expect(checkPrefix('proj-1')).toBe('proj-1')
    for (const bad of ['', 'a.b', 'a b', 'a*', 'x'.repeat(33)])
      expect(() => checkPrefix(bad)).toThrow(TypeError)
  })
})
