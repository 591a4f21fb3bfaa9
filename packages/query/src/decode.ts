import { QueryError } from './errors.js'

/**
 * Decodes one piece of a query the way browsers encode forms and URLs: `%XX` escapes as UTF-8, and
 * `+` as a space (`application/x-www-form-urlencoded`). `position` is the piece's offset in the query,
 * so a malformed escape is reported where it is.
 */
export function decodePiece(raw: string, position: number, condition: string): string {
  if (raw.indexOf('%') === -1) return raw.indexOf('+') === -1 ? raw : raw.replaceAll('+', ' ')
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '))
  } catch (cause) {
    const bad = /%(?![0-9a-fA-F]{2})/.exec(raw)
    const at = position + (bad ? bad.index : raw.indexOf('%'))
    const detail = bad ? 'malformed percent-encoding' : 'percent-encoded bytes that are not UTF-8'
    throw new QueryError('QUERY_INVALID_ENCODING', detail, at, condition, { cause })
  }
}
