import { defineProject } from 'vitest/config'

export default defineProject({
  resolve: { conditions: ['@proj/source'] },
  ssr: { resolve: { conditions: ['@proj/source'] } },
  test: { name: 'query', include: ['test/**/*.test.ts'] },
})
