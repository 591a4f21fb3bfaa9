import { useEffect, useRef, useState } from 'preact/hooks'
import { type Api, restPath } from '../api.js'
import { asJson, liveTarget, withToken } from '../live-target.js'
import { useTables } from './tables.js'

interface LiveEvent {
  seq: number
  at: Date
  type: string
  id: unknown
  value: unknown
}

const MAX_EVENTS = 500
// `leave`: a record changed out of a followed query; `reset`: the stream starts again from a fresh snapshot
const TYPES = ['put', 'patch', 'delete', 'message', 'leave', 'reset'] as const

/**
 * Follows a table, a table query, a record or a topic filter with Server-Sent Events (`?access_token=`, since an
 * EventSource cannot send headers). Pausing keeps the stream open and holds what arrives meanwhile.
 */
export function LiveView({ api }: { api: Api }) {
  const tables = useTables(api)
  const [input, setInput] = useState('')
  const [target, setTarget] = useState<string | null>(null)
  const [following, setFollowing] = useState('')
  const [state, setState] = useState<'idle' | 'connecting' | 'open' | 'error'>('idle')
  const [events, setEvents] = useState<LiveEvent[]>([])
  const [paused, setPaused] = useState(false)
  const held = useRef<LiveEvent[]>([])
  // what is held while paused, shown on the Resume button
  const [heldCount, setHeldCount] = useState(0)
  const pausedRef = useRef(false)
  const seq = useRef(0)
  pausedRef.current = paused

  useEffect(() => {
    if (target === null) return
    setState('connecting')
    const source = new EventSource(withToken(target, api.tokenQuery()))
    const onEvent = (e: MessageEvent<string>) => {
      let envelope: { type?: string; id?: unknown; value?: unknown } = {}
      try {
        envelope = JSON.parse(e.data)
      } catch {
        envelope = { value: e.data }
      }
      const event: LiveEvent = {
        seq: ++seq.current,
        at: new Date(),
        type: envelope.type ?? e.type,
        id: envelope.id,
        value: envelope.value,
      }
      if (pausedRef.current) setHeldCount(held.current.push(event))
      else setEvents((list) => [event, ...list].slice(0, MAX_EVENTS))
    }
    for (const type of TYPES) source.addEventListener(type, onEvent)
    source.onopen = () => setState('open')
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? 'error' : 'connecting')
    return () => source.close()
  }, [target, api])

  const follow = (e: Event) => {
    e.preventDefault()
    if (input.trim() === '') return
    setEvents([])
    held.current = []
    setHeldCount(0)
    setFollowing(input.trim())
    setTarget(
      liveTarget(
        input,
        (tables.data ?? []).flatMap((t) => (t.exportPath ? [t.exportPath] : [])),
      ),
    )
  }
  const resume = () => {
    const waiting = held.current.reverse()
    held.current = []
    setHeldCount(0)
    setPaused(false)
    setEvents((list) => [...waiting, ...list].slice(0, MAX_EVENTS))
  }

  return (
    <section aria-labelledby="live-title">
      <div class="section-head">
        <h1 id="live-title">Live</h1>
        <span class={`state ${state}`} role="status">
          {target === null ? 'not following' : state === 'open' ? `following ${following}` : state}
        </span>
      </div>
      <form class="query" onSubmit={follow}>
        <label class="grow">
          <span class="sr-only">Topic filter, table path or query</span>
          <input
            name="target"
            list="live-tables"
            placeholder="a table (Dog/), a query (Dog/?breed=lab), a record (Dog/1) or a topic filter (sensors/#)"
            value={input}
            onInput={(e) => setInput(e.currentTarget.value)}
            spellcheck={false}
          />
          <datalist id="live-tables">
            {tables.data?.map((t) => t.exportPath && <option key={t.name} value={`${t.exportPath}/`} />)}
          </datalist>
        </label>
        <button type="submit" class="primary">
          Follow
        </button>
        <button type="button" onClick={() => (paused ? resume() : setPaused(true))} aria-pressed={paused}>
          {paused ? `Resume${heldCount ? ` (${heldCount})` : ''}` : 'Pause'}
        </button>
        <button type="button" onClick={() => setEvents([])}>
          Clear
        </button>
      </form>
      <ol class="events" aria-label="Events, newest first" aria-live={paused ? 'off' : 'polite'}>
        {events.map((e) => (
          <li key={e.seq} class={`event ${e.type}`}>
            <time dateTime={e.at.toISOString()}>{e.at.toLocaleTimeString()}</time>
            <span class="type">{e.type}</span>
            <code class="id">{formatId(e.id)}</code>
            <code class="value">{e.value === undefined ? '' : JSON.stringify(e.value)}</code>
          </li>
        ))}
        {events.length === 0 && <li class="muted empty">No events yet.</li>}
      </ol>
      <PublishForm api={api} />
    </section>
  )
}

function formatId(id: unknown): string {
  return Array.isArray(id) ? id.join('/') : String(id ?? '')
}

/**
 * Publishes from the page through the server's doors: a retained value is a REST `PUT` on the topic
 * (for a table topic, a write of the record); a message is sent over a WebSocket on the topic, which
 * hands it to subscribers without storing it.
 */
function PublishForm({ api }: { api: Api }) {
  const [topic, setTopic] = useState('')
  const [payload, setPayload] = useState('')
  const [retain, setRetain] = useState(false)
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null)

  const publish = async (e: Event) => {
    e.preventDefault()
    setResult(null)
    const value = asJson(payload)
    try {
      if (retain) {
        await api.fetch('PUT', restPath(topic), { body: value })
      } else {
        await sendMessage(api, topic, value)
      }
      setResult({ ok: true, text: retain ? `Stored on ${topic}.` : `Published to ${topic}.` })
    } catch (err) {
      setResult({ ok: false, text: (err as Error).message })
    }
  }

  return (
    <form class="card publish" onSubmit={publish} aria-labelledby="publish-title">
      <h2 id="publish-title">Publish</h2>
      <div class="row">
        <label class="grow">
          Topic
          <input
            name="topic"
            required
            placeholder="Dog/1 or sensors/kitchen"
            value={topic}
            onInput={(e) => setTopic(e.currentTarget.value)}
          />
        </label>
        <label class="check">
          <input
            type="checkbox"
            name="retain"
            checked={retain}
            onChange={(e) => setRetain(e.currentTarget.checked)}
          />
          Retain (store as the topic's value)
        </label>
      </div>
      <label>
        Payload <span class="muted small">(JSON, or text)</span>
        <textarea
          name="payload"
          rows={3}
          value={payload}
          onInput={(e) => setPayload(e.currentTarget.value)}
        />
      </label>
      <div class="actions">
        <button type="submit" class="primary">
          Publish
        </button>
        {result && (
          <span class={result.ok ? 'ok' : 'error'} role="status">
            {result.text}
          </span>
        )}
      </div>
    </form>
  )
}

/**
 * Opens a WebSocket on the topic and sends one JSON message. The socket also subscribes to the topic,
 * so the message comes back as a `message` event once it was published; then it closes.
 */
function sendMessage(api: Api, topic: string, value: unknown): Promise<void> {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  const ws = new WebSocket(`${scheme}://${location.host}${restPath(topic)}?${api.tokenQuery()}`)
  return new Promise((resolve, reject) => {
    let sent = false
    const timer = setTimeout(() => ws.close(1000), 5000)
    ws.onopen = () => {
      ws.send(JSON.stringify(value))
      sent = true
    }
    ws.onmessage = (e) => {
      try {
        if ((JSON.parse(String(e.data)) as { type?: string }).type === 'message') ws.close(1000)
      } catch {
        // not an envelope: keep waiting
      }
    }
    ws.onclose = (e) => {
      clearTimeout(timer)
      if (sent && (e.code === 1000 || e.code === 1005)) resolve()
      else reject(new Error(e.reason || 'the WebSocket was refused (permissions, or no such topic)'))
    }
  })
}
