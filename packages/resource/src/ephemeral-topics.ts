/**
 * Retained messages under `$SYS`: a server's own figures, rewritten every few seconds (about 330,000
 * writes a day at the default interval). Kept in memory, as Mosquitto keeps them (it never persists
 * `$SYS`), so they neither fill the change log nor outlive the process: a subscriber still gets the
 * current values at once and each refresh live, but a durable session does not replay them.
 */
import { matchesFilter } from '@proj/topic-matcher'
import type { TopicRecord } from './topic-record.js'

/** Whether `topic` (or a filter) is in the `$SYS` tree, whose retained messages live in memory only. */
export function isEphemeralTopic(topic: string): boolean {
  return topic.startsWith('$SYS') && (topic.length === 4 || topic.charCodeAt(4) === 47) /* / */
}

export interface EphemeralEntry {
  readonly record: TopicRecord
  /** The write's timestamp (the store clock's), as a stored record's version. */
  readonly version: number
}

/** The retained messages of ephemeral topics, by topic. */
export class EphemeralTopics {
  readonly #entries = new Map<string, EphemeralEntry>()

  get(topic: string): EphemeralEntry | undefined {
    return this.#entries.get(topic)
  }

  set(topic: string, entry: EphemeralEntry): void {
    this.#entries.set(topic, entry)
  }

  delete(topic: string): boolean {
    return this.#entries.delete(topic)
  }

  /** The retained messages whose topic matches `filter`, in topic order (as the storage lists them). */
  matching(filter: string): [string, EphemeralEntry][] {
    const out: [string, EphemeralEntry][] = []
    for (const entry of this.#entries) if (matchesFilter(filter, entry[0])) out.push(entry)
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  }
}
