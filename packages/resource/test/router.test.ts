import { describe, expect, it } from 'vitest'
import { Router } from '../src/router.js'

const resource = (path: string) => ({ path, coerceId: (raw: string) => raw })

function router(paths: string[]): Router {
  const r = new Router()
  for (const path of paths) r.add(resource(path))
  return r
}

describe('Router', () => {
  it.each([
    ['a few export paths (compared in place)', 3],
    ['many export paths (looked up in a set)', 40],
  ])('resolves first segments case-insensitively with %s', (_name, extra) => {
    const paths = ['Dog', 'api/things', 'Émile', ...Array.from({ length: extra }, (_, i) => `T${i}`)]
    const r = router(paths)
    expect(r.resolve('Dog/1')).toMatchObject({ resource: { path: 'Dog' }, idText: '1' })
    expect(r.resolve('DOG/1')).toMatchObject({ resource: { path: 'Dog' }, idText: '1' })
    expect(r.resolve('dog')).toMatchObject({ resource: { path: 'Dog' }, idText: '' })
    expect(r.resolve('API/things/7')).toMatchObject({ resource: { path: 'api/things' }, idText: '7' })
    expect(r.resolve('ÉMILE/2')).toMatchObject({ resource: { path: 'Émile' }, idText: '2' })
    expect(r.resolve('émile/2')).toMatchObject({ resource: { path: 'Émile' }, idText: '2' })
    // Unclaimed: another first segment, a longer or shorter one, a prefix without its slash.
    for (const topic of ['Cat/1', 'Dogs/1', 'Do/1', 'Dogx', 'bench/3', 'api', 'Emile/2', '$SYS/x', ''])
      expect(r.resolve(topic)).toBeNull()
  })

  it('matches a first segment whose lower case changes its length only through the full comparison', () => {
    // 'İ' (U+0130) lower-cases to two characters: the in-place comparison must not decide it.
    const r = router(['İx'])
    expect(r.resolve('İx/1')).toMatchObject({ resource: { path: 'İx' }, idText: '1' })
    expect(r.resolve('ix/1')).toBeNull()
  })
})
