import { describe, expect, it } from 'vitest'
import { AuthLimiter, sourceKey } from '../src/auth-limiter.js'

function clock(start = 1_000_000) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

describe('AuthLimiter', () => {
  it('lets the first failures through, then doubles the wait per failure up to the maximum', () => {
    const c = clock()
    const limiter = new AuthLimiter({
      maxUserFailures: 3,
      maxAddressFailures: 0,
      maxDelayMs: 8000,
      now: c.now,
    })
    for (let i = 0; i < 3; i++) {
      expect(limiter.delay('10.0.0.1', 'bob')).toBe(0)
      limiter.failed('10.0.0.1', 'bob')
    }
    expect(limiter.delay('10.0.0.1', 'bob')).toBe(0)
    const waits: number[] = []
    for (let i = 0; i < 6; i++) {
      limiter.failed('10.0.0.1', 'bob')
      const wait = limiter.delay('10.0.0.9', 'bob') // any address: the username is backed off
      waits.push(wait)
      c.advance(wait)
      expect(limiter.delay('10.0.0.1', 'bob')).toBe(0)
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 8000, 8000])
    // another username is not affected (no per-address limit here)
    limiter.failed('10.0.0.1', 'bob')
    expect(limiter.delay('10.0.0.1', 'alice')).toBe(0)
  })

  it('backs off an address across usernames, with its own threshold', () => {
    const c = clock()
    const limiter = new AuthLimiter({ maxUserFailures: 0, maxAddressFailures: 4, now: c.now })
    for (let i = 0; i < 5; i++) limiter.failed('192.0.2.7', `user${i}`)
    expect(limiter.delay('192.0.2.7', 'someone-else')).toBe(1000)
    expect(limiter.delay('::ffff:192.0.2.7', 'someone-else')).toBe(1000)
    expect(limiter.delay('192.0.2.8', 'someone-else')).toBe(0)
    // IPv6 counts per /64
    for (let i = 0; i < 5; i++) limiter.failed(`2001:db8:1:2::${i + 1}`, 'x')
    expect(limiter.delay('2001:db8:1:2:ffff:ffff:ffff:ffff', 'y')).toBe(1000)
    expect(limiter.delay('2001:db8:1:3::1', 'y')).toBe(0)
  })

  it('forgets failures after a quiet period, and a success clears the username', () => {
    const c = clock()
    const limiter = new AuthLimiter({
      maxUserFailures: 1,
      maxAddressFailures: 0,
      forgetAfterMs: 60_000,
      now: c.now,
    })
    limiter.failed(undefined, 'bob')
    limiter.failed(undefined, 'bob')
    expect(limiter.delay(undefined, 'bob')).toBe(1000)
    c.advance(60_001)
    expect(limiter.delay(undefined, 'bob')).toBe(0)
    limiter.failed(undefined, 'bob')
    expect(limiter.delay(undefined, 'bob')).toBe(0) // counted from zero again
    limiter.failed(undefined, 'bob')
    expect(limiter.delay(undefined, 'bob')).toBe(1000)
    limiter.succeeded('bob')
    expect(limiter.delay(undefined, 'bob')).toBe(0)
  })

  it('keeps at most maxEntries addresses and usernames', () => {
    const c = clock()
    const limiter = new AuthLimiter({ maxUserFailures: 1, maxAddressFailures: 1, maxEntries: 10, now: c.now })
    limiter.failed('10.0.0.1', 'victim')
    limiter.failed('10.0.0.1', 'victim')
    expect(limiter.delay('10.0.0.1', 'victim')).toBe(1000)
    // a flood of other usernames from other addresses pushes the oldest entries out, and no more than 10 stay
    for (let i = 0; i < 1000; i++) limiter.failed(`10.1.${i >> 8}.${i & 255}`, `u${i}`)
    expect(limiter.delay('10.0.0.1', 'victim')).toBe(0)
  })

  it('keys addresses: IPv4 as is, IPv4-mapped as IPv4, IPv6 by /64 without a zone', () => {
    expect(sourceKey('203.0.113.5')).toBe('203.0.113.5')
    expect(sourceKey('::ffff:203.0.113.5')).toBe('203.0.113.5')
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(sourceKey('2001:0DB8:0001:0002:0003:0004:0005:0006')).toBe('2001:db8:1:2::/64')
    expect(sourceKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(sourceKey('::1')).toBe('0:0:0:0::/64')
    expect(sourceKey(undefined)).toBeUndefined()
  })
})
