// A node that cannot catch up (here: its NATS user may not read the stream) holds requests and MQTT
// connections only for cluster.catchUpTimeout, then refuses them: HTTP 503 with Retry-After, the MQTT
// connection closed; both logged. /health answers at once throughout. A node that never can (the stream
// no longer holds what it lacks) refuses requests rather than serve its stale data.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { connectMqtt } from './helpers/clients.js'
import { AUTH, describeCluster, health, send, startClusterNodes } from './helpers/cluster.js'

/** What node c's NATS user may not do: create a consumer on the stream or read a message of it. */
const NO_READS = [
  '$JS.API.CONSUMER.CREATE.proj',
  '$JS.API.CONSUMER.CREATE.proj.>',
  '$JS.API.STREAM.MSG.GET.proj',
  '$JS.API.DIRECT.GET.proj',
  '$JS.API.DIRECT.GET.proj.>',
]

/** Node a on one NATS server with two users: `proj` (all rights) and `blind` (may not read the stream). */
function startWithBlindUser(env: Record<string, string> = {}) {
  return startClusterNodes(['a'], {
    natsSize: 1,
    natsConfig: [
      'authorization { users: [',
      '  { user: "proj", password: "pw" }',
      `  { user: "blind", password: "pw", permissions: { publish: { deny: ${JSON.stringify(NO_READS)} } } }`,
      '] }',
    ],
    env: { PROJ_CLUSTER_NATS_USER: 'proj', PROJ_CLUSTER_NATS_PASSWORD: 'pw', ...env },
  })
}

describeCluster('a node that cannot catch up yet', () => {
  let cluster: Awaited<ReturnType<typeof startClusterNodes>>
  beforeAll(async () => {
    cluster = await startWithBlindUser()
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  it('refuses a held request with 503 and Retry-After after cluster.catchUpTimeout, and closes a held MQTT connection', async () => {
    // something in the stream for the new node to apply
    expect((await send(cluster.node('a').http, 'PUT', 'Dog/held', { name: 'Rex' })).status).toBeLessThan(300)
    const c = await cluster.start('c', {
      PROJ_CLUSTER_NATS_USER: 'blind',
      PROJ_CLUSTER_CATCHUPTIMEOUT: '1s',
    })
    expect((await health(c.http)).cluster).toBe('catching-up')

    const started = Date.now()
    const res = await fetch(`${c.http}/Dog/held`, {
      headers: { Authorization: AUTH, Accept: 'application/json' },
      signal: AbortSignal.timeout(15_000),
    })
    const waited = Date.now() - started
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('5')
    expect(await res.json()).toMatchObject({ error: 'UNAVAILABLE', status: 503 })
    expect(waited).toBeGreaterThanOrEqual(900)
    expect(waited).toBeLessThan(10_000)
    expect(c.process.output()).toMatch(/a request waited too long for this node to catch up/)

    const mqttStarted = Date.now()
    const outcome = await connectMqtt(c.mqtt, {
      username: 'admin',
      password: 'pw',
      connectTimeout: 15_000,
    }).then(
      (client) => {
        client.end(true)
        return 'connected'
      },
      (error: Error) => error.message,
    )
    expect(outcome).not.toBe('connected')
    expect(Date.now() - mqttStarted).toBeLessThan(10_000)
    await expect
      .poll(() => c.process.output(), { timeout: 5000 })
      .toMatch(/an MQTT connection waited too long for this node to catch up/)
    // still catching up, and /health still answers at once
    expect((await health(c.http)).cluster).toBe('catching-up')
  }, 60_000)
})

// its own cluster: the short retention would take the stream's first messages from the node above too
describeCluster('a node that cannot catch up at all', () => {
  let cluster: Awaited<ReturnType<typeof startClusterNodes>>
  beforeAll(async () => {
    // the stream keeps 3 s: a node that joins later finds its beginning gone
    cluster = await startWithBlindUser({ PROJ_CHANGELOG_RETENTION: '3s' })
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  it('refuses requests on a node that cannot catch up at all (the stream lost what it lacks): 503, /health failed', async () => {
    expect((await send(cluster.node('a').http, 'PUT', 'Dog/aged', { name: 'Old' })).status).toBeLessThan(300)
    // the stream's first messages expire (max_age 3 s)
    const jsz = `http://127.0.0.1:${cluster.nats.servers[0]!.httpPort}/jsz?accounts=true&streams=true`
    await expect
      .poll(
        async () => {
          const body = (await (await fetch(jsz)).json()) as {
            account_details?: { stream_detail?: { name: string; state: { first_seq: number } }[] }[]
          }
          const stream = body.account_details
            ?.flatMap((a) => a.stream_detail ?? [])
            .find((st) => st.name === 'proj')
          return stream?.state.first_seq ?? 0
        },
        { timeout: 15_000, interval: 250 },
      )
      .toBeGreaterThan(1)
    const d = await cluster.start('d')
    await expect.poll(async () => (await health(d.http)).cluster, { timeout: 15_000 }).toBe('failed')
    expect(d.process.output()).toMatch(/cannot catch up/)
    // its store is empty: a read would be stale (404 for a record the cluster has)
    const res = await fetch(`${d.http}/Dog/aged`, {
      headers: { Authorization: AUTH, Accept: 'application/json' },
      signal: AbortSignal.timeout(15_000),
    })
    expect(res.status).toBe(503)
    expect(await res.json()).toMatchObject({ error: 'UNAVAILABLE' })
  }, 60_000)
})
