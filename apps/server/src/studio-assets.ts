/**
 * Serves the Studio's built files (`@proj/studio`'s `dist/`) under `/studio/`, and sends a browser
 * asking for `/` there. Files are read from disk per request (a few small files, cached by the browser:
 * hashed assets for a year, the page itself revalidated), never outside the dist folder.
 */
import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, extname, join, resolve, sep } from 'node:path'
import { HttpError } from '@proj/http'

export const STUDIO_PREFIX = '/studio/'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
}

// Same-origin only: scripts, styles, API calls, WebSocket and EventSource all go to this server.
const CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "style-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ')

/**
 * The folder with the Studio's built files: `@proj/studio/dist`, resolved like any dependency, so it is
 * found in the monorepo (a workspace link) and when the server is installed from a registry. Undefined
 * when the package or its build is missing.
 */
export function findStudioAssets(): string | undefined {
  try {
    const manifest = createRequire(import.meta.url).resolve('@proj/studio/package.json')
    const dist = join(dirname(manifest), 'dist')
    return existsSync(join(dist, 'index.html')) ? dist : undefined
  } catch {
    return undefined
  }
}

/** `GET /studio/*`: a file of the build, else the page itself (the Studio routes in the browser). */
export function studioRoute(assets: string | undefined) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (assets === undefined) {
      throw new HttpError('UNAVAILABLE', 'the Studio is not built: run `pnpm build` (it builds apps/studio)')
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      throw new HttpError('METHOD_NOT_ALLOWED', 'the Studio is read-only')
    }
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === STUDIO_PREFIX.slice(0, -1)) {
      res.writeHead(308, { Location: `${STUDIO_PREFIX}${url.search}` }).end()
      return
    }
    let relative: string
    try {
      relative = decodeURIComponent(url.pathname.slice(STUDIO_PREFIX.length))
    } catch {
      throw new HttpError('INVALID', 'malformed percent-encoding')
    }
    let file = resolve(assets, relative)
    if (file !== assets && !file.startsWith(assets + sep)) throw new HttpError('NOT_FOUND', 'no such file')
    const isFile = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    )
    if (!isFile) {
      // A path with an extension is a missing file; any other is a page of the Studio.
      if (extname(relative) !== '') throw new HttpError('NOT_FOUND', `no file ${relative}`)
      file = join(assets, 'index.html')
    }
    const body = await readFile(file)
    const hashed = file.startsWith(join(assets, 'assets') + sep)
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
}

/** `GET /`: a browser (or anyone) asking for the root is sent to the Studio. */
export function rootRedirect() {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(302, { Location: STUDIO_PREFIX, 'Content-Length': 0 }).end()
  }
}
