import { useState } from 'preact/hooks'
import type { Api } from '../api.js'
import { useData } from '../use-data.js'

interface UserRow {
  username: string
  role: string
  superUser: boolean
}

interface RoleRow {
  name: string
  superUser: boolean
  tables: Record<string, Record<string, boolean>>
  topics: { filter: string; publish?: boolean; subscribe?: boolean }[]
}

/** Users and roles (administrators only): add a user, change a password. */
export function UsersView({ api, me }: { api: Api; me: string }) {
  const users = useData(() => api.json<UserRow[]>('GET', '/_admin/users'), [api])
  const roles = useData(() => api.json<RoleRow[]>('GET', '/_admin/roles'), [api])
  const [changing, setChanging] = useState<string | null>(null)
  const [notice, setNotice] = useState<{ ok: boolean; text: string } | null>(null)

  return (
    <section aria-labelledby="users-title">
      <div class="section-head">
        <h1 id="users-title">Users</h1>
      </div>
      {notice && (
        <p class={notice.ok ? 'ok' : 'error'} role="status">
          {notice.text}
        </p>
      )}
      <div class="scroll">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">user</th>
              <th scope="col">role</th>
              <th scope="col">
                <span class="sr-only">actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {users.data?.map((u) => (
              <tr key={u.username}>
                <td>
                  {u.username}
                  {u.username === me && <span class="muted small"> (you)</span>}
                </td>
                <td>
                  {u.role}
                  {u.superUser && <span class="badge">super user</span>}
                </td>
                <td>
                  {changing === u.username ? (
                    <PasswordForm
                      api={api}
                      username={u.username}
                      onDone={(text, ok) => {
                        setChanging(null)
                        setNotice({ ok, text })
                      }}
                    />
                  ) : (
                    <button type="button" class="small" onClick={() => setChanging(u.username)}>
                      Change password
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <AddUserForm
        api={api}
        roles={roles.data?.map((r) => r.name) ?? []}
        onAdded={(name) => {
          setNotice({ ok: true, text: `Added ${name}.` })
          void users.reload()
        }}
      />
      <h2>Roles</h2>
      <div class="scroll">
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">role</th>
              <th scope="col">tables</th>
              <th scope="col">topics no table claims</th>
            </tr>
          </thead>
          <tbody>
            {roles.data?.map((r) => (
              <tr key={r.name}>
                <td>
                  {r.name}
                  {r.superUser && <span class="badge">super user</span>}
                </td>
                <td>
                  {r.superUser
                    ? 'everything'
                    : Object.entries(r.tables)
                        .map(
                          ([t, p]) =>
                            `${t}: ${
                              Object.keys(p)
                                .filter((k) => p[k])
                                .join(', ') || 'nothing'
                            }`,
                        )
                        .join('; ') || <span class="muted">nothing</span>}
                </td>
                <td>
                  {r.superUser
                    ? 'everything'
                    : r.topics
                        .map(
                          (t) =>
                            `${t.filter} (${[t.publish && 'publish', t.subscribe && 'subscribe'].filter(Boolean).join(', ') || 'denied'})`,
                        )
                        .join('; ') || <span class="muted">nothing</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}

function PasswordForm({
  api,
  username,
  onDone,
}: {
  api: Api
  username: string
  onDone: (text: string, ok: boolean) => void
}) {
  const [password, setPassword] = useState('')
  const submit = async (e: Event) => {
    e.preventDefault()
    try {
      await api.fetch('PUT', `/_admin/users/${encodeURIComponent(username)}/password`, { body: { password } })
      onDone(`Changed the password of ${username}.`, true)
    } catch (err) {
      onDone((err as Error).message, false)
    }
  }
  return (
    <form class="inline" onSubmit={submit}>
      <label>
        <span class="sr-only">New password for {username}</span>
        <input
          type="password"
          autoComplete="new-password"
          required
          placeholder="new password"
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
      </label>
      <button type="submit" class="small primary">
        Set
      </button>
      <button type="button" class="small" onClick={() => onDone('Password unchanged.', true)}>
        Cancel
      </button>
    </form>
  )
}

function AddUserForm({
  api,
  roles,
  onAdded,
}: {
  api: Api
  roles: string[]
  onAdded: (name: string) => void
}) {
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [role, setRole] = useState('user')
  const [error, setError] = useState<string | null>(null)
  const submit = async (e: Event) => {
    e.preventDefault()
    setError(null)
    try {
      await api.fetch('POST', '/_admin/users', { body: { username, password, role } })
      onAdded(username)
      setUsername('')
      setPassword('')
    } catch (err) {
      setError((err as Error).message)
    }
  }
  return (
    <form class="card" onSubmit={submit} aria-labelledby="add-user-title">
      <h2 id="add-user-title">Add a user</h2>
      <div class="row">
        <label class="grow">
          User name
          <input
            name="new-username"
            required
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
          />
        </label>
        <label class="grow">
          Password
          <input
            name="new-password"
            type="password"
            autoComplete="new-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <label>
          Role
          <select name="role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            {roles.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="actions">
        <button type="submit" class="primary">
          Add user
        </button>
      </div>
    </form>
  )
}
