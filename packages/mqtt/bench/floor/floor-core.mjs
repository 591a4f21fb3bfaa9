// Bench-only MQTT 3.1.1 "floor" broker: the least work a Node 20 program can do to serve what
// ../shared/bench's S1–S6 send (CONNECT, SUBSCRIBE with exact/`+`/`#` filters, UNSUBSCRIBE, PUBLISH
// QoS 0/1, PUBACK, retained messages, PINGREQ, DISCONNECT). Not product code: no imports from this
// repository, no sessions (clean only), no wills, no QoS 2, no auth. It is the ceiling of a Node
// broker on one core, to compare the real server and Mosquitto against (see README.md here).
//
// Hot path: frames are scanned in place in each socket chunk (a string for the topic is the only
// per-message allocation), outgoing frames are copied into one buffer per socket and written once per
// event-loop turn (setImmediate), and that buffer is reused whenever the kernel took the whole write.
import net from 'node:net'

const PINGRESP = Buffer.from([0xd0, 0])
const MAX_PACKET = 1 << 20
const OUT_MIN = 256
const OUT_GROW_MAX = 1 << 22

// Buffer#copy allocates a Uint8Array view per call; for the short frames of S1–S6 a loop is cheaper.
function copyBytes(src, s, e, dst, d) {
  if (e - s > 256) return src.copy(dst, d, s, e)
  for (let k = s; k < e; k++) dst[d++] = src[k]
  return e - s
}

// Topic strings of recent PUBLISHes, found by a hash of their bytes, so a topic seen before costs no
// string (and no rehash in the Map look-ups that follow). null for a topic with a wildcard.
const TOPIC_SLOTS = 4096
const topicBytes = new Array(TOPIC_SLOTS).fill(null)
const topicStrings = new Array(TOPIC_SLOTS).fill('')

function topicOf(b, s, e) {
  let h = 0x811c9dc5
  for (let k = s; k < e; k++) {
    const ch = b[k]
    if (ch === 0x23 || ch === 0x2b) return null // no wildcards in a topic name
    h = Math.imul(h ^ ch, 0x01000193)
  }
  const slot = (h >>> 0) & (TOPIC_SLOTS - 1)
  const known = topicBytes[slot]
  if (known !== null && known.length === e - s) {
    let k = 0
    while (k < known.length && known[k] === b[s + k]) k++
    if (k === known.length) return topicStrings[slot]
  }
  const str = b.utf8Slice(s, e)
  if (e - s <= 64) {
    const copy = known !== null && known.length === e - s ? known : Buffer.allocUnsafe(e - s)
    copyBytes(b, s, e, copy, 0)
    topicBytes[slot] = copy
    topicStrings[slot] = str
  }
  return str
}

class Conn {
  constructor(sock) {
    this.sock = sock
    this.out = null // buffer for the frames built this turn
    this.outLen = 0
    this.segB = [] // output segments of this turn: buffers, starts, ends
    this.segS = []
    this.segE = []
    this.segN = 0
    this.dirty = false
    this.closed = false
    this.connected = false
    this.clientId = ''
    this.keepalive = 0
    this.seen = 0
    this.subs = null // Sub[] of this connection
    this.nextPid = 0
    this.inflight = 0 // QoS 1 messages sent and not yet PUBACKed
    this.rest = null // an incomplete frame left from the previous chunk
  }
}

class Sub {
  constructor(conn, filter, qos) {
    this.conn = conn
    this.filter = filter
    this.qos = qos
    // `P/#` and `#`: a prefix test; anything with `+` goes through the general matcher
    const hash = filter.endsWith('#')
    const head = hash ? filter.slice(0, -1) : filter
    this.kind = filter.includes('+') ? 2 : hash ? 1 : 0
    this.prefix = head // 'P/' for 'P/#', '' for '#'
    this.parent = head.slice(0, -1) // 'P' also matches 'P/#'
  }
}

/** MQTT filter match (only for `+` filters on publish and for retained look-ups on subscribe). */
export function topicMatches(filter, topic) {
  if (topic.charCodeAt(0) === 36 /* $ */ && (filter[0] === '#' || filter[0] === '+')) return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

/** A predicate for the topics a filter matches: string compare, prefix test, or the general matcher. */
export function matcherFor(filter) {
  if (!filter.includes('+') && !filter.includes('#')) return (topic) => topic === filter
  if (filter === '#') return (topic) => topic.charCodeAt(0) !== 36
  if (!filter.includes('+')) {
    const prefix = filter.slice(0, -1) // 'P/'
    const parent = filter.slice(0, -2) // 'P'
    return (topic) => topic.startsWith(prefix) || topic === parent
  }
  return (topic) => topicMatches(filter, topic)
}

/** The longest literal start of the topics a filter can match ('ret/#' -> 'ret'), for range scans. */
export function literalPrefix(filter) {
  const k = filter.search(/[+#]/)
  if (k < 0) return filter
  return filter.slice(0, k > 0 ? k - 1 : 0)
}

function validFilter(f) {
  if (f.length === 0) return false
  const levels = f.split('/')
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return false
    if (l.includes('+') && l !== '+') return false
  }
  return true
}

/**
 * store: { durable: boolean, init(ack), setRetained(topic, value|null), forEachRetained(filter, fn(value)),
 *   and when durable: persist(topic, buf, payStart, end) and ackWhenDurable(conn, pid), which calls
 *   ack(conn, pid) once everything persisted so far is flushed to disk }
 * A retained value is [qos][QoS 0 PUBLISH frame with the retain flag set].
 */
export function startFloor({ port = 0, host = '127.0.0.1', store, log = () => {} }) {
  const exact = new Map() // topic -> Sub[]
  let wild = [] // Sub[] with wildcards
  const clients = new Map() // clientId -> Conn
  const conns = new Set()
  let tick = 0
  const dirty = []
  let flushScheduled = false

  // Output of a turn, per connection: segments [buf, start, end) written in order with one write (one
  // writev when there are several). A QoS 0 frame forwarded unchanged is a segment of the chunk it came
  // in (no copy; frames from one chunk extend one segment); everything else is built in c.out.
  const flush = () => {
    flushScheduled = false
    for (let i = 0; i < dirty.length; i++) {
      const c = dirty[i]
      c.dirty = false
      const n = c.segN
      c.segN = 0
      if (c.closed || n === 0) continue
      const sock = c.sock
      const { segB, segS, segE } = c
      if (n === 1) sock.write(segView(segB[0], segS[0], segE[0]))
      else {
        sock.cork()
        for (let k = 0; k < n; k++) sock.write(segView(segB[k], segS[k], segE[k]))
        sock.uncork()
      }
      for (let k = 0; k < n; k++) segB[k] = null
      // a write the kernel did not take at once keeps a reference to c.out: start a new one; so does a
      // connection that only got a control packet (a CONNACK), so that idle connections hold no buffer
      if (sock.writableLength !== 0 || c.outLen <= 8) c.out = null
      c.outLen = 0
    }
    dirty.length = 0
  }

  const segView = (b, s, e) => (s === 0 && e === b.length ? b : b.subarray(s, e))

  const mark = (c) => {
    if (c.dirty) return
    c.dirty = true
    dirty.push(c)
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flush)
    }
  }

  const addSeg = (c, b, s, e) => {
    const n = c.segN
    if (n > 0 && c.segB[n - 1] === b && c.segE[n - 1] === s) c.segE[n - 1] = e
    else {
      c.segB[n] = b
      c.segS[n] = s
      c.segE[n] = e
      c.segN = n + 1
    }
  }

  /** Queues src[s..e) as it is (no copy). */
  const queueView = (c, src, s, e) => {
    mark(c)
    addSeg(c, src, s, e)
  }

  /** Room for n bytes in c.out, queued in order; returns the offset to write them at. */
  const reserve = (c, n) => {
    mark(c)
    let out = c.out
    if (out === null || out.length - c.outLen < n) {
      // earlier segments keep the old buffer; a new one starts empty
      const size = out === null ? OUT_MIN : Math.min(out.length * 2, OUT_GROW_MAX)
      out = c.out = Buffer.allocUnsafe(Math.max(n, size))
      c.outLen = 0
    }
    const at = c.outLen
    c.outLen = at + n
    addSeg(c, out, at, at + n)
    return at
  }

  const send4 = (c, b0, b2, b3) => {
    const at = reserve(c, 4)
    const o = c.out
    o[at] = b0
    o[at + 1] = 2
    o[at + 2] = b2
    o[at + 3] = b3
  }

  const ack = (c, pid) => {
    if (!c.closed) send4(c, 0x40, pid >> 8, pid & 255)
  }
  store.init?.(ack)

  const varintLen = (n) => (n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4)
  const writeVarint = (o, at, n) => {
    do {
      let b = n & 127
      n = Math.floor(n / 128)
      if (n > 0) b |= 128
      o[at++] = b
    } while (n > 0)
    return at
  }

  /**
   * Queues a PUBLISH to c. f0 >= 0: src[f0..pEnd) is the whole incoming frame, QoS 0 without retain.
   * Otherwise src[t0..pEnd) is `topic length, topic, [pid], payload` of a frame whose
   * QoS is srcQos; the copy gets QoS qos and the retain flag.
   */
  const sendPublish = (c, qos, retain, src, t0, srcQos, pEnd, f0 = -1) => {
    if (f0 >= 0 && qos === 0) return queueView(c, src, f0, pEnd) // an unchanged QoS 0 frame
    const tLen = (src[t0] << 8) | src[t0 + 1]
    const p0 = t0 + 2 + tLen + (srcQos > 0 ? 2 : 0)
    const rl = 2 + tLen + (qos > 0 ? 2 : 0) + (pEnd - p0)
    const at = reserve(c, 1 + varintLen(rl) + rl)
    const o = c.out
    o[at] = 0x30 | (qos << 1) | retain
    let w = writeVarint(o, at + 1, rl)
    if (qos === srcQos) {
      copyBytes(src, t0, pEnd, o, w) // one copy; only the packet id changes
      if (qos > 0) {
        const pid = (c.nextPid = (c.nextPid % 65535) + 1)
        w += 2 + tLen
        o[w] = pid >> 8
        o[w + 1] = pid & 255
        c.inflight++
      }
    } else {
      w += copyBytes(src, t0, t0 + 2 + tLen, o, w)
      if (qos > 0) {
        const pid = (c.nextPid = (c.nextPid % 65535) + 1)
        o[w++] = pid >> 8
        o[w++] = pid & 255
        c.inflight++
      }
      copyBytes(src, p0, pEnd, o, w)
    }
  }

  const sendRetained = (c, subQos, value) => {
    // value: [qos][0x31][varint][topic length][topic][payload]
    const q = Math.min(value[0], subQos)
    if (q === 0) {
      const at = reserve(c, value.length - 1)
      copyBytes(value, 1, value.length, c.out, at)
      return
    }
    let i = 2
    while (value[i] & 128) i++
    sendPublish(c, q, 1, value, i + 1, 0, value.length)
  }

  const removeSub = (s) => {
    if (s.kind === 0) {
      const list = exact.get(s.filter)
      if (list === undefined) return
      const k = list.indexOf(s)
      if (k >= 0) list.splice(k, 1)
      if (list.length === 0) exact.delete(s.filter)
    } else {
      wild = wild.filter((w) => w !== s)
    }
  }

  const close = (c) => {
    if (c.closed) return
    c.closed = true
    conns.delete(c)
    if (c.subs !== null) for (const s of c.subs) removeSub(s)
    c.subs = null
    if (c.connected && clients.get(c.clientId) === c) clients.delete(c.clientId)
    c.out = null
  }

  const onConnect = (c, b, i, end) => {
    // protocol name, level, flags, keepalive, client id [, will topic, will message][, user][, pass]
    const nameLen = (b[i] << 8) | b[i + 1]
    i += 2 + nameLen
    const level = b[i]
    const flags = b[i + 1]
    c.keepalive = (b[i + 2] << 8) | b[i + 3]
    i += 4
    if (level !== 4 && level !== 3) {
      send4(c, 0x20, 0, 1) // unacceptable protocol version
      return false
    }
    const idLen = (b[i] << 8) | b[i + 1]
    if (i + 2 + idLen > end) return false
    let id = b.toString('utf8', i + 2, i + 2 + idLen)
    if (id === '') {
      if ((flags & 2) === 0) {
        send4(c, 0x20, 0, 2) // identifier rejected
        return false
      }
      id = `floor-${Math.random().toString(36).slice(2)}`
    }
    const old = clients.get(id)
    if (old !== undefined) {
      close(old) // takeover: the newer connection wins
      old.sock.destroy()
    }
    clients.set(id, c)
    c.clientId = id
    c.connected = true
    send4(c, 0x20, 0, 0)
    return true
  }

  const onSubscribe = (c, b, i, end) => {
    const pid = (b[i] << 8) | b[i + 1]
    i += 2
    const granted = []
    const added = []
    while (i < end) {
      const fLen = (b[i] << 8) | b[i + 1]
      const filter = b.toString('utf8', i + 2, i + 2 + fLen)
      i += 2 + fLen
      let qos = b[i++] & 3
      if (qos > 1) qos = 1 // QoS 2 is granted as 1
      if (!validFilter(filter)) {
        granted.push(0x80)
        continue
      }
      if (c.subs === null) c.subs = []
      const same = c.subs.find((s) => s.filter === filter)
      if (same !== undefined) {
        same.qos = qos
        added.push(same)
      } else {
        const s = new Sub(c, filter, qos)
        c.subs.push(s)
        if (s.kind === 0) {
          const list = exact.get(filter)
          if (list === undefined) exact.set(filter, [s])
          else list.push(s)
        } else {
          wild = [...wild, s]
        }
        added.push(s)
      }
      granted.push(qos)
    }
    const at = reserve(c, 4 + granted.length)
    const o = c.out
    o[at] = 0x90
    o[at + 1] = 2 + granted.length
    o[at + 2] = pid >> 8
    o[at + 3] = pid & 255
    for (let k = 0; k < granted.length; k++) o[at + 4 + k] = granted[k]
    for (const s of added) store.forEachRetained(s.filter, (value) => sendRetained(c, s.qos, value))
  }

  const onUnsubscribe = (c, b, i, end) => {
    const pid = (b[i] << 8) | b[i + 1]
    i += 2
    while (i < end) {
      const fLen = (b[i] << 8) | b[i + 1]
      const filter = b.toString('utf8', i + 2, i + 2 + fLen)
      i += 2 + fLen
      if (c.subs === null) continue
      const k = c.subs.findIndex((s) => s.filter === filter)
      if (k >= 0) removeSub(c.subs.splice(k, 1)[0])
    }
    send4(c, 0xb0, pid >> 8, pid & 255)
  }

  /** b[pos] is the fixed header of a PUBLISH whose variable header starts at i and ends at end. */
  const onPublish = (c, b, b0, pos, i, end) => {
    const f0 = b0 === 0x30 ? pos : -1 // forwarded unchanged when a subscriber takes QoS 0
    const qos = (b0 >> 1) & 3
    if (qos > 1) return false // QoS 2 (and 3) are not served by the floor
    const tLen = (b[i] << 8) | b[i + 1]
    const tEnd = i + 2 + tLen
    const payStart = qos > 0 ? tEnd + 2 : tEnd
    if (tLen === 0 || payStart > end) return false
    const topic = topicOf(b, i + 2, tEnd)
    if (topic === null) return false
    const retain = b0 & 1
    if (retain === 1) {
      let value = null
      if (end > payStart) {
        // [qos][0x31][varint][topic length][topic][payload]
        const rl = 2 + tLen + (end - payStart)
        value = Buffer.allocUnsafe(2 + varintLen(rl) + rl)
        value[0] = qos
        value[1] = 0x31
        const w = writeVarint(value, 2, rl)
        copyBytes(b, i, tEnd, value, w)
        copyBytes(b, payStart, end, value, w + 2 + tLen)
      }
      store.setRetained(topic, value)
    }
    if (qos > 0) {
      const pid = (b[tEnd] << 8) | b[tEnd + 1]
      if (store.durable) {
        if (retain === 0) store.persist(topic, b, payStart, end)
        store.ackWhenDurable(c, pid) // PUBACK only once the write is on disk
      } else ack(c, pid)
    }
    const list = exact.get(topic)
    if (list !== undefined) {
      for (let k = 0; k < list.length; k++) {
        const s = list[k]
        sendPublish(s.conn, Math.min(s.qos, qos), 0, b, i, qos, end, f0)
      }
    }
    for (let k = 0; k < wild.length; k++) {
      const s = wild[k]
      let hit
      if (s.kind === 1) {
        hit =
          s.prefix === ''
            ? topic.charCodeAt(0) !== 36
            : topic.startsWith(s.prefix) || (topic.length === s.parent.length && topic === s.parent)
      } else hit = topicMatches(s.filter, topic)
      if (hit) sendPublish(s.conn, Math.min(s.qos, qos), 0, b, i, qos, end, f0)
    }
    return true
  }

  const onData = (c, chunk) => {
    let b = chunk
    if (c.rest !== null) {
      b = Buffer.concat([c.rest, chunk])
      c.rest = null
    }
    c.seen = tick
    const len = b.length
    let pos = 0
    while (pos + 2 <= len) {
      const b0 = b[pos]
      let i = pos + 1
      let rl = 0
      let mul = 1
      let byte
      do {
        if (i >= len) {
          byte = -1
          break
        }
        byte = b[i++]
        rl += (byte & 127) * mul
        mul *= 128
      } while (byte & 128 && mul <= 2097152)
      if (byte === -1) break
      if (byte & 128 || rl > MAX_PACKET) return drop(c, 'malformed remaining length')
      const end = i + rl
      if (end > len) break
      const type = b0 >> 4
      if (type === 3) {
        if (!c.connected || !onPublish(c, b, b0, pos, i, end)) return drop(c, 'bad PUBLISH')
      } else if (type === 4) {
        if (c.inflight > 0) c.inflight--
      } else if (!c.connected) {
        if (type !== 1 || !onConnect(c, b, i, end)) return drop(c, 'bad CONNECT')
      } else if (type === 8 && b0 === 0x82) onSubscribe(c, b, i, end)
      else if (type === 12) {
        const at = reserve(c, 2)
        PINGRESP.copy(c.out, at)
      } else if (type === 14) {
        c.sock.end()
        close(c)
        return
      } else if (type === 10 && b0 === 0xa2) onUnsubscribe(c, b, i, end)
      else return drop(c, `unexpected packet type ${type}`)
      pos = end
    }
    if (pos < len) c.rest = b.subarray(pos) // each chunk is a fresh buffer: keeping a view is safe
  }

  const drop = (c, why) => {
    log(`closing ${c.clientId || 'a connection'}: ${why}`)
    const views = []
    for (let k = 0; k < c.segN; k++) views.push(segView(c.segB[k], c.segS[k], c.segE[k]))
    c.segN = 0
    close(c)
    // what was queued (a CONNACK with an error code) goes out before the close
    if (views.length > 0 && !c.sock.destroyed) c.sock.end(Buffer.concat(views))
    else c.sock.destroy()
  }

  const noop = () => {}
  // TCP_NODELAY: output is already gathered into one write per socket per turn, so Nagle's algorithm
  // only delays it (S2 waited on delayed ACKs with it on); FLOOR_NODELAY=0 turns it back on, as Mosquitto has it
  const server = net.createServer({ noDelay: process.env.FLOOR_NODELAY !== '0' }, (sock) => {
    const c = new Conn(sock)
    c.seen = tick
    conns.add(c)
    sock.on('data', (chunk) => onData(c, chunk))
    sock.on('error', noop)
    sock.on('close', () => close(c))
  })

  // keep-alive: one coarse clock and one sweep for all connections (1.5 × keepalive, MQTT 3.1.1 §3.1.2.10)
  const clock = setInterval(() => {
    tick++
    if (tick % 5 !== 0) return
    for (const c of conns) {
      if (c.keepalive > 0 && tick - c.seen > c.keepalive * 1.5) drop(c, 'keep-alive expired')
      else if (!c.connected && tick - c.seen > 10) drop(c, 'no CONNECT')
    }
  }, 1000)
  clock.unref()

  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      resolve({
        port: server.address().port,
        close: () => {
          clearInterval(clock)
          for (const c of conns) c.sock.destroy()
          return new Promise((r) => server.close(() => r()))
        },
      })
    })
  })
}
