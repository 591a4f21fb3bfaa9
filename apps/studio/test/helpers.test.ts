import { describe, expect, it } from 'vitest'
import { nextCursor, restPath } from '../src/api.js'
import { asJson, liveTarget, withToken } from '../src/live-target.js'
import { type MetricJson, point, reading } from '../src/metrics-data.js'

describe('restPath', () => {
  it('percent-encodes each segment, so wildcards and spaces survive the URL', () => {
    expect(restPath('Dog/1')).toBe('/Dog/1')
    expect(restPath('/sensors/#')).toBe('/sensors/%23')
    expect(restPath('a b/+/c?')).toBe('/a%20b/%2B/c%3F')
  })
})

describe('nextCursor', () => {
  it('reads the after cursor of rel="next" and nothing else', () => {
    expect(nextCursor('</Dog/?limit=2&after=abc%3D>; rel="next"')).toBe('abc=')
    expect(nextCursor('</Dog/?after=x>; rel="prev"')).toBeUndefined()
    expect(nextCursor(null)).toBeUndefined()
  })
})

describe('liveTarget', () => {
  const tables = ['Dog', 'api/breeds']
  it('follows a table for its path or path/#, a record, or a topic filter', () => {
    expect(liveTarget('Dog/', tables)).toBe('/Dog/')
    expect(liveTarget('Dog/#', tables)).toBe('/Dog/')
    expect(liveTarget('Dog', tables)).toBe('/Dog/')
    expect(liveTarget('api/breeds/#', tables)).toBe('/api/breeds/')
    expect(liveTarget('Dog/1', tables)).toBe('/Dog/1')
    expect(liveTarget('sensors/+/temp', tables)).toBe('/sensors/%2B/temp')
    expect(liveTarget('#', tables)).toBe('/%23')
  })

  it('follows a table query as typed, and adds the token to its query', () => {
    expect(liveTarget('Dog/?breed=lab&age=gt=3', tables)).toBe('/Dog/?breed=lab&age=gt=3')
    expect(liveTarget('Dog?select(name)', tables)).toBe('/Dog/?select(name)')
    expect(liveTarget('/api/breeds/?size=small', tables)).toBe('/api/breeds/?size=small')
    // a ? after anything but a table's path is part of a topic
    expect(liveTarget('sensors/what?', tables)).toBe('/sensors/what%3F')
    expect(withToken('/Dog/?breed=lab', 'access_token=t')).toBe('/Dog/?breed=lab&access_token=t')
    expect(withToken('/Dog/', 'access_token=t')).toBe('/Dog/?access_token=t')
  })

  it('sends text that is not JSON as a JSON string', () => {
    expect(asJson('{"a":1}')).toEqual({ a: 1 })
    expect(asJson('21.5')).toBe(21.5)
    expect(asJson('hello')).toBe('hello')
  })
})

describe('metrics readings', () => {
  const metrics = (received: number, commits: number, commitSeconds: number): MetricJson[] => [
    {
      name: 'proj_mqtt_messages_received_total',
      type: 'counter',
      help: '',
      values: [
        { value: received, labels: { door: 'tcp', qos: '0' } },
        { value: 1, labels: { door: 'ws', qos: '1' } },
      ],
    },
    {
      name: 'proj_storage_commit_seconds',
      type: 'histogram',
      help: '',
      values: [
        { value: commits, labels: { le: '+Inf' }, metricName: 'proj_storage_commit_seconds_bucket' },
        { value: commitSeconds, labels: {}, metricName: 'proj_storage_commit_seconds_sum' },
        { value: commits, labels: {}, metricName: 'proj_storage_commit_seconds_count' },
      ],
    },
    { name: 'proj_mqtt_connections', type: 'gauge', help: '', values: [{ value: 3, labels: {} }] },
  ]

  it('turns two readings into a rate per second and a mean latency over the interval', () => {
    const a = reading(metrics(10, 4, 0.004), 1000)
    const b = reading(metrics(30, 6, 0.01), 3000)
    expect(a.messagesIn).toBe(11)
    const p = point(a, b)
    expect(p.inPerSecond).toBe(10)
    expect(p.commitMs).toBeCloseTo(3)
    expect(p.connections).toBe(3)
  })

  it('has no latency for an interval without commits, and never a negative rate (a restart)', () => {
    const a = reading(metrics(50, 4, 0.004), 0)
    const b = reading(metrics(5, 4, 0.004), 1000)
    expect(point(a, b)).toMatchObject({ inPerSecond: 0, commitMs: null })
  })
})
