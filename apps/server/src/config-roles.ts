/**
 * Checks the `roles` mapping against the shape the resource runtime takes (RoleDefinition), so a typo in
 * a role does not silently grant nothing (or deny nothing), and a malformed rule is a configuration
 * error naming its key rather than a TypeError at start or, worse, halfway through a SIGHUP reload.
 */
import { closest } from './config-hints.js'
import { describeValue } from './config-values.js'

/** One problem inside `roles`, at its full key path (`roles.reader.tables.Dog.raed`). */
export interface RoleIssue {
  key: string
  reason: string
}

const ROLE_KEYS = ['superUser', 'tables', 'topics'] as const
const TABLE_ACTIONS = ['read', 'insert', 'update', 'delete', 'publish'] as const
const RULE_KEYS = ['filter', 'publish', 'subscribe'] as const

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v)

function unknown(key: string, name: string, known: readonly string[]): RoleIssue {
  const hint = closest(name, known)
  return {
    key,
    reason: hint ? `unknown key (did you mean ${hint}?)` : `unknown key (known: ${known.join(', ')})`,
  }
}

/** Every problem of a `roles` value (already known to be a mapping); empty when it is usable. */
export function roleIssues(roles: Record<string, unknown>): RoleIssue[] {
  const issues: RoleIssue[] = []
  const boolean = (key: string, value: unknown) => {
    if (typeof value !== 'boolean')
      issues.push({ key, reason: `must be true or false, got ${describeValue(value)}` })
  }
  for (const [name, role] of Object.entries(roles)) {
    const at = `roles.${name}`
    // `monitor:` with nothing after it is a role with no permissions, like `monitor: {}`
    if (role === null) continue
    if (!isMapping(role)) {
      issues.push({ key: at, reason: `must be a mapping, got ${describeValue(role)}` })
      continue
    }
    for (const [field, value] of Object.entries(role)) {
      const key = `${at}.${field}`
      if (field === 'superUser') boolean(key, value)
      else if (field === 'tables') {
        if (!isMapping(value)) {
          issues.push({
            key,
            reason: `must be a mapping of table to permissions, got ${describeValue(value)}`,
          })
          continue
        }
        for (const [table, permission] of Object.entries(value)) {
          const tableKey = `${key}.${table}`
          if (!isMapping(permission)) {
            issues.push({
              key: tableKey,
              reason: `must be a mapping of ${TABLE_ACTIONS.join(', ')}, got ${describeValue(permission)}`,
            })
            continue
          }
          for (const [action, allowed] of Object.entries(permission)) {
            if ((TABLE_ACTIONS as readonly string[]).includes(action))
              boolean(`${tableKey}.${action}`, allowed)
            else issues.push(unknown(`${tableKey}.${action}`, action, TABLE_ACTIONS))
          }
        }
      } else if (field === 'topics') {
        if (!Array.isArray(value)) {
          issues.push({ key, reason: `must be a list of topic rules, got ${describeValue(value)}` })
          continue
        }
        value.forEach((rule: unknown, i) => {
          const ruleKey = `${key}.${i}`
          if (!isMapping(rule)) {
            issues.push({
              key: ruleKey,
              reason: `must be a rule { filter, publish, subscribe }, got ${describeValue(rule)}`,
            })
            return
          }
          if (typeof rule.filter !== 'string' || rule.filter === '')
            issues.push({
              key: `${ruleKey}.filter`,
              reason: `must be a non-empty topic filter, got ${describeValue(rule.filter)}`,
            })
          for (const [k, v] of Object.entries(rule)) {
            if (k === 'filter') continue
            if ((RULE_KEYS as readonly string[]).includes(k)) boolean(`${ruleKey}.${k}`, v)
            else issues.push(unknown(`${ruleKey}.${k}`, k, RULE_KEYS))
          }
        })
      } else issues.push(unknown(key, field, ROLE_KEYS))
    }
  }
  return issues
}
