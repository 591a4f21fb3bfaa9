import { defineProject } from 'vitest/config'

// `pnpm fuzz` (scripts/fuzz.mjs): the long fuzz mode, one test that may run for hours; never part of `pnpm test`.
export default defineProject({
  resolve: { conditions: ['@proj/source'] },
  ssr: { resolve: { conditions: ['@proj/source'] } },
  test: {
    name: 'server-fuzz',
    include: ['test/fuzz/long.fuzz.ts'],
    testTimeout: 24 * 3600_000,
    hookTimeout: 120_000,
    globalSetup: ['test/global-setup.ts'],
  },
})
