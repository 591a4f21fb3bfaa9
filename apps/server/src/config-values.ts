// Raw config values (YAML, environment, flags) coerced to each key's type, with units.
import { BlockList } from 'node:net'
import { addExempt } from './admission.js'
import type { KeySpec } from './config-key-spec.js'

type Coerced = { ok: true; value: unknown } | { ok: false; reason: string }

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
}
const DURATION_UNITS: Record<string, number> = {
  '': 1,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

export function describeValue(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : (JSON.stringify(value) ?? String(value))
}

function withUnit(raw: unknown, units: Record<string, number>, what: string): Coerced {
  if (typeof raw === 'number') {
    return Number.isSafeInteger(raw) && raw >= 0
      ? { ok: true, value: raw }
      : { ok: false, reason: `must be a non-negative integer ${what}, got ${describeValue(raw)}` }
  }
  if (typeof raw === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw)
    const factor = match ? units[match[2]!.toLowerCase()] : undefined
    if (match && factor !== undefined) return { ok: true, value: Math.round(Number(match[1]) * factor) }
  }
  const examples = what === 'size' ? '1048576, 512kb, 10mb, 1gb' : '5000, 30s, 15m, 24h, 7d'
  return { ok: false, reason: `must be a ${what} (${examples}), got ${describeValue(raw)}` }
}

/**
 * Converts one raw value to the key's type. `fromString` is true for environment variables and flags,
 * whose values are always text; YAML values arrive typed.
 */
export function coerceValue(spec: KeySpec, raw: unknown, fromString: boolean): Coerced {
  if (raw === null || (fromString && typeof raw === 'string' && /^(null|none)$/i.test(raw.trim()))) {
    return spec.nullable ? { ok: true, value: null } : { ok: false, reason: 'must not be null' }
  }
  const type = spec.type
  switch (type.kind) {
    case 'port':
    case 'integer': {
      const min = type.kind === 'port' ? 0 : (type.min ?? Number.MIN_SAFE_INTEGER)
      const max = type.kind === 'port' ? 65535 : (type.max ?? Number.MAX_SAFE_INTEGER)
      const n =
        typeof raw === 'number'
          ? raw
          : fromString && typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw)
            ? Number(raw)
            : Number.NaN
      if (Number.isSafeInteger(n) && n >= min && n <= max) return { ok: true, value: n }
      const range =
        type.kind === 'port'
          ? 'an integer from 0 to 65535'
          : type.max !== undefined
            ? `an integer from ${min} to ${max}`
            : `an integer >= ${min}`
      return {
        ok: false,
        reason: `must be ${range}${spec.nullable ? ' or null' : ''}, got ${describeValue(raw)}`,
      }
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw }
      if (fromString && typeof raw === 'string') {
        const s = raw.trim().toLowerCase()
        if (['true', '1', 'yes', 'on'].includes(s)) return { ok: true, value: true }
        if (['false', '0', 'no', 'off'].includes(s)) return { ok: true, value: false }
      }
      return { ok: false, reason: `must be true or false, got ${describeValue(raw)}` }
    }
    case 'string':
    case 'path':
      if (typeof raw === 'string' && raw.trim() !== '') return { ok: true, value: raw }
      return { ok: false, reason: `must be a non-empty string, got ${describeValue(raw)}` }
    case 'enum':
      if (typeof raw === 'string' && type.values.includes(raw)) return { ok: true, value: raw }
      return { ok: false, reason: `must be one of ${type.values.join(', ')}, got ${describeValue(raw)}` }
    case 'size':
      return withUnit(raw, SIZE_UNITS, 'size')
    case 'duration':
      return withUnit(raw, DURATION_UNITS, 'duration')
    case 'origins': {
      let value = raw
      if (fromString && typeof raw === 'string') {
        const s = raw.trim().toLowerCase()
        value = ['true', 'yes', 'on'].includes(s) ? true : ['false', 'no', 'off'].includes(s) ? false : raw
      }
      if (value === true || value === '*') return { ok: true, value: '*' }
      if (value === false) return { ok: true, value: false }
      const list = typeof value === 'string' ? value.split(',').map((o) => o.trim()) : value
      if (Array.isArray(list) && list.length > 0 && list.every((o) => typeof o === 'string' && o !== '')) {
        return { ok: true, value: list }
      }
      return { ok: false, reason: `must be true, false, * or a list of origins, got ${describeValue(raw)}` }
    }
    case 'addresses': {
      const list =
        typeof raw === 'string'
          ? raw
              .split(',')
              .map((a) => a.trim())
              .filter((a) => a !== '')
          : raw
      if (!Array.isArray(list) || !list.every((a) => typeof a === 'string')) {
        return { ok: false, reason: `must be a list of IP addresses or subnets, got ${describeValue(raw)}` }
      }
      const scratch = new BlockList()
      for (const entry of list) {
        try {
          addExempt(scratch, entry)
        } catch (error) {
          return { ok: false, reason: (error as Error).message }
        }
      }
      return { ok: true, value: list }
    }
    case 'object': {
      let value = raw
      if (fromString && typeof raw === 'string') {
        try {
          value = JSON.parse(raw)
        } catch {
          return { ok: false, reason: `must be a JSON object, got ${describeValue(raw)}` }
        }
      }
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) return { ok: true, value }
      return {
        ok: false,
        reason: `must be a mapping${fromString ? ' (JSON object)' : ''}, got ${describeValue(raw)}`,
      }
    }
  }
  return { ok: false, reason: 'unsupported type' }
}
