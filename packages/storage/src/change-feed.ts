import { keyString } from './record-format.js'
import type { ChangeEvent, ChangeFilter, ChangeListener, Key } from './types.js'

interface PrefixListener {
  prefix: string
  listener: ChangeListener
}

interface Listeners {
  all: Set<ChangeListener>
  byId: Map<string, Set<ChangeListener>>
  prefixes: Set<PrefixListener>
}

const newListeners = (): Listeners => ({ all: new Set(), byId: new Map(), prefixes: new Set() })
const isEmpty = (l: Listeners) => l.all.size === 0 && l.byId.size === 0 && l.prefixes.size === 0

export function matchesPrefix(id: Key, prefix: string): boolean {
  return typeof id === 'string' ? id.startsWith(prefix) : Array.isArray(id) && id[0] === prefix
}

/**
 * Change-feed listeners indexed by table, then by record id, so dispatching an event costs a couple of
 * Map lookups plus the prefix listeners of its table, not a scan of every listener.
 */
export class ChangeFeed {
  /** Listeners without a table: `anyTable.all` hears everything. */
  private readonly anyTable = newListeners()
  private readonly byTable = new Map<string, Listeners>()
  private count = 0

  constructor(private readonly onError: (error: unknown, event: ChangeEvent) => void) {}

  get size(): number {
    return this.count
  }

  add(listener: ChangeListener, filter: ChangeFilter = {}): () => void {
    const tableName = filter.table
    let listeners = this.anyTable
    if (tableName !== undefined) {
      listeners = this.byTable.get(tableName) ?? newListeners()
      this.byTable.set(tableName, listeners)
    }
    // a Set would merge two subscriptions of the same function; wrap so each add() is distinct
    const own: ChangeListener = (event) => listener(event)
    let remove: () => void
    if (filter.id !== undefined) {
      const key = keyString(filter.id)
      const set = listeners.byId.get(key) ?? new Set()
      listeners.byId.set(key, set)
      set.add(own)
      remove = () => {
        set.delete(own)
        if (set.size === 0 && listeners.byId.get(key) === set) listeners.byId.delete(key)
      }
    } else if (filter.prefix !== undefined) {
      const entry = { prefix: filter.prefix, listener }
      listeners.prefixes.add(entry)
      remove = () => listeners.prefixes.delete(entry)
    } else {
      listeners.all.add(own)
      remove = () => listeners.all.delete(own)
    }
    this.count++
    let active = true
    return () => {
      if (!active) return
      active = false
      this.count--
      remove()
      if (tableName !== undefined && isEmpty(listeners) && this.byTable.get(tableName) === listeners)
        this.byTable.delete(tableName)
    }
  }

  dispatch(event: ChangeEvent): void {
    this.deliver(this.anyTable, event)
    const listeners = this.byTable.get(event.table)
    if (listeners !== undefined) this.deliver(listeners, event)
  }

  private deliver(listeners: Listeners, event: ChangeEvent): void {
    if (listeners.all.size > 0) for (const listener of listeners.all) this.call(listener, event)
    if (listeners.byId.size > 0) {
      const set = listeners.byId.get(keyString(event.id))
      if (set !== undefined) for (const listener of set) this.call(listener, event)
    }
    if (listeners.prefixes.size > 0)
      for (const entry of listeners.prefixes)
        if (matchesPrefix(event.id, entry.prefix)) this.call(entry.listener, event)
  }

  private call(listener: ChangeListener, event: ChangeEvent): void {
    try {
      listener(event)
    } catch (error) {
      this.onError(error, event)
    }
  }
}
