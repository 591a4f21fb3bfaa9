import { defineConfig } from 'vitest/config'

// Each package and app is its own project; sibling packages resolve to their src/ through the
// "@proj/source" export condition, so tests never need a prior build (apps/server e2e excepted).
export default defineConfig({
  resolve: { conditions: ['@proj/source'] },
  ssr: { resolve: { conditions: ['@proj/source'] } },
  test: {
    projects: ['packages/*', 'apps/*'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
})
