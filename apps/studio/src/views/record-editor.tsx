import { useEffect, useState } from 'preact/hooks'
import { type Api, ApiError, restPath } from '../api.js'
import { href } from '../route.js'

interface Loaded {
  text: string
  etag: string | null
}

type Status =
  | { kind: 'idle' }
  | { kind: 'saved'; message: string }
  | { kind: 'error'; message: string }
  | {
      kind: 'conflict'
    }

/**
 * One record as JSON. Saving sends `PUT` with `If-Match` (the ETag it was read with), so a change made
 * meanwhile by anyone (MQTT, REST, another Studio) is a 412 shown as a conflict instead of being lost;
 * deleting sends the same precondition. A new record is created with `If-None-Match: *` (or `POST`
 * when no id is given, and the server picks one).
 */
export function RecordEditor({
  api,
  table,
  recordId,
  primaryKey,
  onChanged,
}: {
  api: Api
  table: string
  recordId: string | undefined
  primaryKey: string
  onChanged: () => void
}) {
  const creating = recordId === undefined
  const [loaded, setLoaded] = useState<Loaded | null>(creating ? { text: '{\n  \n}', etag: null } : null)
  const [text, setText] = useState(creating ? '{\n  \n}' : '')
  const [newId, setNewId] = useState('')
  const [status, setStatus] = useState<Status>({ kind: 'idle' })
  const path = creating ? '' : `${restPath(table)}/${encodeURIComponent(recordId)}`

  const load = async () => {
    if (creating) return
    try {
      const res = await api.fetch('GET', path)
      const value = await res.json()
      const next = { text: JSON.stringify(value, null, 2), etag: res.headers.get('etag') }
      setLoaded(next)
      setText(next.text)
      setStatus({ kind: 'idle' })
    } catch (err) {
      setStatus({ kind: 'error', message: (err as Error).message })
    }
  }
  useEffect(() => {
    void load()
  }, [path])

  const parse = (): unknown => {
    try {
      return JSON.parse(text)
    } catch (err) {
      setStatus({ kind: 'error', message: `Not valid JSON: ${(err as Error).message}` })
      return undefined
    }
  }

  const save = async (e: Event) => {
    e.preventDefault()
    const value = parse()
    if (value === undefined) return
    try {
      if (creating) {
        const id = newId.trim()
        let target: string
        if (id === '') {
          const created = await api.json<unknown>('POST', `${restPath(table)}/`, { body: value })
          target = String(created)
        } else {
          await api.fetch('PUT', `${restPath(table)}/${encodeURIComponent(id)}`, {
            body: value,
            headers: { 'if-none-match': '*' },
          })
          target = id
        }
        onChanged()
        location.hash = href('tables', table, target)
        return
      }
      const res = await api.fetch('PUT', path, {
        body: value,
        headers: loaded?.etag ? { 'if-match': loaded.etag } : {},
      })
      setLoaded({ text, etag: res.headers.get('etag') })
      setStatus({ kind: 'saved', message: 'Saved.' })
      onChanged()
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) setStatus({ kind: 'conflict' })
      else setStatus({ kind: 'error', message: (err as Error).message })
    }
  }

  const remove = async () => {
    if (!confirm(`Delete ${table}/${recordId}?`)) return
    try {
      await api.fetch('DELETE', path, { headers: loaded?.etag ? { 'if-match': loaded.etag } : {} })
      onChanged()
      location.hash = href('tables', table)
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) setStatus({ kind: 'conflict' })
      else setStatus({ kind: 'error', message: (err as Error).message })
    }
  }

  const titleId = 'record-editor-title'
  return (
    <form class="card editor" onSubmit={save} aria-labelledby={titleId}>
      <div class="section-head">
        <h2 id={titleId}>{creating ? 'New record' : `${table}/${recordId}`}</h2>
        <a href={href('tables', table)} class="muted" aria-label="Close the record">
          ✕
        </a>
      </div>
      {creating && (
        <label>
          {primaryKey} <span class="muted small">(empty: the server picks one)</span>
          <input name="id" value={newId} onInput={(e) => setNewId(e.currentTarget.value)} />
        </label>
      )}
      {!creating && loaded?.etag && <p class="muted small">version {loaded.etag}</p>}
      <label>
        <span class="sr-only">Value as JSON</span>
        <textarea
          name="value"
          rows={16}
          spellcheck={false}
          value={text}
          onInput={(e) => {
            setText(e.currentTarget.value)
            if (status.kind === 'saved') setStatus({ kind: 'idle' })
          }}
        />
      </label>
      {status.kind === 'conflict' && (
        <div class="conflict" role="alert">
          <strong>Conflict (412):</strong> the record changed since you opened it. Your edit was not saved.{' '}
          <button type="button" onClick={() => load()}>
            Load the current version
          </button>
        </div>
      )}
      {status.kind === 'error' && (
        <p class="error" role="alert">
          {status.message}
        </p>
      )}
      {status.kind === 'saved' && (
        <p class="ok" role="status">
          {status.message}
        </p>
      )}
      <div class="actions">
        <button type="submit" class="primary">
          {creating ? 'Create' : 'Save'}
        </button>
        {!creating && (
          <button type="button" class="danger" onClick={remove}>
            Delete
          </button>
        )}
      </div>
    </form>
  )
}
