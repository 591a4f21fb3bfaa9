// TEMPORARY development scaffold until @proj/resource's openRuntime lands; the final suites use the real runtime.
import { AsyncQueue } from '../../src/async-queue.js'

class FakeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export function fakeRuntime(): any {
  const tables = new Map<string, Map<string, { value: unknown; version: number }>>([['Dog', new Map()]])
  const log: any[] = []
  const subs = new Set<{ filter: string; fn: (e: any) => void }>()
  let clock = 1000
  const users = new Map([
    ['ann', { user: { username: 'ann', role: 'admin', superUser: true }, password: 'secret' }],
  ])
  const tokens = new Map<string, any>()
  const split = (target: string) => {
    const i = target.indexOf('/')
    const path = i < 0 ? target : target.slice(0, i)
    const table = tables.get(path)
    if (!table) throw new FakeError('NOT_FOUND', `no table ${path}`)
    return { path, id: i < 0 ? '' : target.slice(i + 1), table }
  }
  const emit = (type: string, path: string, id: string, value: unknown, version: number, logged = true) => {
    const event = {
      type,
      topic: `${path}/${id}`,
      path,
      id,
      value,
      timestamp: version,
      cursor: logged ? log.length + 1 : 0,
      retained: false,
    }
    if (logged) log.push(event)
    for (const s of subs) if (s.filter === `${path}/` ? true : s.filter === event.topic) s.fn(event)
  }
  const rt = {
    authenticate: async (u: string, p: string) => (users.get(u)?.password === p ? users.get(u)!.user : null),
    anonymous: () => null,
    issueToken: async (user: any) => {
      const t = `tok-${tokens.size}`
      tokens.set(t, user)
      return t
    },
    verifyToken: async (t: string) => tokens.get(t) ?? null,
    async get(target: string) {
      const { id, table } = split(target)
      const r = table.get(id)
      return r ? { id, value: r.value, version: r.version } : undefined
    },
    async list(path: string, query: any) {
      const { table } = split(`${path}/`)
      let rows = [...table.entries()].map(([id, r]) => ({ id, value: r.value, version: r.version }))
      for (const [k, v] of Object.entries(query.where ?? {}))
        rows = rows.filter((r: any) => String(r.value[k]) === v)
      return rows.slice(query.offset ?? 0, (query.offset ?? 0) + (query.limit ?? 1e9))
    },
    async put(target: string, value: unknown, _ctx: any, o?: any) {
      const { path, id, table } = split(target)
      const cur = table.get(id)
      if (o?.ifVersion !== undefined && cur?.version !== o.ifVersion)
        throw new FakeError('CONFLICT', 'version')
      const version = ++clock
      table.set(id, { value, version })
      emit('put', path, id, value, version)
      return { id, version, created: !cur }
    },
    async patch(target: string, p: any, _ctx: any, o?: any) {
      const { path, id, table } = split(target)
      const cur = table.get(id)
      if (!cur) throw new FakeError('NOT_FOUND', 'nope')
      if (o?.ifVersion !== undefined && cur.version !== o.ifVersion)
        throw new FakeError('CONFLICT', 'version')
      const version = ++clock
      const value = { ...(cur.value as any), ...p }
      table.set(id, { value, version })
      emit('patch', path, id, value, version)
      return { id, version, created: false }
    },
    async post(path: string, value: unknown) {
      const id = `g${clock}`
      const r = await rt.put(`${path}/${id}`, value, null)
      return { ...r, created: true }
    },
    async delete(target: string, _ctx: any, o?: any) {
      const { path, id, table } = split(target)
      const cur = table.get(id)
      if (!cur) return false
      if (o?.ifVersion !== undefined && cur.version !== o.ifVersion)
        throw new FakeError('CONFLICT', 'version')
      table.delete(id)
      emit('delete', path, id, undefined, ++clock)
      return true
    },
    async publish(topic: string, message: any) {
      const { path, id } = split(topic)
      emit('message', path, id, message.value ?? message.payload, ++clock, message.qos > 0)
      return {}
    },
    async connect(
      target: string,
      _ctx: any,
      incoming?: AsyncIterable<unknown>,
      options?: { after?: number },
    ) {
      const { id, table } = split(target)
      const q = new AsyncQueue<any>({ highWaterMark: 1e9 })
      if (options?.after !== undefined) {
        for (const e of log)
          if (e.cursor > options.after && (target.endsWith('/') || e.topic === target)) q.push(e)
      } else if (id && table.get(id))
        q.push({
          type: 'put',
          topic: target,
          path: target.split('/')[0],
          id,
          value: table.get(id)!.value,
          timestamp: table.get(id)!.version,
          cursor: 0,
          retained: true,
        })
      const sub = { filter: target, fn: (e: any) => q.push(e) }
      subs.add(sub)
      if (incoming)
        void (async () => {
          for await (const m of incoming) emit('message', target.split('/')[0]!, id, m, ++clock, false)
        })()
      const it = q[Symbol.asyncIterator]()
      return {
        [Symbol.asyncIterator]: () => ({
          next: () => it.next(),
          return: () => {
            subs.delete(sub)
            return it.return!()
          },
        }),
      }
    },
  }
  return rt
}
