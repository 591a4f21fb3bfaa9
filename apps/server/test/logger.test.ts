import { describe, expect, it } from 'vitest'
import { createLogger, formatPretty } from '../src/logger.js'

function capture(format: 'json' | 'pretty' | 'auto', isTTY = false, level: 'info' | 'warn' = 'info') {
  const lines: string[] = []
  const logger = createLogger({
    level,
    format,
    isTTY,
    destination: { write: (s: string) => void lines.push(s) },
  })
  return { logger, lines }
}

describe('createLogger', () => {
  it('writes one JSON object per line with the level, pid and fields', () => {
    const { logger, lines } = capture('json')
    logger.info({ port: 1883 }, 'listening')
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, pid: process.pid, port: 1883, msg: 'listening' })
  })

  it('drops records below the configured level', () => {
    const { logger, lines } = capture('json', false, 'warn')
    logger.info('hidden')
    logger.warn('shown')
    expect(lines).toHaveLength(1)
  })

  it('writes readable lines when pretty, or auto on a terminal', () => {
    for (const { logger, lines } of [capture('pretty'), capture('auto', true)]) {
      logger.warn({ clientId: 'c1', n: 2 }, 'slow client')
      expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}slow client clientId=c1 n=2\n$/)
    }
  })
})

describe('formatPretty', () => {
  it('prints an error stack indented under the line', () => {
    const line = JSON.stringify({
      level: 50,
      time: 0,
      msg: 'boom',
      err: { type: 'Error', message: 'x', stack: 'Error: x\n    at y' },
    })
    expect(formatPretty(line)).toBe('00:00:00.000 ERROR boom\n    Error: x\n        at y\n')
  })

  it('passes through lines that are not JSON', () => {
    expect(formatPretty('plain\n')).toBe('plain\n')
  })
})
