import { useEffect, useState } from 'preact/hooks'
import type { Api } from '../api.js'
import { useData } from '../use-data.js'

interface Subscription {
  filter: string
  qos: number
  shared: boolean
}

interface SessionRow {
  clientId: string
  username: string | null
  protocolVersion: number
  connected: boolean
  durable: boolean
  expiryInterval: number | null
  disconnectedAt: number | null
  subscriptions: Subscription[]
  inflight: number
  queued: number
}

interface ClientRow extends SessionRow {
  transport: string
  remoteAddress?: string
  remotePort?: number
  connectedAt: number
}

const PROTOCOLS: Record<number, string> = { 3: '3.1', 4: '3.1.1', 5: '5' }
const REFRESH_MS = 5000

/** Connected MQTT clients and kept sessions (administrators only); a client can be disconnected. */
export function ClientsView({ api }: { api: Api }) {
  const clients = useData(() => api.json<ClientRow[]>('GET', '/_admin/clients'), [api])
  const sessions = useData(() => api.json<SessionRow[]>('GET', '/_admin/sessions'), [api])
  const [notice, setNotice] = useState<string | null>(null)
  const refresh = () => Promise.all([clients.reload(), sessions.reload()])
  useEffect(() => {
    const timer = setInterval(refresh, REFRESH_MS)
    return () => clearInterval(timer)
  }, [])

  const disconnect = async (clientId: string) => {
    if (!confirm(`Disconnect ${clientId}? A durable session stays; the client may reconnect.`)) return
    try {
      await api.fetch('DELETE', `/_admin/clients/${encodeURIComponent(clientId)}`)
      setNotice(`Disconnected ${clientId}.`)
    } catch (err) {
      setNotice((err as Error).message)
    }
    await refresh()
  }

  const offline = sessions.data?.filter((s) => !s.connected) ?? []
  return (
    <section aria-labelledby="clients-title">
      <div class="section-head">
        <h1 id="clients-title">Clients</h1>
        <button type="button" onClick={() => refresh()}>
          Refresh
        </button>
      </div>
      {notice && (
        <p class="ok" role="status">
          {notice}
        </p>
      )}
      {(clients.error || sessions.error) && <p class="error">{(clients.error ?? sessions.error)!.message}</p>}
      <h2>Connected ({clients.data?.length ?? 0})</h2>
      <div class="scroll">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">client id</th>
              <th scope="col">user</th>
              <th scope="col">MQTT</th>
              <th scope="col">door</th>
              <th scope="col">address</th>
              <th scope="col">since</th>
              <th scope="col">subscriptions</th>
              <th scope="col">in flight</th>
              <th scope="col">queued</th>
              <th scope="col">
                <span class="sr-only">actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {clients.data?.map((c) => (
              <tr key={c.clientId}>
                <td>
                  <code>{c.clientId}</code>
                  {c.durable && <span class="badge muted">durable</span>}
                </td>
                <td>{c.username ?? <span class="muted">anonymous</span>}</td>
                <td>{PROTOCOLS[c.protocolVersion] ?? c.protocolVersion}</td>
                <td>{c.transport}</td>
                <td>
                  {c.remoteAddress}
                  {c.remotePort ? `:${c.remotePort}` : ''}
                </td>
                <td>{new Date(c.connectedAt).toLocaleTimeString()}</td>
                <td>
                  <Subscriptions list={c.subscriptions} />
                </td>
                <td class="num">{c.inflight}</td>
                <td class="num">{c.queued}</td>
                <td>
                  <button type="button" class="danger small" onClick={() => disconnect(c.clientId)}>
                    Disconnect
                  </button>
                </td>
              </tr>
            ))}
            {clients.data?.length === 0 && (
              <tr>
                <td colSpan={10} class="muted">
                  No MQTT client is connected.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <h2>Durable sessions without a connection ({offline.length})</h2>
      <div class="scroll">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">client id</th>
              <th scope="col">user</th>
              <th scope="col">MQTT</th>
              <th scope="col">away since</th>
              <th scope="col">expires after</th>
              <th scope="col">subscriptions</th>
              <th scope="col">in flight</th>
            </tr>
          </thead>
          <tbody>
            {offline.map((s) => (
              <tr key={s.clientId}>
                <td>
                  <code>{s.clientId}</code>
                </td>
                <td>{s.username ?? <span class="muted">anonymous</span>}</td>
                <td>{PROTOCOLS[s.protocolVersion] ?? s.protocolVersion}</td>
                <td>{s.disconnectedAt ? new Date(s.disconnectedAt).toLocaleString() : ''}</td>
                <td>{s.expiryInterval === null ? 'never' : `${s.expiryInterval} s`}</td>
                <td>
                  <Subscriptions list={s.subscriptions} />
                </td>
                <td class="num">{s.inflight}</td>
              </tr>
            ))}
            {offline.length === 0 && (
              <tr>
                <td colSpan={7} class="muted">
                  None.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  )
}

function Subscriptions({ list }: { list: Subscription[] }) {
  if (list.length === 0) return <span class="muted">none</span>
  return (
    <ul class="plain">
      {list.map((s) => (
        <li key={s.filter}>
          <code>{s.filter}</code> <span class="muted small">QoS {s.qos}</span>
        </li>
      ))}
    </ul>
  )
}
