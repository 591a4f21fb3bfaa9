import { type DestinationStream, type Logger, pino } from 'pino'
import type { ServerConfig } from './config-schema.js'

export type { Logger }

export interface CreateLoggerOptions {
  level: ServerConfig['logging']['level']
  format: ServerConfig['logging']['format']
  /** Where lines go; default stdout (fd 1, synchronous so nothing is lost at exit). */
  destination?: DestinationStream
  /** Used for `format: 'auto'`; default `process.stdout.isTTY`. */
  isTTY?: boolean
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
}
const RESERVED = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'name'])

/** One pino JSON line as `12:34:56.789 INFO  message key=value ...`. */
export function formatPretty(line: string): string {
  let record: Record<string, unknown>
  try {
    record = JSON.parse(line)
  } catch {
    return line
  }
  const time = new Date(typeof record.time === 'number' ? record.time : Date.now())
    .toISOString()
    .slice(11, 23)
  const level = (LEVEL_NAMES[record.level as number] ?? String(record.level)).padEnd(5)
  const extras: string[] = []
  let stack = ''
  for (const [key, value] of Object.entries(record)) {
    if (RESERVED.has(key)) continue
    if (key === 'err' && value && typeof value === 'object' && 'stack' in value) {
      stack = `\n    ${String((value as { stack: unknown }).stack).replace(/\n/g, '\n    ')}`
      continue
    }
    extras.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
  }
  return `${time} ${level} ${record.msg ?? ''}${extras.length ? ` ${extras.join(' ')}` : ''}${stack}\n`
}

/**
 * The server's pino logger: JSON lines (for log shippers), or readable lines on a terminal.
 *
 * @example
 * const logger = createLogger({ level: 'info', format: 'auto' })
 * logger.info({ port: 1883 }, 'listening')
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const pretty =
    options.format === 'pretty' || (options.format === 'auto' && (options.isTTY ?? process.stdout.isTTY))
  const base = options.destination ?? pino.destination({ dest: 1, sync: true })
  const destination: DestinationStream = pretty
    ? { write: (line: string) => base.write(formatPretty(line)) }
    : base
  return pino(
    { level: options.level, base: { pid: process.pid }, serializers: { err: pino.stdSerializers.err } },
    destination,
  )
}
