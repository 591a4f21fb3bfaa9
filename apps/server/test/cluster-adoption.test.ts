import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { expect, it } from 'vitest'
import {
  ADMIN,
  AUTH,
  collectPayloads as collect,
  describeCluster,
  useMqttCluster,
  waitReady,
  within,
} from './helpers/cluster.js'

const NODES = ['a', 'b', 'c']

/** A durable MQTT 5 session (expiry `expiry` s) with a will on `adopt/<id>` after `delay` s. */
function withWill(clientId: string, expiry: number, delay: number | undefined): IClientOptions {
  return {
    clientId,
    protocolVersion: 5,
    clean: expiry === 0,
    properties: { sessionExpiryInterval: expiry },
    will: {
      topic: `${clientId === 'cut-off' ? 'served' : 'adopt'}/${clientId}`,
      payload: Buffer.from(`will of ${clientId}`),
      qos: 1,
      retain: false,
      ...(delay !== undefined ? { properties: { willDelayInterval: delay } } : {}),
    },
  }
}

/** The client ids of the sessions a node keeps (GET /_admin/sessions). */
async function sessionsOn(http: string): Promise<string[]> {
  const res = await fetch(`${http}/_admin/sessions`, {
    headers: { Authorization: AUTH },
    signal: AbortSignal.timeout(10_000),
  })
  return ((await res.json()) as { clientId: string }[]).map((s) => s.clientId)
}

/** CONNECTs and resolves with the CONNACK's session present flag. */
async function sessionPresent(
  url: string,
  options: IClientOptions,
  track: (client: MqttClient) => MqttClient,
): Promise<boolean> {
  const client = track(mqtt.connect(url, { ...ADMIN, ...options, reconnectPeriod: 0, connectTimeout: 5000 }))
  return within(
    `CONNACK of ${options.clientId}`,
    new Promise<boolean>((resolve, reject) => {
      client.once('connect', (p) => resolve(p.sessionPresent))
      client.once('error', reject)
    }),
  )
}

describeCluster('a cluster node killed while it holds clients', () => {
  const fixture = useMqttCluster(NODES)
  const mqttOn = fixture.mqttOn.bind(fixture)
  const track = fixture.track.bind(fixture)

  it('has a survivor publish its wills once (after their delay, not when the client came back) and expire its sessions', async () => {
    const watchers = await Promise.all(['b', 'c'].map((n) => mqttOn(n, { protocolVersion: 5 })))
    const seen = watchers.map(collect)
    for (const w of watchers) await w.subscribeAsync({ 'adopt/#': { qos: 1 } })

    // on node a: a durable session whose will waits 1 s; a session that ends with its connection
    // (its will goes at once); one whose client comes back on another node in time; one that expires
    await mqttOn('a', withWill('doomed', 300, 1))
    await mqttOn('a', withWill('quick', 0, 2))
    await mqttOn('a', withWill('back', 300, 1))
    const fading = await mqttOn('a', {
      clientId: 'fading',
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 10 },
    })
    await fading.subscribeAsync({ 'fading/#': { qos: 1 } })

    const killed = Date.now()
    fixture.cluster.node('a').process.child.kill('SIGKILL')
    await fixture.cluster.node('a').process.exited
    // comes back on c before anyone noticed a is dead: its will is never sent
    expect(await sessionPresent(fixture.cluster.node('c').mqtt, withWill('back', 300, 60), track)).toBe(true)

    for (const [i] of watchers.entries()) {
      await expect.poll(() => seen[i]!('adopt/doomed'), { timeout: 20_000 }).toEqual(['will of doomed'])
      await expect.poll(() => seen[i]!('adopt/quick'), { timeout: 10_000 }).toEqual(['will of quick'])
    }
    // one survivor adopted a's clients (not the one that came back)
    const adoptedBy = () =>
      ['b', 'c'].filter((n) =>
        /adopted the clients of a dead node/.test(fixture.cluster.node(n).process.output()),
      )
    await expect.poll(adoptedBy, { timeout: 10_000 }).toHaveLength(1)
    const adopter = fixture.cluster.node(adoptedBy()[0]!)
    expect(adopter.process.output()).toMatch(/"clients":3[,}].*adopted the clients of a dead node/)
    // sentinels published after that: a second copy of a will, or the will of `back`, would come first
    await watchers[0]!.publishAsync('adopt/back', 'sentinel', { qos: 1 })
    await watchers[1]!.publishAsync('adopt/doomed', 'sentinel', { qos: 1 })
    for (const [i] of watchers.entries()) {
      await expect.poll(() => seen[i]!('adopt/back'), { timeout: 10_000 }).toEqual(['sentinel'])
      await expect.poll(() => seen[i]!('adopt/doomed').length, { timeout: 10_000 }).toBe(2)
      expect(seen[i]!('adopt/doomed')).toEqual(['will of doomed', 'sentinel'])
      expect(seen[i]!('adopt/quick')).toEqual(['will of quick'])
    }

    // the session that expires: kept by the adopter, then gone once its 10 s since a was last heard passed
    await expect.poll(() => sessionsOn(adopter.http), { timeout: 10_000 }).toContain('fading')
    await expect
      .poll(
        async () => [
          ...(await sessionsOn(fixture.cluster.node('b').http)),
          ...(await sessionsOn(fixture.cluster.node('c').http)),
        ],
        {
          timeout: 20_000,
          interval: 250,
        },
      )
      .not.toContain('fading')
    expect(Date.now() - killed).toBeGreaterThanOrEqual(8000)
    expect(
      await sessionPresent(
        fixture.cluster.node('b').mqtt,
        { clientId: 'fading', protocolVersion: 5, clean: false },
        track,
      ),
    ).toBe(false)
    // the durable session with a long expiry is still there, on any node
    expect(
      await sessionPresent(
        fixture.cluster.node('b').mqtt,
        { clientId: 'doomed', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 300 } },
        track,
      ),
    ).toBe(true)
  }, 90_000)

  it('has a client served while its node could not reach NATS claimed once NATS is back, so its will fires once when the node dies', async () => {
    const watchers = await Promise.all(['b', 'c'].map((n) => mqttOn(n, { protocolVersion: 5 })))
    const seen = watchers.map(collect)
    for (const w of watchers) await w.subscribeAsync({ 'served/#': { qos: 1 } })
    // node d reaches NATS through one server only, which then stops (SIGSTOP: d's link stays open and
    // unanswered, so d does not move to another server); d's writes may wait for it a long time
    const nats = fixture.cluster.nats
    const d = await fixture.cluster.start('d', {
      PROJ_CLUSTER_NATS_SERVERS: nats.urls[2]!,
      PROJ_CLUSTER_WRITETIMEOUT: '60s',
    })
    await waitReady(d.http)
    const natsPid = nats.servers[2]!.pid!
    process.kill(natsPid, 'SIGSTOP')
    let connected: Promise<boolean>
    try {
      // the CONNECT gets no answer from the owner bucket (served anyway, logged); its session and will
      // are written once NATS is back
      const client = track(
        mqtt.connect(d.mqtt, {
          ...ADMIN,
          ...withWill('cut-off', 300, 0),
          reconnectPeriod: 0,
          connectTimeout: 60_000,
        }),
      )
      connected = within(
        'CONNACK of cut-off',
        new Promise<boolean>((resolve, reject) => {
          client.once('connect', (p) => resolve(p.sessionPresent))
          client.once('error', reject)
        }),
        60_000,
      )
      await expect
        .poll(() => d.process.output(), { timeout: 20_000 })
        .toMatch(/"clientId":"cut-off".*client id ownership not established/)
    } finally {
      process.kill(natsPid, 'SIGCONT')
    }
    expect(await connected).toBe(false)
    await expect
      .poll(() => d.process.output(), { timeout: 30_000 })
      .toMatch(/"clientId":"cut-off".*claimed a client id served while NATS was unreachable/)

    d.process.child.kill('SIGKILL')
    await d.process.exited
    for (const [i] of watchers.entries())
      await expect.poll(() => seen[i]!('served/cut-off'), { timeout: 30_000 }).toEqual(['will of cut-off'])
    const adopters = () =>
      ['b', 'c'].filter((n) =>
        /"node":"d","clients":1[,}].*adopted the clients of a dead node/.test(
          fixture.cluster.node(n).process.output(),
        ),
      )
    await expect.poll(adopters, { timeout: 10_000 }).toHaveLength(1)
    // a second copy of the will would come before this sentinel
    await watchers[0]!.publishAsync('served/cut-off', 'sentinel', { qos: 1 })
    for (const [i] of watchers.entries()) {
      await expect.poll(() => seen[i]!('served/cut-off').length, { timeout: 10_000 }).toBe(2)
      expect(seen[i]!('served/cut-off')).toEqual(['will of cut-off', 'sentinel'])
    }
  }, 120_000)
})
