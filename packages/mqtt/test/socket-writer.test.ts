import * as net from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { beginRead, endRead, SocketWriter } from '../src/socket-writer.js'

/** `count` connected socket pairs on 127.0.0.1: the server side is written to, the client side collects. */
async function socketPairs(count: number) {
  const accepted: net.Socket[] = []
  const server = net.createServer((s) => accepted.push(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  const clients: { socket: net.Socket; received: Buffer[] }[] = []
  for (let i = 0; i < count; i++) {
    const socket = net.connect(port, '127.0.0.1')
    const received: Buffer[] = []
    socket.on('data', (chunk) => received.push(chunk))
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    clients.push({ socket, received })
  }
  await vi.waitFor(() => expect(accepted.length).toBe(count))
  return { server, accepted, clients }
}

describe('SocketWriter', () => {
  let pairs: Awaited<ReturnType<typeof socketPairs>>
  const faults: unknown[] = []
  const sink = { fault: (err: unknown) => faults.push(err) }

  beforeAll(async () => {
    pairs = await socketPairs(4)
  })
  afterAll(async () => {
    for (const c of pairs.clients) c.socket.destroy()
    for (const s of pairs.accepted) s.destroy()
    await new Promise((resolve) => pairs.server.close(resolve))
  })

  /** Writers on the server side of each pair, recording what they hand to the socket. */
  function spiedWriters() {
    // Clients are connected in order, but the server may accept them in any: match by port.
    return pairs.clients.map((c) => {
      const socket = pairs.accepted.find((s) => s.remotePort === c.socket.localPort)!
      const sent: Buffer[] = []
      const write = socket.write.bind(socket)
      socket.write = ((chunk: Buffer) => {
        sent.push(chunk)
        return write(chunk)
      }) as typeof socket.write
      return {
        writer: new SocketWriter(socket, sink, undefined),
        sent,
        restore: () => (socket.write = write),
      }
    })
  }

  it('writes at once what a read of a lone packet made, at the end of the turn what a burst made', async () => {
    const writers = spiedWriters()
    const [lone, burst] = writers
    beginRead()
    lone!.writer.write(Buffer.from('x'))
    expect(lone!.sent.length).toBe(0)
    endRead(true)
    expect(lone!.sent.map(String)).toEqual(['x'])
    beginRead()
    burst!.writer.write(Buffer.from('y'))
    burst!.writer.write(Buffer.from('z'))
    endRead(false)
    expect(burst!.sent.length).toBe(0)
    await vi.waitFor(() => expect(burst!.sent.map(String)).toEqual(['yz']))
    await vi.waitFor(() => {
      expect(Buffer.concat(pairs.clients[0]!.received).toString()).toBe('x')
      expect(Buffer.concat(pairs.clients[1]!.received).toString()).toBe('yz')
    })
    for (const w of writers) w.restore()
    for (const c of pairs.clients) c.received.length = 0
    expect(faults).toEqual([])
  })

  it('writes what each writer queued in one turn, joined once for writers that queued the same packets', async () => {
    const writers = spiedWriters()
    const a = Buffer.from('aa')
    const b = Buffer.from('bbb')
    const c = Buffer.from('c')
    // 0 and 1 queue the same packets (a fan-out); 2 the same count but other packets; 3 the same as 0 again.
    for (const i of [0, 1]) {
      writers[i]!.writer.write(a)
      writers[i]!.writer.write(b)
    }
    writers[2]!.writer.write(a)
    writers[2]!.writer.write(c)
    writers[3]!.writer.write(a)
    writers[3]!.writer.write(b)
    await vi.waitFor(() => {
      for (const w of writers) expect(w.sent.length).toBe(1)
    })
    expect(writers[1]!.sent[0]).toBe(writers[0]!.sent[0])
    expect(writers[2]!.sent[0]).not.toBe(writers[0]!.sent[0])
    expect(writers[3]!.sent[0]).not.toBe(writers[0]!.sent[0])
    const expected = ['aabbb', 'aabbb', 'aac', 'aabbb']
    await vi.waitFor(() => {
      pairs.clients.forEach((client, i) => {
        expect(Buffer.concat(client.received).toString()).toBe(expected[i])
      })
    })
    // The next turn joins afresh: the same packets again are not taken from the last turn.
    writers[0]!.writer.write(a)
    writers[0]!.writer.write(b)
    await vi.waitFor(() => expect(writers[0]!.sent.length).toBe(2))
    expect(writers[0]!.sent[1]).not.toBe(writers[0]!.sent[0])
    expect(writers[0]!.sent[1]!.toString()).toBe('aabbb')
    expect(faults).toEqual([])
  })
})
