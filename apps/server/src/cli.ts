#!/usr/bin/env node
import { EXIT, runCli } from './cli-program.js'
import type { Server } from './server-types.js'

let server: Server | undefined

function onSignal(signal: NodeJS.Signals): void {
  if (!server) process.exit(EXIT.failure)
  // a second signal while draining means "now"
  process.once(signal, () => process.exit(EXIT.failure))
  server.logger.info({ signal }, 'signal received')
  server.close().then(
    () => process.exit(EXIT.ok),
    (err: unknown) => {
      server?.logger.error({ err }, 'shutdown failed')
      process.exit(EXIT.failure)
    },
  )
}

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  onStarted: (started, reload) => {
    server = started
    process.once('SIGTERM', onSignal)
    process.once('SIGINT', onSignal)
    // reload TLS files, roles and anonymous settings; connections stay
    process.on('SIGHUP', () => {
      started.logger.info({ signal: 'SIGHUP' }, 'signal received: reloading the configuration')
      void reload()
    })
    // LMDB commits are crash-safe and the broker persisted its state as it went: log and exit, do not limp on
    process.on('uncaughtException', (err) => {
      started.logger.fatal({ err }, 'uncaught exception')
      process.exit(EXIT.failure)
    })
  },
})
// `start` keeps running on its listeners; every other command (and a failed start) ends here.
if (!server) process.exit(code)
