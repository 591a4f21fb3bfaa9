// Preloaded into the server processes by cluster.bench.test.ts when BENCH_CPU_PROF names a folder
// (`--cpu-prof` is not allowed in NODE_OPTIONS): profiles the whole process and writes
// `<folder>/<pid>.cpuprofile` when it exits (open it in Chrome DevTools or speedscope).
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { join } from 'node:path'

const dir = process.env.BENCH_CPU_PROF
if (dir) {
  const session = new Session()
  session.connect()
  session.post('Profiler.setSamplingInterval', { interval: 500 })
  session.post('Profiler.enable')
  session.post('Profiler.start')
  // a same-thread session answers synchronously, so this works inside 'exit'
  process.once('exit', () => {
    session.post('Profiler.stop', (error, result) => {
      if (!error) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile))
    })
  })
}
