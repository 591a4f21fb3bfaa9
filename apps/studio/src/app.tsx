import { useEffect, useMemo, useState } from 'preact/hooks'
import { Api, loadSession, type Session, saveSession } from './api.js'
import { href, useRoute } from './route.js'
import { ClientsView } from './views/clients.js'
import { LiveView } from './views/live.js'
import { LoginView } from './views/login.js'
import { MetricsView } from './views/metrics.js'
import { RecordsView } from './views/records.js'
import { TablesView } from './views/tables.js'
import { UsersView } from './views/users.js'

interface Me {
  username: string
  role: string
  admin: boolean
}

const SECTIONS = [
  { id: 'tables', label: 'Tables', admin: false },
  { id: 'live', label: 'Live', admin: false },
  { id: 'clients', label: 'Clients', admin: true },
  { id: 'users', label: 'Users', admin: true },
  { id: 'metrics', label: 'Metrics', admin: false },
] as const

export function App() {
  const [session, setSession] = useState<Session | null>(loadSession)
  const [me, setMe] = useState<Me | null>(null)
  const route = useRoute()
  const signOut = () => {
    saveSession(null)
    setSession(null)
    setMe(null)
  }
  const api = useMemo(() => (session ? new Api(session, signOut) : null), [session])

  useEffect(() => {
    if (!api) return
    api.json<Me>('GET', '/_admin/me').then(setMe, () => signOut())
  }, [api])

  if (!api || !session) {
    return (
      <LoginView
        onLogin={(s) => {
          saveSession(s)
          setSession(s)
        }}
      />
    )
  }
  if (!me) return <p class="loading">Loading…</p>

  const sections = SECTIONS.filter((s) => !s.admin || me.admin)
  const section = sections.find((s) => s.id === route[0]) ?? sections[0]!
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href={href('tables')}>
          <img src="/studio/favicon.svg" alt="" width="22" height="22" /> Studio
        </a>
        <nav aria-label="Sections">
          {sections.map((s) => (
            <a key={s.id} href={href(s.id)} aria-current={s.id === section.id ? 'page' : undefined}>
              {s.label}
            </a>
          ))}
        </nav>
        <div class="who">
          <span title={`role ${me.role}`}>
            {me.username}
            {me.admin ? <span class="badge">admin</span> : <span class="badge muted">{me.role}</span>}
          </span>
          <button type="button" class="link" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main>
        {section.id === 'tables' &&
          (route[1] ? (
            <RecordsView api={api} table={route[1]} recordId={route[2]} />
          ) : (
            <TablesView api={api} />
          ))}
        {section.id === 'live' && <LiveView api={api} />}
        {section.id === 'clients' && <ClientsView api={api} />}
        {section.id === 'users' && <UsersView api={api} me={me.username} />}
        {section.id === 'metrics' && <MetricsView api={api} />}
      </main>
    </div>
  )
}
