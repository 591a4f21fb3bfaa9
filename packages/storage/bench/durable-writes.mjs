// Durable-write throughput and latency, A/B in one run: closed-loop writers (each awaits its put before
// the next), fsync on, at 1, 16, 100 and 1,000 concurrent writers. Each (build, writers, repetition) runs
// in a fresh process on a fresh store; builds alternate (A B, B A, ...) so machine noise hits both alike.
//
//   node bench/durable-writes.mjs                      # this checkout's dist/ alone
//   node bench/durable-writes.mjs --a <rev>            # build <rev>'s src into .bench/<commit>/ and compare
//   node bench/durable-writes.mjs --a <rev> --b <rev>  # two revisions (B defaults to this checkout's dist/)
//   REPS=5 SECONDS=3 WRITERS=1,16,100,1000 node bench/durable-writes.mjs --a main
//
// Prints, per build and writer count, the median over repetitions of writes/s, of each run's p50 and p99
// latency (call to resolution of a put) and of the process CPU per write, and B/A ratios: per repetition
// (A and B ran back to back), then the median.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)

if (args[0] === '--child') await child(args[1], Number(args[2]), Number(args[3]))
else await parent()

async function child(entry, writers, seconds) {
  const { openStore } = await import(pathToFileURL(entry).href)
  const dir = mkdtempSync(join(tmpdir(), 'proj-durable-'))
  const store = await openStore({ path: dir, compactionIntervalMs: 0 })
  const dogs = store.table('Dog')
  const record = { name: 'Rex the Third', breed: 'Border Collie', age: 7, pad: 'x'.repeat(150) }
  let seq = 0
  let measuring = false
  let stop = false
  const latencies = []
  let batches = 0
  const commitMs = []
  const syncMs = []
  store.onCommit((stats) => {
    if (!measuring) return
    batches++
    commitMs.push(stats.commitMs)
    syncMs.push(stats.syncMs)
  })
  async function writer() {
    while (!stop) {
      const id = `d${(Math.random() * 1e9) | 0}-${seq++}`
      const start = performance.now()
      await dogs.put(id, record)
      if (measuring) latencies.push(performance.now() - start)
    }
  }
  const running = Array.from({ length: writers }, writer)
  await new Promise((r) => setTimeout(r, 500)) // warm-up
  measuring = true
  const cpu0 = process.cpuUsage()
  const rusage0 = process.resourceUsage()
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  measuring = false
  const elapsed = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const rusage = process.resourceUsage()
  const switches =
    rusage.voluntaryContextSwitches -
    rusage0.voluntaryContextSwitches +
    rusage.involuntaryContextSwitches -
    rusage0.involuntaryContextSwitches
  stop = true
  await Promise.all(running)
  await store.close()
  rmSync(dir, { recursive: true, force: true })
  latencies.sort((a, b) => a - b)
  const middle = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1] ?? 0
  const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0
  process.stdout.write(
    `${JSON.stringify({
      writes: latencies.length,
      perSecond: latencies.length / elapsed,
      p50: at(0.5),
      p99: at(0.99),
      cpuUs: (cpu.user + cpu.system) / latencies.length,
      switches: switches / latencies.length,
      batch: latencies.length / batches,
      commitMs: middle(commitMs),
      syncMs: middle(syncMs),
    })}\n`,
  )
}

function buildRevision(rev) {
  const commit = execFileSync('git', ['rev-parse', `${rev}^{commit}`], { cwd: packageDir })
    .toString()
    .trim()
  const out = join(packageDir, '.bench', commit)
  if (existsSync(join(out, 'dist', 'index.js'))) return join(out, 'dist', 'index.js')
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  const tar = execFileSync('git', ['archive', commit, 'src'], { cwd: packageDir })
  execFileSync('tar', ['-x', '-C', out], { input: tar })
  writeFileSync(
    join(out, 'tsconfig.json'),
    JSON.stringify({
      extends: '../../tsconfig.json',
      compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/.tsbuildinfo' },
      include: ['src'],
    }),
  )
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-p', out], {
    stdio: 'inherit',
  })
  return join(out, 'dist', 'index.js')
}

function runChild(entry, writers, seconds) {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), '--child', entry, writers, seconds],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    let out = ''
    proc.stdout.on('data', (chunk) => (out += chunk))
    proc.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}`)),
    )
  })
}

async function parent() {
  const b = args.indexOf('--b')
  const builds = [['B', b >= 0 ? buildRevision(args[b + 1]) : join(packageDir, 'dist', 'index.js')]]
  const a = args.indexOf('--a')
  if (a >= 0) builds.unshift(['A', buildRevision(args[a + 1])])
  const reps = Number(process.env.REPS ?? 3)
  const seconds = Number(process.env.SECONDS ?? 3)
  const writerCounts = (process.env.WRITERS ?? '1,16,100,1000').split(',').map(Number)
  const results = new Map()
  for (let rep = 0; rep < reps; rep++) {
    for (const writers of writerCounts) {
      const order = rep % 2 === 0 ? builds : [...builds].reverse()
      for (const [name, entry] of order) {
        const r = await runChild(entry, writers, seconds)
        const key = `${name} ${writers}`
        if (!results.has(key)) results.set(key, [])
        results.get(key).push(r)
        console.error(
          `# rep ${rep + 1} ${key}: ${Math.round(r.perSecond)}/s p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} ` +
            `cpu ${r.cpuUs.toFixed(1)} µs/write, ${r.switches.toFixed(2)} context switches/write, ` +
            `${r.batch.toFixed(1)} writes/batch, batch p50 queued→committed ${r.commitMs.toFixed(2)} ms, ` +
            `committed→flushed ${r.syncMs.toFixed(2)} ms`,
        )
      }
    }
  }
  const median = (xs) => {
    const s = [...xs].sort((x, y) => x - y)
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
  }
  const fields = ['perSecond', 'p50', 'p99', 'cpuUs', 'switches']
  const row = (name, writers) => {
    const rs = results.get(`${name} ${writers}`)
    return Object.fromEntries(fields.map((f) => [f, median(rs.map((r) => r[f]))]))
  }
  // B/A per repetition (each pair ran back to back), then the median: steadier than a ratio of medians
  const pairedRatio = (writers, field) => {
    const a = results.get(`A ${writers}`)
    const b = results.get(`B ${writers}`)
    return median(a.map((r, i) => b[i][field] / r[field]))
  }
  console.log(`\n${reps} repetitions of ${seconds} s, fsync on, Node ${process.version}; medians\n`)
  const names = builds.map(([n]) => n)
  const head = names.flatMap((n) => [`${n} writes/s`, `${n} p50 ms`, `${n} p99 ms`, `${n} CPU µs/write`])
  if (names.length === 2) head.push('B/A writes/s', 'B/A p50', 'B/A p99', 'B/A CPU')
  console.log(`| writers | ${head.join(' | ')} |`)
  console.log(`|---:|${head.map(() => '---:').join('|')}|`)
  for (const writers of writerCounts) {
    const rows = names.map((n) => row(n, writers))
    const cells = rows.flatMap((r) => [
      Math.round(r.perSecond).toLocaleString('en-US'),
      r.p50.toFixed(2),
      r.p99.toFixed(2),
      r.cpuUs.toFixed(1),
    ])
    if (rows.length === 2)
      for (const field of ['perSecond', 'p50', 'p99', 'cpuUs'])
        cells.push(`${pairedRatio(writers, field).toFixed(2)}×`)
    console.log(`| ${writers} | ${cells.join(' | ')} |`)
  }
}
