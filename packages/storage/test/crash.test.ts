import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from '@proj/test-utils'
import { beforeAll, describe, expect, it } from 'vitest'
import { openStore, type Store, type Table } from '../src/index.js'

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')

/** The child imports dist/: rebuild it when any source file is newer. */
function buildIfStale(): void {
  const dist = join(packageDir, 'dist', 'index.js')
  let built = 0
  try {
    built = statSync(dist).mtimeMs
  } catch {}
  const src = join(packageDir, 'src')
  const newest = Math.max(...readdirSync(src).map((f) => statSync(join(src, f)).mtimeMs))
  if (newest <= built) return
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-b', packageDir], { stdio: 'inherit' })
}

describe('crash safety', () => {
  beforeAll(buildIfStale, 120_000)

  it('keeps every acknowledged write and a consistent log after SIGKILL under load', async () => {
    await using dir = await tempDir('proj-storage-crash-')
    const acked = { dog: new Map<string, number>(), session: new Set<string>(), txn: new Set<number>() }
    let maxCounter = 0
    let total = 0
    await killWhen('writer.mjs', dir.path, (line) => {
      const [kind, n, cursor] = line.split(' ')
      if (kind === 'dog') acked.dog.set(`d${n}`, Number(cursor))
      else if (kind === 'session') acked.session.add(`s${n}`)
      else if (kind === 'txn') {
        acked.txn.add(Number(n))
        maxCounter = Math.max(maxCounter, Number(n))
      } else return false
      // kill mid-load, well after batching has kicked in
      return ++total >= 3000
    })

    const store = await openStore({ path: dir.path, compactionIntervalMs: 0 })
    try {
      const dogs = store.table<any>('Dog')
      const sessions = store.table<any>('Session', { log: false })
      for (const [id, cursor] of acked.dog) {
        expect(dogs.get(id)?.n, id).toBe(Number(id.slice(1)))
        expect(cursor).toBeLessThanOrEqual(store.log.lastCursor)
      }
      for (const id of acked.session) expect(sessions.get(id)?.n, id).toBe(Number(id.slice(1)))
      for (const n of acked.txn) {
        expect(dogs.get(`t${n}`)).toMatchObject({ n })
        expect(sessions.get(`t${n}`)).toEqual({ n })
      }
      expect(dogs.get('counter').n).toBeGreaterThanOrEqual(maxCounter)

      // the log: cursors strictly increasing, and every record's latest version has its log entry
      const previous = expectLogMatchesRecords(store, dogs)
      // writes keep working after recovery
      const next = await dogs.put('after', 1)
      expect(next.cursor).toBe(previous + 1)
    } finally {
      await store.close()
    }
  }, 60_000)

  it('keeps every acknowledged write and a consistent log after SIGKILL while batches overlap', async () => {
    await using dir = await tempDir('proj-storage-overlap-')
    const puts = new Map<string, number>()
    const patches = new Map<string, number>()
    const deletes = new Map<string, number>()
    const deleting = new Set<string>()
    const counters = new Map<string, number>()
    const cursors: number[] = []
    let overlapping = false
    await killWhen('overlap-writer.mjs', dir.path, (line) => {
      const [kind, id, a, b] = line.split(' ') as [string, string, string, string]
      if (kind === 'overlap') overlapping = true
      else if (kind === 'deleting') deleting.add(id)
      else if (kind === 'put') puts.set(id, Number(a))
      else if (kind === 'patch') patches.set(id, Number(a))
      else if (kind === 'delete') deletes.set(id, Number(a))
      else if (kind === 'counter') counters.set(id, Math.max(counters.get(id) ?? 0, Number(a)))
      else return false
      if (kind !== 'overlap' && kind !== 'deleting') cursors.push(Number(kind === 'counter' ? b : a))
      // kill mid-load, once batches have been seen in flight together
      return overlapping && cursors.length >= 3000
    })
    expect(overlapping).toBe(true)

    const store = await openStore({ path: dir.path, compactionIntervalMs: 0 })
    try {
      const dogs = store.table<any>('Dog')
      // A write is safe from SIGKILL once its transaction commits, before the fsync and the acknowledgement
      // that follow it: a delete the writer issued may have committed without being acknowledged. Its record
      // is then gone, and the log holds that delete after the acknowledged write.
      const loggedDeletes = new Map<string, number>()
      for (const event of store.log.readSince()) {
        if (event.type === 'delete') loggedDeletes.set(String(event.id), event.cursor)
        // a put's entry keeps the value it wrote after the patch that replaced its record
        if (event.type === 'put' && String(event.id).startsWith('p/'))
          expect(event.value, String(event.id)).not.toHaveProperty('b')
      }
      const expectKept = (id: string, cursor: number, value: object) => {
        if (deletes.has(id)) return
        const record = dogs.get(id)
        if (record === undefined && deleting.has(id))
          expect(loggedDeletes.get(id), id).toBeGreaterThan(cursor)
        else expect(record, id).toMatchObject(value)
      }
      // every acknowledged write is there, each patch merged onto its put
      for (const [id, cursor] of puts) expectKept(id, cursor, { a: Number(id.split('/')[2]) })
      for (const [id, cursor] of patches)
        expectKept(id, cursor, { a: Number(id.split('/')[2]), b: Number(id.split('/')[2]) })
      for (const [id] of deletes) expect(dogs.get(id), id).toBeUndefined()
      for (const [id, n] of counters) expect(dogs.get(id)?.n, id).toBeGreaterThanOrEqual(n)
      const last = store.log.lastCursor
      for (const cursor of cursors) expect(cursor).toBeLessThanOrEqual(last)
      expect(new Set(cursors).size).toBe(cursors.length)
      const previous = expectLogMatchesRecords(store, dogs)
      const logged = new Set<number>()
      for (const event of store.log.readSince()) logged.add(event.cursor)
      for (const cursor of cursors) expect(logged.has(cursor), String(cursor)).toBe(true)
      const next = await dogs.put('after', 1)
      expect(next.cursor).toBe(previous + 1)
    } finally {
      await store.close()
    }
  }, 60_000)
})

/**
 * Runs a fixture writer on `path`, feeds it each line it prints, SIGKILLs it when `onLine` says so, and
 * settles once its output is closed: every line it printed before the kill has been read.
 */
async function killWhen(fixture: string, path: string, onLine: (line: string) => boolean): Promise<void> {
  const child: ChildProcess = spawn(process.execPath, [join(packageDir, 'test/fixtures', fixture), path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let buffered = ''
  let lines = 0
  // 'close', not 'exit': 'exit' can come while printed lines still wait in the pipe
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('close', (_code, signal) => resolve(signal)),
  )
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${lines} lines from the writer`)), 15_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const complete = buffered.split('\n')
      buffered = complete.pop()!
      for (const line of complete) {
        lines++
        if (!onLine(line) || child.killed) continue
        clearTimeout(timer)
        child.kill('SIGKILL')
        resolve()
      }
    })
    child.on('exit', () => reject(new Error('writer exited early')))
  })
  expect(await exited).toBe('SIGKILL')
}

/**
 * The log's cursors strictly increase up to `lastCursor`, and every record's latest version (tombstones
 * aside) has its log entry. Returns the last cursor.
 */
function expectLogMatchesRecords(store: Store, table: Table<any>): number {
  const latest = new Map<unknown, { timestamp: number; value: unknown }>()
  let previous = 0
  for (const event of store.log.readSince()) {
    expect(event.cursor).toBeGreaterThan(previous)
    previous = event.cursor
    expect(event.table).toBe(table.name)
    if (event.type === 'delete') latest.delete(event.id)
    else latest.set(event.id, { timestamp: event.timestamp, value: event.value })
  }
  expect(previous).toBe(store.log.lastCursor)
  let records = 0
  for (const entry of table.entries()) {
    records++
    expect(latest.get(entry.id), String(entry.id)).toEqual({
      timestamp: entry.version,
      value: entry.value,
    })
  }
  expect(records).toBe(latest.size)
  return previous
}
