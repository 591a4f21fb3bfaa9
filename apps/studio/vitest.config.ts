import { defineProject } from 'vitest/config'

export default defineProject({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  test: { name: 'studio', include: ['test/**/*.test.ts'], environment: 'node' },
})
