import { defineProject } from 'vitest/config'

export default defineProject({
  resolve: { conditions: ['@proj/source'] },
  ssr: { resolve: { conditions: ['@proj/source'] } },
  test: {
    name: 'server',
    include: ['test/**/*.test.ts'],
    // child processes (server starts, CLI runs that open LMDB) take a second or more each
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // e2e suites start the built dist/cli.js; build it when stale
    globalSetup: ['test/global-setup.ts'],
  },
})
