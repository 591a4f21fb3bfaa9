import { type Key, Resource } from '@proj/resource'
import { once, waitFor } from '@proj/test-utils'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

/** A value no encoder can write: JSON.stringify calls toJSON, which throws. */
const unencodable = {
  toJSON() {
    throw new Error('encoder exploded')
  },
}

/** A resource whose code fails in every way a request can reach it. */
class Faulty extends Resource {
  override async get(id: Key): Promise<unknown> {
    if (id === 'circular') {
      // An error whose details cannot be serialized: rendering the error body fails as well.
      const details: Record<string, unknown> = {}
      details.self = details
      throw Object.assign(new Error('bad input'), { code: 'INVALID', details })
    }
    throw new Error('get exploded')
  }

  override connect(): never {
    return (async function* () {
      yield unencodable
    })() as never
  }
}

/** connect() waits for the test to open this gate: a stream caught between its request and its start. */
const gate = { entered: false, open: () => {} }
class Slow extends Resource {
  override async connect(): Promise<never> {
    gate.entered = true
    await new Promise<void>((resolve) => {
      gate.open = resolve
    })
    return (async function* () {
      yield { late: true }
      await new Promise(() => {}) // a stream that never ends by itself
    })() as never
  }
}

let rt: TestRuntime
let srv: TestServer
const faults: unknown[] = []
const auth = { authorization: `Basic ${Buffer.from('ann:secret').toString('base64')}` }

beforeEach(async () => {
  faults.length = 0
  rt = await openTestRuntime({ resources: { Faulty, Slow } })
  srv = await startServer({
    runtime: rt.runtime,
    onError: (err) => {
      faults.push(err)
      if (faults.length > 100) throw new Error('unreachable')
    },
  })
})

afterEach(async () => {
  await srv.close()
  await rt.close()
})

/** The server still answers: a record written and read back. */
async function stillServing(): Promise<void> {
  const put = await fetch(`${srv.url}/Dog/alive`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Rex' }),
  })
  expect(put.status).toBeLessThan(300)
  const got = await fetch(`${srv.url}/Dog/alive`, { headers: auth })
  expect(await got.json()).toMatchObject({ name: 'Rex' })
}

describe('fault containment over HTTP: one request, one WebSocket, one event stream', () => {
  it('a resource that throws: 500 with a JSON error body, logged', async () => {
    const res = await fetch(`${srv.url}/Faulty/x`, { headers: auth })
    expect(res.status).toBe(500)
    expect(await res.json()).toEqual({ error: 'INTERNAL', message: 'internal server error', status: 500 })
    expect(faults).toHaveLength(1)
    await stillServing()
  })

  it('an error whose body cannot be rendered: still a 500 with a JSON body, logged', async () => {
    const res = await fetch(`${srv.url}/Faulty/circular`, { headers: auth })
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ error: 'INTERNAL', status: 500 })
    expect(faults).toHaveLength(1)
    await stillServing()
  })

  it('a WebSocket whose events cannot be encoded is closed with 1011, logged', async () => {
    const ws = new WebSocket(`${srv.wsUrl}/Faulty/x`, { headers: auth })
    expect(await once<number>(ws, 'close')).toBe(1011)
    expect(faults).toHaveLength(1)
    await stillServing()
  })

  it('an event stream whose events cannot be encoded ends, logged', async () => {
    const res = await fetch(`${srv.url}/Faulty/x`, { headers: { ...auth, accept: 'text/event-stream' } })
    expect(res.status).toBe(200)
    // The body ends (rather than hanging) once the stream failed.
    await res.text()
    expect(faults).toHaveLength(1)
    await stillServing()
  })

  it('a stream still opening when the handler closes is ended as well', async () => {
    gate.entered = false
    const pending = fetch(`${srv.url}/Slow/x`, { headers: { ...auth, accept: 'text/event-stream' } })
    await waitFor(() => gate.entered, { message: 'connect() called' })
    await srv.handler.close()
    gate.open()
    const res = await pending
    const ended = await Promise.race([
      res.text().then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000)),
    ])
    expect(ended).toBe(true)
  })
})
