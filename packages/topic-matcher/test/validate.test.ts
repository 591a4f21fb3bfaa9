import {
  assertTopicFilter,
  assertTopicName,
  TopicError,
  validateTopicFilter,
  validateTopicName,
} from '@proj/topic-matcher'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { referenceValidFilter, referenceValidName } from './reference.js'

const long = (n: number, unit = 'a'): string => unit.repeat(n)

describe('validateTopicName', () => {
  const valid: Array<[string, string]> = [
    ['sport/tennis/player1', 'plain levels'],
    ['/', 'two empty levels are allowed [MQTT-4.7.1-3 note: empty levels]'],
    ['a//b', 'an empty middle level'],
    ['/finance', 'a leading separator makes an empty first level'],
    ['$SYS/broker/load', '$-topics are valid names'],
    ['sport tennis', 'spaces are allowed'],
    ['日本/🐶', 'any Unicode'],
    [long(65535), 'exactly 65535 bytes [MQTT-4.7.3-3]'],
    [`${long(32767, 'é')}a`, '65535 bytes of two-byte characters'],
  ]
  for (const [topic, why] of valid) {
    it(`accepts ${why}`, () => {
      expect(validateTopicName(topic)).toEqual({ ok: true })
    })
  }

  const invalid: Array<[string, string, string]> = [
    ['', 'TOPIC_EMPTY', '[MQTT-4.7.3-1]'],
    ['sport/+', 'TOPIC_WILDCARD_IN_NAME', '[MQTT-4.7.0-1]'],
    ['sport/#', 'TOPIC_WILDCARD_IN_NAME', '[MQTT-4.7.0-1]'],
    ['a+b', 'TOPIC_WILDCARD_IN_NAME', '[MQTT-4.7.0-1] even inside a level'],
    ['a\u0000b', 'TOPIC_NULL_CHARACTER', '[MQTT-4.7.3-2]'],
    [long(65536), 'TOPIC_TOO_LONG', '[MQTT-4.7.3-3]'],
    [long(21846, '€'), 'TOPIC_TOO_LONG', '[MQTT-4.7.3-3] counted in UTF-8 bytes, not characters'],
    ['a\ud800', 'TOPIC_INVALID_UTF8', '[MQTT-1.5.4-1] lone high surrogate'],
    ['\udc00a', 'TOPIC_INVALID_UTF8', '[MQTT-1.5.4-1] lone low surrogate'],
  ]
  for (const [topic, code, clause] of invalid) {
    it(`rejects with ${code} ${clause}`, () => {
      const result = validateTopicName(topic)
      expect(result.ok).toBe(false)
      expect(result).toMatchObject({ code, reason: expect.stringContaining('[MQTT-') })
    })
  }

  it('agrees with the reference on random strings', () => {
    const alphabet = fc.constantFrom(
      'a',
      '/',
      '+',
      '#',
      '$',
      '\u0000',
      'é',
      '\ud83d',
      '\udc36',
      '\ud83d\udc36',
    )
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 12 }), (parts) => {
        const topic = parts.join('')
        expect(validateTopicName(topic).ok).toBe(referenceValidName(topic))
      }),
      { seed: 42, numRuns: 3000 },
    )
  })
})

describe('validateTopicFilter', () => {
  const valid: Array<[string, string]> = [
    ['sport/tennis/player1/#', '[MQTT-4.7.1-1] # after a separator, last'],
    ['#', '[MQTT-4.7.1-1] # on its own'],
    ['sport/#', '# matches the parent too'],
    ['+', '[MQTT-4.7.1-2] + on its own'],
    ['+/tennis/#', '+ and # together'],
    ['sport/+/player1', '+ in the middle'],
    ['/+', '+ after an empty level'],
    ['+/+', 'two + levels'],
    ['a//#', 'empty levels'],
    ['$SYS/#', '$ filters'],
    ['$share/group/a/#', 'a shared subscription (§4.8.2)'],
    ['$share/g/+', 'a shared subscription with +'],
    ['$share/g//', 'a shared subscription of an empty-level filter'],
    ['$share', 'just $share is an ordinary filter'],
    ['$shared/x', 'a $shared prefix is an ordinary filter'],
    [long(65535), 'exactly 65535 bytes'],
  ]
  for (const [filter, why] of valid) {
    it(`accepts ${JSON.stringify(filter.slice(0, 30))}: ${why}`, () => {
      expect(validateTopicFilter(filter)).toEqual({ ok: true })
    })
  }

  const invalid: Array<[string, string, string]> = [
    ['', 'TOPIC_EMPTY', '[MQTT-4.7.3-1]'],
    ['sport/tennis#', 'TOPIC_INVALID_MULTI_LEVEL_WILDCARD', '[MQTT-4.7.1-1] # not after a separator'],
    ['sport/tennis/#/ranking', 'TOPIC_INVALID_MULTI_LEVEL_WILDCARD', '[MQTT-4.7.1-1] # not last'],
    ['##', 'TOPIC_INVALID_MULTI_LEVEL_WILDCARD', '[MQTT-4.7.1-1]'],
    ['#/', 'TOPIC_INVALID_MULTI_LEVEL_WILDCARD', '[MQTT-4.7.1-1]'],
    ['sport+', 'TOPIC_INVALID_SINGLE_LEVEL_WILDCARD', '[MQTT-4.7.1-2] + not a whole level'],
    ['sport/+tennis', 'TOPIC_INVALID_SINGLE_LEVEL_WILDCARD', '[MQTT-4.7.1-2]'],
    ['++', 'TOPIC_INVALID_SINGLE_LEVEL_WILDCARD', '[MQTT-4.7.1-2]'],
    ['a/\u0000', 'TOPIC_NULL_CHARACTER', '[MQTT-4.7.3-2]'],
    [`${long(65534)}/#`, 'TOPIC_TOO_LONG', '[MQTT-4.7.3-3]'],
    ['a/\ud800/#', 'TOPIC_INVALID_UTF8', '[MQTT-1.5.4-1]'],
    ['$share//a', 'TOPIC_INVALID_SHARE_NAME', '[MQTT-4.8.2-1] empty ShareName'],
    ['$share/', 'TOPIC_INVALID_SHARE_NAME', '[MQTT-4.8.2-1]'],
    ['$share/+/a', 'TOPIC_INVALID_SHARE_NAME', '[MQTT-4.8.2-2] + in ShareName'],
    ['$share/g#/a', 'TOPIC_INVALID_SHARE_NAME', '[MQTT-4.8.2-2] # in ShareName'],
    ['$share/g', 'TOPIC_INVALID_SHARED_FILTER', '[MQTT-4.8.2-2] no filter'],
    ['$share/g/', 'TOPIC_INVALID_SHARED_FILTER', '[MQTT-4.8.2-2] empty filter'],
    ['$share/g/a/#/b', 'TOPIC_INVALID_MULTI_LEVEL_WILDCARD', '[MQTT-4.7.1-1] inside a shared subscription'],
  ]
  for (const [filter, code, clause] of invalid) {
    it(`rejects ${JSON.stringify(filter.slice(0, 30))} with ${code} ${clause}`, () => {
      expect(validateTopicFilter(filter)).toMatchObject({ ok: false, code })
    })
  }

  it('treats $share/ as an ordinary filter when shared subscriptions are off (MQTT 3.1.1)', () => {
    expect(validateTopicFilter('$share/+/a', { shared: false })).toEqual({ ok: true })
    expect(validateTopicFilter('$share/g', { shared: false })).toEqual({ ok: true })
  })

  it('agrees with the reference on random strings', () => {
    const alphabet = fc.constantFrom('a', '/', '+', '#', '$', '$share/', '\u0000', 'é', '\ud83d', '\udc36')
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 12 }), (parts) => {
        const filter = parts.join('')
        expect(validateTopicFilter(filter).ok).toBe(referenceValidFilter(filter))
      }),
      { seed: 43, numRuns: 5000 },
    )
  })

  it('returns constant results: validating allocates nothing per call', () => {
    expect(validateTopicFilter('a/#')).toBe(validateTopicFilter('b/+'))
    expect(validateTopicFilter('a#')).toBe(validateTopicFilter('b#'))
  })
})

describe('assertTopicName / assertTopicFilter', () => {
  it('throw a TopicError carrying the code and the topic', () => {
    expect(() => assertTopicName('a/+')).toThrow(TopicError)
    try {
      assertTopicFilter('a/#/b')
      expect.unreachable()
    } catch (err) {
      expect(err).toMatchObject({
        name: 'TopicError',
        code: 'TOPIC_INVALID_MULTI_LEVEL_WILDCARD',
        topic: 'a/#/b',
      })
    }
  })

  it('return quietly for valid input', () => {
    expect(() => assertTopicName('a/b')).not.toThrow()
    expect(() => assertTopicFilter('a/+/#')).not.toThrow()
  })
})
