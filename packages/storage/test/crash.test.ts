import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from '@proj/test-utils'
import { beforeAll, describe, expect, it } from 'vitest'
import { openStore } from '../src/index.js'

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
    const child: ChildProcess = spawn(
      process.execPath,
      [join(packageDir, 'test/fixtures/writer.mjs'), dir.path],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    const acked = { dog: new Map<string, number>(), session: new Set<string>(), txn: new Set<number>() }
    let maxCounter = 0
    let buffered = ''
    let total = 0
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    )
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${total} writes acknowledged`)), 15_000)
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString()
        const lines = buffered.split('\n')
        buffered = lines.pop()!
        for (const line of lines) {
          const [kind, n, cursor] = line.split(' ')
          if (kind === 'dog') acked.dog.set(`d${n}`, Number(cursor))
          else if (kind === 'session') acked.session.add(`s${n}`)
          else if (kind === 'txn') {
            acked.txn.add(Number(n))
            maxCounter = Math.max(maxCounter, Number(n))
          } else continue
          total++
        }
        // kill mid-load, well after batching has kicked in
        if (total >= 3000 && !child.killed) {
          clearTimeout(timer)
          child.kill('SIGKILL')
          resolve()
        }
      })
      child.on('exit', () => reject(new Error('writer exited early')))
    })
    expect(await exited).toBe('SIGKILL')

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
      const latest = new Map<unknown, { timestamp: number; value: unknown }>()
      let previous = 0
      for (const event of store.log.readSince()) {
        expect(event.cursor).toBeGreaterThan(previous)
        previous = event.cursor
        expect(event.table).toBe('Dog')
        latest.set(event.id, { timestamp: event.timestamp, value: event.value })
      }
      expect(previous).toBe(store.log.lastCursor)
      let records = 0
      for (const entry of dogs.entries()) {
        records++
        expect(latest.get(entry.id), String(entry.id)).toEqual({
          timestamp: entry.version,
          value: entry.value,
        })
      }
      expect(records).toBe(latest.size)
      // writes keep working after recovery
      const next = await dogs.put('after', 1)
      expect(next.cursor).toBe(previous + 1)
    } finally {
      await store.close()
    }
  }, 60_000)
})
