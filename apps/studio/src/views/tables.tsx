import type { Api } from '../api.js'
import { href } from '../route.js'
import { useData } from '../use-data.js'

export interface TableSummary {
  name: string
  exportPath: string | null
  records: number
  primaryKey: string | null
  sealed: boolean
  expiration: number | null
  attributes: { name: string; type: string; required: boolean; indexed: boolean; primaryKey: boolean }[]
  indexes: string[]
}

export function useTables(api: Api) {
  return useData(() => api.json<TableSummary[]>('GET', '/_admin/tables'), [api])
}

export function TablesView({ api }: { api: Api }) {
  const { data, error, reload } = useTables(api)
  return (
    <section aria-labelledby="tables-title">
      <div class="section-head">
        <h1 id="tables-title">Tables</h1>
        <button type="button" onClick={() => reload()}>
          Refresh
        </button>
      </div>
      {error && <p class="error">{error.message}</p>}
      {data && data.length === 0 && <p class="muted">No table you may read.</p>}
      <div class="cards">
        {data?.map((t) => (
          <article class="card table-card" key={t.name}>
            <header>
              <h2>{t.exportPath ? <a href={href('tables', t.exportPath)}>{t.name}</a> : t.name}</h2>
              <span class="count" title="records">
                {t.records.toLocaleString()} <span class="muted">records</span>
              </span>
            </header>
            <p class="muted small">
              {t.exportPath ? (
                <>
                  REST <code>/{t.exportPath}/</code> · topics <code>{t.exportPath}/#</code>
                </>
              ) : (
                'not exported'
              )}
              {t.expiration !== null && <> · expires after {t.expiration} s</>}
              {t.sealed && <> · sealed</>}
            </p>
            <table class="schema">
              <caption class="sr-only">Attributes of {t.name}</caption>
              <thead>
                <tr>
                  <th scope="col">attribute</th>
                  <th scope="col">type</th>
                  <th scope="col" />
                </tr>
              </thead>
              <tbody>
                {t.attributes.map((a) => (
                  <tr key={a.name}>
                    <td>
                      <code>{a.name}</code>
                    </td>
                    <td>
                      {a.type}
                      {a.required ? '!' : ''}
                    </td>
                    <td class="tags">
                      {a.primaryKey && <span class="badge">primary key</span>}
                      {a.indexed && <span class="badge muted">indexed</span>}
                    </td>
                  </tr>
                ))}
                {t.attributes.length === 0 && (
                  <tr>
                    <td colSpan={3} class="muted">
                      any attributes
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </article>
        ))}
      </div>
    </section>
  )
}
