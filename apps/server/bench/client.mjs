// One benchmark client in its own process (forked by cluster.bench.test.ts, driven over IPC): a lean MQTT
// 3.1.1 client on a raw socket (packets generated and parsed by mqtt-packet), so the figures measure the
// servers, not a client sharing its event loop with other clients.
//   publisher:  `paced` (a fixed rate, one message per write, each stamped when written), `flood`
//   subscriber: counts and times what arrives on a topic, answers with a latency histogram
// Stamps are process.hrtime.bigint() (CLOCK_MONOTONIC on Linux): one clock for every process on the host.
import net from 'node:net'
import mqtt from 'mqtt-packet'

const hr = process.hrtime.bigint
const PAYLOAD = 32
const sleeper = new Int32Array(new SharedArrayBuffer(4))

/** Latency histogram in microseconds: exact below 1 ms, then buckets 1 % apart (mergeable by index). */
class Histogram {
  counts = new Map()
  record(us) {
    const i =
      us < 1000 ? Math.max(0, Math.floor(us)) : 1000 + Math.floor(Math.log(us / 1000) / Math.log(1.01))
    this.counts.set(i, (this.counts.get(i) ?? 0) + 1)
  }
  toJSON() {
    return [...this.counts]
  }
}

let socket
let parser
let nextId = 1
let inflight = 0
let onAck = () => {}
const waiting = new Map() // subscribe packet id -> resolve
const topics = new Map() // topic -> { count, first, last, hist }
const reply = (msg) => process.send?.(msg)

function write(packet) {
  return socket.write(mqtt.generate(packet))
}

function connect({ url, clientId, username, password }) {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    socket = net.connect({ host: hostname, port: Number(port) })
    socket.setNoDelay(true)
    parser = mqtt.parser({ protocolVersion: 4 })
    const acks = []
    let readAt = 0n
    parser.on('packet', (p) => {
      switch (p.cmd) {
        case 'connack':
          if (p.returnCode === 0) resolve()
          else reject(new Error(`CONNACK ${p.returnCode}`))
          break
        case 'suback':
          waiting.get(p.messageId)?.()
          break
        case 'puback':
          inflight--
          onAck()
          break
        case 'publish': {
          if (p.qos === 1) acks.push(mqtt.generate({ cmd: 'puback', messageId: p.messageId }))
          const t = topics.get(p.topic)
          if (t === undefined) break
          const stamp = p.payload.readBigUInt64LE(0)
          t.hist.record(Number(readAt - stamp) / 1000)
          if (t.count++ === 0) t.first = readAt
          t.last = readAt
          if (t.count === t.expected) t.done?.()
          break
        }
      }
    })
    parser.on('error', (err) => reject(err))
    socket.on('data', (chunk) => {
      readAt = hr() // one clock read per socket read, shared by the messages in it
      parser.parse(chunk)
      if (acks.length === 0) return
      socket.write(acks.length === 1 ? acks[0] : Buffer.concat(acks)) // one write per read
      acks.length = 0
    })
    socket.on('error', reject)
    socket.on('connect', () =>
      write({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId,
        keepalive: 60,
        username,
        password,
      }),
    )
  })
}

function subscribe(subscriptions) {
  const messageId = nextId++
  const subacked = new Promise((resolve) => waiting.set(messageId, resolve))
  write({
    cmd: 'subscribe',
    messageId,
    subscriptions: Object.entries(subscriptions).map(([topic, qos]) => ({ topic, qos })),
  })
  return subacked
}

/**
 * Starts counting `topic`; resolves with what arrived once `expected` did, or nothing more came for
 * `idleMs` after the first (QoS 0 may lose some), or `timeoutMs` passed.
 */
function expect({ topic, expected, timeoutMs, idleMs }) {
  const t = { count: 0, first: 0n, last: 0n, expected, hist: new Histogram(), done: undefined }
  topics.set(topic, t)
  return new Promise((resolve) => {
    if (expected === 0) return resolve({ received: 0, first: '0', last: '0', hist: [] }) // a phase skipped
    const timer = setTimeout(() => t.done(), timeoutMs)
    const idle = setInterval(() => {
      if (t.count > 0 && Number(hr() - t.last) / 1e6 > idleMs) t.done()
    }, 100)
    t.done = () => {
      clearTimeout(timer)
      clearInterval(idle)
      t.done = undefined
      resolve({ received: t.count, first: String(t.first), last: String(t.last), hist: t.hist.toJSON() })
    }
  })
}

function publish(topic, qos) {
  const payload = Buffer.alloc(PAYLOAD)
  payload.writeBigUInt64LE(hr(), 0)
  let messageId
  if (qos === 1) {
    messageId = nextId
    nextId = nextId === 65535 ? 1 : nextId + 1
    inflight++
  }
  return write({ cmd: 'publish', topic, payload, qos, retain: false, dup: false, messageId })
}

/** Resolves once at most `max` QoS 1 messages await their PUBACK. */
function acked(max) {
  if (inflight <= max) return Promise.resolve()
  return new Promise((resolve) => {
    onAck = () => {
      if (inflight > max) return
      onAck = () => {}
      resolve()
    }
  })
}

/**
 * `count` messages at `rate`/s, each at its own due time and written alone (never a burst in one write;
 * one behind schedule goes at once, stamped when written, and counts as late). Between messages the
 * process sleeps (Atomics.wait below 2 ms, a timer above), so it takes no core from the servers.
 */
function paced({ topic, qos, rate, count }) {
  const interval = 1e9 / rate
  const start = hr()
  let i = 0
  let late = 0
  return new Promise((resolve) => {
    const tick = () => {
      if (i >= count) {
        acked(0).then(() => resolve({ sent: count, late }))
        return
      }
      const ahead = Number(start + BigInt(Math.round(i * interval)) - hr()) / 1e6
      if (ahead > 2) {
        setTimeout(tick, ahead - 1.5)
        return
      }
      if (ahead > 0) Atomics.wait(sleeper, 0, 0, ahead)
      else if (ahead < -1) late++
      publish(topic, qos)
      i++
      setImmediate(tick) // the socket's reads (PUBACKs) between two messages
    }
    tick()
  })
}

/** `count` messages as fast as the socket takes them (QoS 1: at most `window` unacknowledged). */
async function flood({ topic, qos, count, window }) {
  const start = hr()
  for (let i = 0; i < count; i++) {
    if (qos === 1) await acked(window - 1)
    if (!publish(topic, qos)) await new Promise((resolve) => socket.once('drain', resolve))
    else if (i % 256 === 255) await new Promise((resolve) => setImmediate(resolve))
  }
  await acked(0)
  return { start: String(start), end: String(hr()) }
}

const ops = { connect, subscribe: ({ subscriptions }) => subscribe(subscriptions), expect, paced, flood }

process.on('message', async ({ id, op, ...args }) => {
  try {
    reply({ id, result: await ops[op](args) })
  } catch (error) {
    reply({ id, error: String(error?.stack ?? error) })
  }
})
process.on('disconnect', () => process.exit(0))
