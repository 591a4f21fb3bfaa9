import { RuntimeEvent } from '@proj/resource'
import { openStore, type Store } from '@proj/storage'
import { tempDir } from '@proj/test-utils'
import { afterEach, describe, expect, it } from 'vitest'
import { SharedGroups } from '../src/index.js'

const silent = { info() {}, warn() {}, error() {} }
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
})

/** A node's shared-subscription view on its own store (real LMDB, no cluster around it). */
async function groupsOn(node: string): Promise<{ groups: SharedGroups; store: Store }> {
  const dir = await tempDir(`proj-shares-${node}-`)
  const store = await openStore({ path: dir.path, compactionIntervalMs: 0 })
  const groups = new SharedGroups(node, silent)
  groups.start(store)
  cleanups.push(async () => {
    groups.close()
    await store.close()
    await dir.remove()
  })
  return { groups, store }
}

const qos0 = (timestamp: number) =>
  new RuntimeEvent('message', 'sh/x', '', 'sh/x', timestamp, 0, undefined, false, undefined)

describe('shared subscriptions across nodes', () => {
  it('has the origin of a QoS 0 message pick the node, so nodes that applied different memberships agree', async () => {
    const a = await groupsOn('a')
    const b = await groupsOn('b')
    // a has applied both nodes' memberships of group g on sh/#; b has not applied a's yet
    const members = (store: Store) => store.table<number>('__cluster.shares')
    await members(a.store).put(['g', 'sh/#', 'a'], 1)
    await members(a.store).put(['g', 'sh/#', 'b'], 1)
    await members(b.store).put(['g', 'sh/#', 'b'], 1)
    let byA = 0
    let byB = 0
    for (let t = 1; t <= 200; t++) {
      const atOrigin = qos0(t)
      if (a.groups.delivers('g', 'sh/#', atOrigin)) byA++
      // what the relayed message carries
      const relayed = qos0(t)
      b.groups.assigned(relayed, [...a.groups.assignment(atOrigin).nodes])
      if (b.groups.delivers('g', 'sh/#', relayed)) byB++
    }
    expect(byA + byB).toBe(200) // each message once: neither twice nor lost
    expect(byA).toBeGreaterThan(0)
    expect(byB).toBeGreaterThan(0)
    // a group the origin knew nothing of: only the origin's members may take it, nobody else
    const late = qos0(1)
    b.groups.assigned(late, [])
    expect(b.groups.delivers('g', 'sh/#', late)).toBe(false)
  })

  it('has nobody deliver a message of a group none of whose members is sequenced yet (QoS 0 and logged)', async () => {
    const b = await groupsOn('b')
    // b's first member just came: its membership record is on its way, not applied
    const joined = b.groups.members('g', 'sh/#', true)
    const logged = new RuntimeEvent('message', 'sh/x', '', 'sh/x', 7, 7000, undefined, false, undefined)
    expect(b.groups.delivers('g', 'sh/#', logged)).toBe(false)
    // a relayed QoS 0 message whose origin knew no group: its origin's members take it, not b's
    const relayed = qos0(1)
    b.groups.assigned(relayed, null)
    expect(b.groups.delivers('g', 'sh/#', relayed)).toBe(false)
    await joined
    // once sequenced: b's turn (the only member node) for a later event
    expect(
      b.groups.delivers(
        'g',
        'sh/#',
        new RuntimeEvent('message', 'sh/x', '', 'sh/x', 9, 9000, undefined, false, undefined),
      ),
    ).toBe(true)
  })

  it('decides a logged event by the members as of its stream position, following membership changes in order', async () => {
    const a = await groupsOn('a')
    const members = a.store.table<number>('__cluster.shares')
    await members.put(['g', 'sh/#', 'b'], 1)
    const at = (seq: number) =>
      new RuntimeEvent('message', 'sh/x', '', 'sh/x', seq, seq * 1000, undefined, false, undefined)
    expect(a.groups.delivers('g', 'sh/#', at(7))).toBe(false) // only b is a member
    await members.put(['g', 'sh/#', 'a'], 1)
    expect([6, 7].map((s) => a.groups.delivers('g', 'sh/#', at(s)))).toEqual([true, false]) // a, b by seq
    await members.delete(['g', 'sh/#', 'b'])
    expect(a.groups.delivers('g', 'sh/#', at(7))).toBe(true)
  })
})
