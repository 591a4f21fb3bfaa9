import { defineConfig } from 'vite'

// The server serves the build under /studio/ (apps/server/src/studio-assets.ts); hashed files go to
// assets/, which it caches for a year. JSX is Preact's, compiled by Vite's own transform (no plugin).
export default defineConfig({
  base: '/studio/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', assetsDir: 'assets', emptyOutDir: true, chunkSizeWarningLimit: 200 },
  server: {
    // `pnpm --filter @proj/studio dev` against a server on the default port
    proxy: {
      '^/(?!studio/|@|node_modules|src/)': { target: 'http://127.0.0.1:9926', ws: true },
    },
  },
})
