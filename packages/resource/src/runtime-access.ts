import type { Key } from '@proj/storage'
import type { TopicsResource } from './builtin-topics.js'
import { ResourceError } from './errors.js'
import type { Permissions, TableAction } from './permissions.js'
import type { Resource } from './resource.js'
import type { Route, Router } from './router.js'
import type { RequestContext, User } from './types.js'

/** A request's target resolved: the caller, the path, and the resource with the id text. */
export interface Routed {
  user: User
  path: string
  route: Route<Resource>
}

/**
 * Which resource a REST path or topic names, and whether the caller may act on it: a table's or custom
 * resource's permissions, or, for a topic no table claims (the built-in topics resource), the topic
 * rules. The runtime's façade asks this before it delegates.
 */
export class RuntimeAccess {
  readonly #router: Router<Resource>
  readonly #topics: TopicsResource
  readonly #permissions: Permissions
  readonly #rejectUnclaimed: boolean
  readonly #closed: () => boolean

  constructor(
    router: Router<Resource>,
    topics: TopicsResource,
    permissions: Permissions,
    rejectUnclaimed: boolean,
    closed: () => boolean,
  ) {
    this.#router = router
    this.#topics = topics
    this.#permissions = permissions
    this.#rejectUnclaimed = rejectUnclaimed
    this.#closed = closed
  }

  assertOpen(): void {
    if (this.#closed()) throw new ResourceError('CLOSED', 'the runtime is closed')
  }

  /** Whether `resource` is the built-in resource of unclaimed topics. */
  isTopics(resource: Resource): boolean {
    return resource === this.#topics
  }

  /** The resource of a path or topic: a table's or custom resource's, else the built-in topics. */
  route(target: string, ctx: RequestContext): Routed {
    this.assertOpen()
    const user = this.#permissions.user(ctx)
    const path = trimPath(target)
    const route = this.#router.resolve(path)
    if (route) return { user, path, route }
    if (this.#rejectUnclaimed) throw new ResourceError('NOT_FOUND', `no resource at ${path}`)
    return { user, path, route: { resource: this.#topics, idText: path } }
  }

  recordId(route: Route<Resource>, method: string): Key {
    if (route.idText === '' && route.resource !== this.#topics)
      throw new ResourceError('INVALID', `${method} ${route.resource.path} needs a record id`)
    return route.resource.coerceId(route.idText)
  }

  /**
   * The caller's permission for `action` on a route: table permissions for a resource, topic rules
   * (subscribe to read, publish to write) for the built-in topics, which take neither patch nor post.
   */
  check(ctx: RequestContext, user: User, route: Route<Resource>, action: TableAction, what: string): void {
    const resource = route.resource
    if (resource !== this.#topics) {
      this.#permissions.assertTable(ctx, user, resource.permissionKeys, action, what)
      return
    }
    if (action === 'update')
      throw new ResourceError('METHOD_NOT_ALLOWED', `${what} is a topic, which cannot be patched`)
    if (action === 'insert')
      throw new ResourceError('METHOD_NOT_ALLOWED', `${what} is not a resource; use put`)
    this.assertTopic(ctx, user, what, action === 'read' ? 'subscribe' : 'publish')
  }

  assertTopic(ctx: RequestContext, user: User, topic: string, action: 'publish' | 'subscribe'): void {
    if (!this.#permissions.topicAllowed(user, ctx.clientId, topic, action))
      this.#permissions.deny(ctx, `${action} ${topic}`)
  }

  /** A `put`: publish rights on a topic; on a resource, insert or update rights by whether the record exists. */
  checkPut(ctx: RequestContext, { user, path, route }: Routed): void {
    const resource = route.resource
    if (resource === this.#topics) this.assertTopic(ctx, user, path, 'publish')
    else {
      const exists = () => resource.has(this.recordId(route, 'put'))
      this.#permissions.assertWrite(ctx, user, resource.permissionKeys, exists, path)
    }
  }
}

/** A REST path without its leading slashes. */
export function trimPath(target: string): string {
  let start = 0
  while (target.charCodeAt(start) === 47 /* / */) start++
  return start === 0 ? target : target.slice(start)
}
