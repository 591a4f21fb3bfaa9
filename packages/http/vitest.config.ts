import { defineProject } from 'vitest/config'

export default defineProject({
  resolve: { conditions: ['@proj/source'] },
  ssr: { resolve: { conditions: ['@proj/source'] } },
  test: { name: 'http', include: ['test/**/*.test.ts'], testTimeout: 20_000, hookTimeout: 30_000 },
})
