import { defineProject } from 'vitest/config'

export default defineProject({
  resolve: { conditions: ['@proj/source'] },
  ssr: { resolve: { conditions: ['@proj/source'] } },
  test: {
    name: 'server',
    include: ['test/**/*.test.ts'],
    // e2e suites start the built dist/cli.js; build it when stale
    globalSetup: ['test/global-setup.ts'],
  },
})
