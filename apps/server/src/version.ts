import { readFileSync } from 'node:fs'

/** This package's version (from its package.json), for `--version` and `$SYS/broker/version`. */
export const VERSION: string = (() => {
  try {
    return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version
  } catch {
    return '0.0.0'
  }
})()
