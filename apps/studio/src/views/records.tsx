import { useEffect, useState } from 'preact/hooks'
import { type Api, nextCursor, restPath } from '../api.js'
import { href } from '../route.js'
import { RecordEditor } from './record-editor.js'
import { useTables } from './tables.js'

const PAGE_SIZES = [25, 50, 100]

interface Page {
  rows: Record<string, unknown>[]
  next: string | undefined
}

/**
 * One table's records: a raw query string (`breed=lab&sort=-age`, the REST list parameters), pages
 * followed with the keyset cursor of each page's `Link: rel="next"`, and a record open beside them.
 */
export function RecordsView({
  api,
  table,
  recordId,
}: {
  api: Api
  table: string
  recordId: string | undefined
}) {
  const tables = useTables(api)
  const summary = tables.data?.find((t) => t.exportPath === table)
  const [query, setQuery] = useState('')
  const [applied, setApplied] = useState('')
  const [limit, setLimit] = useState(25)
  // cursors[i] is the `after` of page i (undefined for the first)
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined])
  const [page, setPage] = useState<Page | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [version, setVersion] = useState(0)
  const after = cursors[cursors.length - 1]

  useEffect(() => {
    const params = new URLSearchParams(applied)
    params.set('limit', String(limit))
    if (after !== undefined) params.set('after', after)
    let live = true
    api.fetch('GET', `${restPath(table)}/?${params}`).then(
      async (res) => {
        if (!live) return
        const rows = (await res.json()) as Record<string, unknown>[]
        setPage({ rows, next: nextCursor(res.headers.get('link')) })
        setError(null)
      },
      (err: Error) => live && setError(err.message),
    )
    return () => {
      live = false
    }
  }, [api, table, applied, limit, after, version])

  const pk = summary?.primaryKey ?? 'id'
  const columns = columnsOf(summary?.attributes.map((a) => a.name) ?? [], page?.rows ?? [], pk)
  const run = (e: Event) => {
    e.preventDefault()
    setApplied(query.trim().replace(/^\?/, ''))
    setCursors([undefined])
  }
  const changed = () => {
    void tables.reload()
    setVersion((v) => v + 1)
  }

  return (
    <section aria-labelledby="records-title" class="records">
      <div class="section-head">
        <h1 id="records-title">
          <a href={href('tables')} class="muted">
            Tables
          </a>{' '}
          / {summary?.name ?? table}
        </h1>
        <a class="button primary" href={href('tables', table, '+new')}>
          New record
        </a>
      </div>
      <form class="query" onSubmit={run}>
        <label class="grow">
          <span class="sr-only">Query</span>
          <input
            name="query"
            placeholder="filter and sort, e.g. breed=lab&sort=-age"
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
            spellcheck={false}
          />
        </label>
        <label>
          <span class="sr-only">Page size</span>
          <select
            value={limit}
            onChange={(e) => {
              setLimit(Number(e.currentTarget.value))
              setCursors([undefined])
            }}
          >
            {PAGE_SIZES.map((n) => (
              <option value={n} key={n}>
                {n} per page
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Run</button>
      </form>
      <p class="muted small">
        Query parameters of <code>GET {restPath(table)}/</code>: attribute conditions (<code>name=value</code>
        ), <code>sort=-age,name</code>, <code>select=name,age</code>.
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="split">
        <div class="scroll">
          <table class="grid">
            <thead>
              <tr>
                {columns.map((c) => (
                  <th scope="col" key={c}>
                    {c}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {page?.rows.map((row, i) => {
                const id = String(row[pk] ?? '')
                return (
                  <tr key={`${id}-${i}`} aria-selected={id === recordId}>
                    {columns.map((c, j) => (
                      <td key={c}>
                        {j === 0 && id !== '' ? (
                          <a href={href('tables', table, id)}>{cell(row[c])}</a>
                        ) : (
                          cell(row[c])
                        )}
                      </td>
                    ))}
                  </tr>
                )
              })}
              {page && page.rows.length === 0 && (
                <tr>
                  <td colSpan={columns.length || 1} class="muted">
                    No records.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <div class="pager">
            <button
              type="button"
              disabled={cursors.length === 1}
              onClick={() => setCursors((c) => c.slice(0, -1))}
            >
              ← Previous
            </button>
            <span class="muted small">page {cursors.length}</span>
            <button
              type="button"
              disabled={!page?.next}
              onClick={() => page?.next && setCursors((c) => [...c, page.next])}
            >
              Next →
            </button>
          </div>
        </div>
        {recordId !== undefined && (
          <RecordEditor
            key={`${table}/${recordId}`}
            api={api}
            table={table}
            recordId={recordId === '+new' ? undefined : recordId}
            primaryKey={pk}
            onChanged={changed}
          />
        )}
      </div>
    </section>
  )
}

/** The primary key first, then schema attributes, then any other keys the rows carry. */
function columnsOf(attributes: string[], rows: Record<string, unknown>[], pk: string): string[] {
  const seen = new Set<string>([pk, ...attributes])
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key)
  return [...seen]
}

function cell(value: unknown): string {
  if (value === undefined) return ''
  if (value === null || typeof value !== 'object') return String(value)
  const text = JSON.stringify(value)
  return text.length > 80 ? `${text.slice(0, 77)}…` : text
}
