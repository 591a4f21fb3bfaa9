// A node that was ready and then can no longer catch up (the stream's retention dropped messages it had
// not applied) serves nobody: HTTP 503, /health "failed", its MQTT connections closed (MQTT 5 DISCONNECT
// 0x9C Use another server, 3.1.1 closed) and new CONNECTs refused (CONNACK 0x88, 3.1.1 return code 3),
// logged once. Here the node may not read the stream (NATS permissions: a partition that cuts only its
// reads), so it falls behind from its first write on; the stream keeps 10 s, then what it lacks is gone.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closedBy, connectMqtt } from './helpers/clients.js'
import { ADMIN, AUTH, describeCluster, health, startClusterNodes } from './helpers/cluster.js'

/** What the node's NATS user may not do: create a consumer on the stream or read a message of it. */
const NO_READS = [
  '$JS.API.CONSUMER.CREATE.proj',
  '$JS.API.CONSUMER.CREATE.proj.>',
  '$JS.API.STREAM.MSG.GET.proj',
  '$JS.API.DIRECT.GET.proj',
  '$JS.API.DIRECT.GET.proj.>',
]

describeCluster('a node that fails after it was ready', () => {
  let cluster: Awaited<ReturnType<typeof startClusterNodes>>
  beforeAll(async () => {
    // on an empty stream the node is ready at once; its first writes (the admin) are then the messages
    // it never applies. ack: local, so those writes do not wait for an apply that cannot happen.
    cluster = await startClusterNodes(['b'], {
      natsSize: 1,
      natsConfig: [
        'authorization { users: [',
        `  { user: "blind", password: "pw", permissions: { publish: { deny: ${JSON.stringify(NO_READS)} } } }`,
        '] }',
      ],
      env: {
        PROJ_CLUSTER_NATS_USER: 'blind',
        PROJ_CLUSTER_NATS_PASSWORD: 'pw',
        PROJ_CLUSTER_ACK: 'local',
        PROJ_CHANGELOG_RETENTION: '10s',
      },
    })
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  it('closes its MQTT connections (0x9C; 3.1.1 closed), refuses new ones (CONNACK 0x88 / 3) and HTTP (503), logged once', async () => {
    const b = cluster.node('b')
    expect((await health(b.http)).cluster).toBe('ready')
    const v5 = await connectMqtt(b.mqtt, { ...ADMIN, protocolVersion: 5, clientId: 'failing-5' })
    const v4 = await connectMqtt(b.mqtt, { ...ADMIN, protocolVersion: 4, clientId: 'failing-4' })
    const v5Closed = closedBy(v5)
    const v4Closed = closedBy(v4)

    // the stream's first messages expire; the node finds the next one it needs gone
    await expect
      .poll(async () => (await health(b.http)).cluster, { timeout: 40_000, interval: 250 })
      .toBe('failed')
    expect(await v5Closed).toBe(0x9c)
    expect(await v4Closed).toBeUndefined()

    const refused5 = await connectMqtt(b.mqtt, { ...ADMIN, protocolVersion: 5, clientId: 'late-5' }).then(
      (client) => {
        client.end(true)
        return 'connected'
      },
      (error: { code?: number }) => error.code,
    )
    expect(refused5).toBe(0x88)
    const refused4 = await connectMqtt(b.mqtt, { ...ADMIN, protocolVersion: 4, clientId: 'late-4' }).then(
      (client) => {
        client.end(true)
        return 'connected'
      },
      (error: { code?: number }) => error.code,
    )
    expect(refused4).toBe(3)

    const res = await fetch(`${b.http}/Dog/any`, {
      headers: { Authorization: AUTH, Accept: 'application/json' },
      signal: AbortSignal.timeout(15_000),
    })
    expect(res.status).toBe(503)
    const state = await fetch(`${b.http}/health`)
    expect(state.status).toBe(503)
    expect(await state.json()).toMatchObject({ status: 'failed', cluster: 'failed' })

    const output = b.process.output()
    expect(output).toMatch(/cannot catch up: this node applied up to \d+, the stream now starts at/)
    expect(output.match(/its MQTT connections are closed \(0x9C Use another server\)/g)).toHaveLength(1)
  }, 90_000)
})
