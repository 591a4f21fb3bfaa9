import { fileURLToPath } from 'node:url'

/** The folder with the Studio's built files (`index.html`, `assets/`), which @proj/server serves at /studio/. */
export const studioAssets = fileURLToPath(new URL('./dist/', import.meta.url))
