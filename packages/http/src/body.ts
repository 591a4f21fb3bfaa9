/** Reads a request body into memory, refusing (TOO_LARGE, HTTP 413) anything past the limit. */
import type { IncomingMessage } from 'node:http'
import { HttpError } from './errors.js'

/**
 * Resolves with the whole body. A Content-Length over the limit is refused before reading; a body
 * that grows past it while streaming is refused as soon as it does, and the rest is not buffered.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > maxBytes) {
    req.resume()
    return Promise.reject(new HttpError('TOO_LARGE', `request body exceeds ${maxBytes} bytes`))
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    const finish = (err: Error | null) => {
      if (done) return
      done = true
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      if (err) {
        // Keep draining (without buffering) so the 413 response can still be read by the client.
        req.resume()
        reject(err)
      } else resolve(Buffer.concat(chunks, size))
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) finish(new HttpError('TOO_LARGE', `request body exceeds ${maxBytes} bytes`))
      else chunks.push(chunk)
    }
    const onEnd = () => finish(null)
    const onError = (err: Error) => finish(err)
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}
