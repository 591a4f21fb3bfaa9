import { filterCovers, filtersOverlap, matchesFilter } from '@proj/topic-matcher'
import { ResourceError } from './errors.js'
import type { RequestContext, User } from './types.js'

export type TableAction = 'read' | 'insert' | 'update' | 'delete' | 'publish'
export type TopicAction = 'publish' | 'subscribe'

/** Per-table (or per custom resource) permissions. `publish` (a non-retained message) defaults to `update`. */
export interface TablePermission {
  read?: boolean
  insert?: boolean
  update?: boolean
  delete?: boolean
  publish?: boolean
}

/**
 * A topic rule for topics no table claims, like a Mosquitto ACL line. `true` allows, `false` denies,
 * absent has no opinion; a deny anywhere wins over an allow. `%u` and `%c` in the filter stand for the
 * username and the MQTT client id, substituted in one pass. A rule that uses them does not apply to a
 * username or client id that contains `/`, `+`, `#` or `%` (it could widen the filter or reach another
 * user's namespace), nor `%c` to a call without a client id (HTTP, WebSocket, SSE).
 */
export interface TopicRule {
  filter: string
  publish?: boolean
  subscribe?: boolean
}

export interface RoleDefinition {
  name: string
  superUser?: boolean
  /** Keyed by export path, type name or `*` (any table). */
  tables?: Record<string, TablePermission>
  /** Ordered rules for unclaimed topics; no matching allow = denied. */
  topics?: TopicRule[]
}

const FULL: TablePermission = { read: true, insert: true, update: true, delete: true, publish: true }

/** Built-in roles; a configured role with the same name replaces one. */
export const BUILT_IN_ROLES: readonly RoleDefinition[] = [
  { name: 'admin', superUser: true },
  { name: 'user', tables: { '*': FULL }, topics: [{ filter: '#', publish: true, subscribe: true }] },
  { name: 'anonymous', tables: { '*': FULL }, topics: [{ filter: '#', publish: true, subscribe: true }] },
]

/** What a subscription may receive: everything, nothing, or decided per event. */
export type Access = 'all' | 'none' | 'some'

interface CompiledRole {
  definition: RoleDefinition
  superUser: boolean
  /** resource key -> action -> allowed */
  tableCache: Map<string, TablePermission | undefined>
  rules: TopicRule[]
  personal: boolean
  /** topic -> allowed, per action (no %u/%c rules only) */
  publishCache: Map<string, boolean>
  subscribeCache: Map<string, boolean>
  /** A `#` rule allows the action and no rule denies it: every topic not starting with `$` is allowed. */
  publishAll: boolean
  subscribeAll: boolean
}

const CACHE_LIMIT = 10_000

export class Permissions {
  readonly #roles = new Map<string, CompiledRole>()
  #anonymous: User | null = null

  constructor(roles: readonly RoleDefinition[], allowAnonymous: boolean, anonymousRole: string) {
    this.reconfigure(roles, allowAnonymous, anonymousRole)
  }

  /**
   * Replaces the roles and the anonymous settings in place (the server's SIGHUP reload): every later
   * check uses them. Subscriptions already granted keep the decision made when they were made.
   */
  reconfigure(roles: readonly RoleDefinition[], allowAnonymous: boolean, anonymousRole: string): void {
    this.#roles.clear()
    for (const role of [...BUILT_IN_ROLES, ...roles]) {
      const rules = role.topics ?? []
      this.#roles.set(role.name, {
        definition: role,
        superUser: role.superUser === true,
        tableCache: new Map(),
        rules,
        personal: rules.some((r) => r.filter.includes('%u') || r.filter.includes('%c')),
        publishCache: new Map(),
        subscribeCache: new Map(),
        publishAll: allowsAll(rules, 'publish'),
        subscribeAll: allowsAll(rules, 'subscribe'),
      })
    }
    this.#anonymous = allowAnonymous
      ? Object.freeze({ username: 'anonymous', role: anonymousRole, superUser: false })
      : null
  }

  get anonymous(): User | null {
    return this.#anonymous
  }

  hasRole(name: string): boolean {
    return this.#roles.has(name)
  }

  /** The roles in force: the built-in ones, each replaced by a configured role of the same name, then the others. */
  roles(): RoleDefinition[] {
    return [...this.#roles.values()].map((r) => r.definition)
  }

  /** The effective user of a call: ctx.user, else the anonymous user, else UNAUTHORIZED. */
  user(ctx: RequestContext): User {
    const user = ctx.user ?? this.#anonymous
    if (!user) throw new ResourceError('UNAUTHORIZED', 'authentication required')
    return user
  }

  isSuperUser(user: User): boolean {
    return user.superUser || this.#roles.get(user.role)?.superUser === true
  }

  /** Checks a table/resource action; keys are tried in order (export path, type name), then `*`. */
  tableAllowed(user: User, keys: readonly string[], action: TableAction): boolean {
    if (user.superUser) return true
    const role = this.#roles.get(user.role)
    if (!role) return false
    if (role.superUser) return true
    const cacheKey = keys[0] ?? '*'
    let permission = role.tableCache.get(cacheKey)
    if (permission === undefined && !role.tableCache.has(cacheKey)) {
      const tables = role.definition.tables ?? {}
      permission = undefined
      for (const key of [...keys, '*']) {
        if (Object.hasOwn(tables, key)) {
          permission = tables[key]
          break
        }
      }
      role.tableCache.set(cacheKey, permission)
    }
    if (!permission) return false
    if (action === 'publish') return permission.publish ?? permission.update === true
    return permission[action] === true
  }

  assertTable(
    ctx: RequestContext,
    user: User,
    keys: readonly string[],
    action: TableAction,
    what: string,
  ): void {
    if (!this.tableAllowed(user, keys, action)) this.deny(ctx, `${action} on ${what}`)
  }

  /**
   * A put or retained publish: `insert` for a new record, `update` for an existing one. A user allowed
   * neither is refused before anything about the record is read, with the same answer whether it exists or
   * not; only a user allowed exactly one of the two can tell (its answer must depend on the record).
   */
  assertWrite(
    ctx: RequestContext,
    user: User,
    keys: readonly string[],
    exists: () => boolean,
    what: string,
  ): void {
    const insert = this.tableAllowed(user, keys, 'insert')
    const update = this.tableAllowed(user, keys, 'update')
    if (insert && update) return
    if (!insert && !update) this.deny(ctx, `write ${what}`)
    const action = exists() ? 'update' : 'insert'
    if (!(action === 'update' ? update : insert)) this.deny(ctx, `${action} ${what}`)
  }

  /** Throws FORBIDDEN, or UNAUTHORIZED when the caller is anonymous. */
  deny(ctx: RequestContext, what: string): never {
    if (!ctx.user) throw new ResourceError('UNAUTHORIZED', `anonymous access denied: ${what}`)
    throw new ResourceError('FORBIDDEN', `${ctx.user.username} may not ${what}`)
  }

  /** A topic no table claims: may `user` publish to / receive from it? */
  topicAllowed(user: User, clientId: string | undefined, topic: string, action: TopicAction): boolean {
    if (user.superUser) return true
    const role = this.#roles.get(user.role)
    if (!role) return false
    if (role.superUser) return true
    if (role.personal)
      return evaluate(role.rules, action, (f) => {
        const personal = personalize(f, user, clientId)
        return personal !== null && matchesFilter(personal, topic)
      })
    // without the per-topic cache: a broker's many distinct topics would only churn it
    if ((action === 'publish' ? role.publishAll : role.subscribeAll) && topic.charCodeAt(0) !== 36 /* $ */)
      return true
    const cache = action === 'publish' ? role.publishCache : role.subscribeCache
    let allowed = cache.get(topic)
    if (allowed === undefined) {
      allowed = evaluate(role.rules, action, (f) => matchesFilter(f, topic))
      if (cache.size >= CACHE_LIMIT) cache.clear()
      cache.set(topic, allowed)
    }
    return allowed
  }

  /** Subscribe-time decision for a filter over unclaimed topics. */
  filterAccess(user: User, clientId: string | undefined, filter: string): Access {
    if (user.superUser) return 'all'
    const role = this.#roles.get(user.role)
    if (!role) return 'none'
    if (role.superUser) return 'all'
    let allowCovers = false
    let allowIntersects = false
    let denyIntersects = false
    for (const rule of role.rules) {
      const setting = rule.subscribe
      if (setting === undefined) continue
      const ruleFilter = role.personal ? personalize(rule.filter, user, clientId) : rule.filter
      if (ruleFilter === null) continue
      if (setting === false) {
        if (filterCovers(ruleFilter, filter)) return 'none'
        if (filtersOverlap(ruleFilter, filter)) denyIntersects = true
      } else if (filterCovers(ruleFilter, filter)) {
        allowCovers = allowIntersects = true
      } else if (filtersOverlap(ruleFilter, filter)) {
        allowIntersects = true
      }
    }
    if (!allowIntersects) return 'none'
    return allowCovers && !denyIntersects ? 'all' : 'some'
  }
}

function allowsAll(rules: readonly TopicRule[], action: TopicAction): boolean {
  return rules.some((r) => r.filter === '#' && r[action] === true) && !rules.some((r) => r[action] === false)
}

function evaluate(
  rules: readonly TopicRule[],
  action: TopicAction,
  matches: (filter: string) => boolean,
): boolean {
  let allowed = false
  for (const rule of rules) {
    const setting = rule[action]
    if (setting === undefined || (setting && allowed)) continue
    if (matches(rule.filter)) {
      if (!setting) return false
      allowed = true
    }
  }
  return allowed
}

/** Characters that must not reach a topic filter through `%u` / `%c`. */
const UNSAFE_IN_FILTER = /[/+#%]/

/**
 * A rule's filter with `%u` (username) and `%c` (client id) substituted in one pass, so a substituted
 * value is never scanned again (a user named `%c` stays `%c`). Null when the rule cannot apply: the value
 * is missing (no client id over HTTP) or holds a character that would change the filter's shape.
 */
function personalize(filter: string, user: User, clientId: string | undefined): string | null {
  if (!filter.includes('%')) return filter
  let usable = true
  const out = filter.replace(/%[uc]/g, (token) => {
    const value = token === '%u' ? user.username : clientId
    if (value === undefined || value === '' || UNSAFE_IN_FILTER.test(value)) usable = false
    return value ?? ''
  })
  return usable ? out : null
}
