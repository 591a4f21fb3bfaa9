import { decode, detect } from '@proj/codec'
import { assertTopicName } from './builtin-topics.js'
import { ResourceError } from './errors.js'
import type { Permissions, TableAction } from './permissions.js'
import type { Resource, ResourceMessage } from './resource.js'
import type { Route } from './router.js'
import { rethrow, toResourceError } from './storage-writes.js'
import { Table } from './table.js'
import type { PublishMessage, PublishOptions, PublishResult, RequestContext, User } from './types.js'

/**
 * A publish to a record's topic (`Dog/1`): the topic checked, the caller's permission (retained with a
 * payload: insert or update; empty retained: delete; otherwise: publish), then the payload decoded for
 * the resource, which writes or dispatches it. The publisher's bytes go along with the decoded value.
 */
export function publishRecord(
  route: Route<Resource>,
  topic: string,
  message: PublishMessage,
  ctx: RequestContext,
  user: User,
  options: PublishOptions | undefined,
  permissions: Permissions,
  normalize: (mediaType: string) => string | null,
): Promise<PublishResult> {
  const resource = route.resource
  if (route.idText === '')
    throw new ResourceError('INVALID', `topic ${topic} names ${resource.path}, not a record`)
  if (options?.topicChecked !== true) assertTopicName(topic)
  const payload = message.payload
  // Permission first: nothing about the record (not even its id's type) is looked at before it.
  if (message.retain && payload.length !== 0) {
    const exists = () => resource.has(resource.coerceId(route.idText))
    permissions.assertWrite(ctx, user, resource.permissionKeys, exists, topic)
  } else {
    const action: TableAction = message.retain ? 'delete' : 'publish'
    if (!permissions.tableAllowed(user, resource.permissionKeys, action))
      permissions.deny(ctx, `${action} ${topic}`)
  }
  const id = resource.coerceId(route.idText)
  const value =
    message.retain && payload.length === 0
      ? undefined
      : decodeFor(resource, payload, message.contentType, normalize)
  const msg: ResourceMessage = { value, payload, retain: message.retain, qos: message.qos }
  if (message.contentType !== undefined) msg.contentType = message.contentType
  if (message.meta !== undefined) msg.meta = message.meta
  const atomic = options?.atomic
  return resource.publish(id, msg, ctx, atomic ? { atomic } : undefined).catch(rethrow)
}

/** Content negotiation on publish (DESIGN.md): declared type, else JSON if it parses, else raw bytes. */
function decodeFor(
  resource: Resource,
  payload: Uint8Array,
  contentType: string | undefined,
  normalize: (mediaType: string) => string | null,
): unknown {
  if (contentType === undefined) return detect(payload).value
  if (normalize(contentType) === null) {
    if (resource instanceof Table && resource.definition.attributes.length > 0) {
      throw new ResourceError('UNSUPPORTED_MEDIA_TYPE', `cannot decode ${contentType} for ${resource.path}`)
    }
    return payload
  }
  try {
    return decode(payload, contentType)
  } catch (error) {
    throw toResourceError(error)
  }
}
