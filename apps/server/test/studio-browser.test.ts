import { existsSync } from 'node:fs'
import { tempDir } from '@proj/test-utils'
import type { MqttClient } from 'mqtt'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { basic, connectMqtt, nextMessage } from './helpers/clients.js'
import { type ServerProcess, startServerProcess } from './helpers/server-process.js'

const CHROMIUM = '/usr/bin/chromium'
const haveChromium = existsSync(CHROMIUM)
if (!haveChromium) {
  console.warn(
    `[server] skipping the Studio browser test: ${CHROMIUM} is missing (bash scripts/ensure-system-deps.sh)`,
  )
}
const ADMIN = { username: 'admin', password: 'admin-secret' }
/** Set to a path to (re)write the README's screenshot from this run. */
const SCREENSHOT = process.env.STUDIO_SCREENSHOT

describe('the Studio (built server, built Studio)', () => {
  let root: Awaited<ReturnType<typeof tempDir>>
  let server: ServerProcess
  let http: string
  let mqttUrl: string
  let browser: Browser | undefined
  const clients: MqttClient[] = []
  const admin = basic(ADMIN.username, ADMIN.password)

  beforeAll(async () => {
    root = await tempDir('proj-server-studio-')
    server = await startServerProcess(root.path, {
      env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
    })
    http = server.listeners.http!.url
    mqttUrl = server.listeners.mqtt!.url
    if (haveChromium) {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      })
    }
  })

  afterAll(async () => {
    await browser?.close()
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    const code = await server?.stop()
    await root?.remove()
    expect(code, server?.output()).toBe(0)
  })

  it('is served at /studio/ from the build, / redirects there, and nothing outside the build is', async () => {
    const rootPage = await fetch(`${http}/`, { redirect: 'manual' })
    expect(rootPage.status).toBe(302)
    expect(rootPage.headers.get('location')).toBe('/studio/')
    const page = await fetch(`${http}/studio/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'")
    const html = await page.text()
    const script = /src="(\/studio\/assets\/[^"]+\.js)"/.exec(html)?.[1]
    expect(script, html).toBeDefined()
    // no CDN: every script and stylesheet the page loads is on this server
    expect(html).not.toMatch(/(src|href)="https?:/)
    const asset = await fetch(`${http}${script}`)
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(asset.headers.get('cache-control')).toContain('immutable')
    // a page of the Studio's own routing gets the page; a missing file or a path outside the build does not
    expect((await fetch(`${http}/studio/tables`)).status).toBe(200)
    expect((await fetch(`${http}/studio/assets/nope.js`)).status).toBe(404)
    expect((await fetch(`${http}/studio/..%2F..%2Fpackage.json`)).status).toBe(404)
    // dot segments are resolved by the URL parser before the Studio sees the path: it is no file of the build
    const dotted = await fetch(`${http}/studio/%2e%2e/%2e%2e/package.json`, {
      headers: { authorization: admin },
    })
    expect(dotted.status).toBe(404)
    expect((await fetch(`${http}/studio/`, { method: 'POST' })).status).toBe(405)
  })

  describe.skipIf(!haveChromium)('in headless Chromium', () => {
    let page: Page

    beforeAll(async () => {
      page = await browser!.newPage({ viewport: { width: 1280, height: 860 } })
      page.on('pageerror', (err) => console.error('[studio page error]', err))
      // a step that cannot happen fails with the locator it waited for, well before the test's timeout
      page.setDefaultTimeout(10_000)
    })

    it('logs in with the keyboard and lists the tables', async () => {
      await page.goto(`${http}/`)
      await page.getByLabel('User name').focus()
      await page.keyboard.type(ADMIN.username)
      await page.keyboard.press('Tab')
      await page.keyboard.type(ADMIN.password)
      await page.keyboard.press('Enter')
      await page.getByRole('heading', { name: 'Tables' }).waitFor()
      await page.getByRole('link', { name: 'Dog', exact: true }).waitFor()
      // the token is kept for the tab only
      const stored = await page.evaluate(() =>
        (globalThis as any).sessionStorage.getItem('proj.studio.session'),
      )
      expect(JSON.parse(stored!)).toMatchObject({ username: 'admin' })
      // administrators see every section
      for (const name of ['Tables', 'Live', 'Clients', 'Users', 'Metrics'])
        await expect(page.getByRole('navigation').getByRole('link', { name }).count()).resolves.toBe(1)
    })

    it('creates a record', async () => {
      await page.getByRole('link', { name: 'Dog', exact: true }).click()
      await page.getByRole('link', { name: 'New record' }).click()
      await page.getByLabel(/^id/).fill('rex')
      await page.getByLabel('Value as JSON').fill('{ "name": "Rex", "breed": "beagle", "age": 3 }')
      await page.getByRole('button', { name: 'Create' }).click()
      await page.getByRole('heading', { name: 'Dog/rex' }).waitFor()
      const res = await fetch(`${http}/Dog/rex`, { headers: { authorization: admin } })
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({ name: 'Rex', breed: 'beagle', age: 3 })
      // the list shows it, and the editor holds it with its version
      await page.getByRole('cell', { name: 'beagle' }).waitFor()
      // the editor fills once the record's GET answers, after the heading shows: poll, do not read once
      await expect.poll(() => page.getByLabel('Value as JSON').inputValue()).toContain('"Rex"')
    })

    it('edits the record and an MQTT subscriber receives the change; a stale edit is a conflict', async () => {
      const sub = await connectMqtt(mqttUrl, { ...ADMIN, clientId: 'studio-e2e-sub' })
      clients.push(sub)
      const current = nextMessage(sub, 'Dog/rex')
      await sub.subscribeAsync('Dog/rex', { qos: 1 })
      await current // the retained current value comes first
      const changed = nextMessage(
        sub,
        'Dog/rex',
        (payload) => JSON.parse(payload.toString()).name === 'Rex II',
      )
      await page.getByLabel('Value as JSON').fill('{ "name": "Rex II", "breed": "beagle", "age": 4 }')
      await page.getByRole('button', { name: 'Save' }).click()
      await page.getByText('Saved.').waitFor()
      const { payload } = await changed
      expect(JSON.parse(payload.toString())).toMatchObject({ id: 'rex', name: 'Rex II', age: 4 })

      // someone else writes meanwhile: the Studio's If-Match no longer matches
      const other = await fetch(`${http}/Dog/rex`, {
        method: 'PATCH',
        headers: { authorization: admin, 'content-type': 'application/json' },
        body: JSON.stringify({ age: 5 }),
      })
      expect(other.status).toBe(204)
      await page.getByLabel('Value as JSON').fill('{ "name": "Rex III" }')
      await page.getByRole('button', { name: 'Save' }).click()
      await page.getByText(/Conflict \(412\)/).waitFor()
      const kept = await fetch(`${http}/Dog/rex`, { headers: { authorization: admin } })
      expect(await kept.json()).toMatchObject({ name: 'Rex II', age: 5 })
    })

    it('shows an MQTT.js publish in the live view, and publishes from the page', async () => {
      await page.getByRole('navigation').getByRole('link', { name: 'Live' }).click()
      await page.getByLabel('Topic filter, table path or query').fill('sensors/#')
      await page.getByRole('button', { name: 'Follow' }).click()
      await page.getByText('following sensors/#').waitFor()
      const pub = await connectMqtt(mqttUrl, { ...ADMIN, clientId: 'studio-e2e-pub' })
      clients.push(pub)
      await pub.publishAsync('sensors/kitchen/temp', JSON.stringify({ celsius: 21.5 }), { qos: 1 })
      const row = page.locator('.event', { hasText: 'sensors/kitchen/temp' })
      await row.waitFor()
      expect(await row.textContent()).toContain('{"celsius":21.5}')

      // paused: what arrives is held back until resumed
      await page.getByRole('button', { name: 'Pause' }).click()
      await pub.publishAsync('sensors/hall/temp', '19', { qos: 1 })
      await page.getByRole('button', { name: 'Resume (1)' }).waitFor()
      expect(await page.locator('.event', { hasText: 'sensors/hall/temp' }).count()).toBe(0)
      await page.getByRole('button', { name: 'Resume (1)' }).click()
      await page.locator('.event', { hasText: 'sensors/hall/temp' }).waitFor()

      // a message from the page reaches an MQTT subscriber (over the page's WebSocket)
      const got = nextMessage(pub, 'sensors/studio')
      await pub.subscribeAsync('sensors/studio', { qos: 1 })
      await page.getByLabel('Topic', { exact: true }).fill('sensors/studio')
      await page.getByLabel(/^Payload/).fill('{"from":"studio"}')
      await page.getByRole('button', { name: 'Publish', exact: true }).click()
      expect(JSON.parse((await got).payload.toString())).toEqual({ from: 'studio' })
      await page.getByText('Published to sensors/studio.').waitFor()
      if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-live.png') })
    })

    it('follows a table query: the records it matches, those entering and leaving it; clear; a retained publish', async () => {
      const put = (id: string, value: unknown, method = 'PUT') =>
        fetch(`${http}/Dog/${id}`, {
          method,
          headers: { authorization: admin, 'content-type': 'application/json' },
          body: JSON.stringify(value),
        })
      await page.getByLabel('Topic filter, table path or query').fill('Dog/?breed=beagle')
      await page.getByRole('button', { name: 'Follow' }).click()
      await page.getByText('following Dog/?breed=beagle').waitFor()
      // the current match first (rex is a beagle)
      const row = (id: string, type: string) =>
        page
          .locator(`.event.${type}`)
          .filter({ has: page.locator('.id', { hasText: new RegExp(`^${id}$`) }) })
      await row('rex', 'put').waitFor()
      // a pug does not match; the beagle written after it does, and shows that the pug was passed over
      expect((await put('fido', { name: 'Fido', breed: 'pug' })).status).toBe(201)
      expect((await put('bo', { name: 'Bo', breed: 'beagle' })).status).toBe(201)
      await row('bo', 'put').waitFor()
      expect(await row('fido', 'put').count()).toBe(0)
      // rex changes breed: it leaves the query
      expect((await put('rex', { breed: 'lab' }, 'PATCH')).status).toBe(204)
      await row('rex', 'leave').waitFor()

      await page.getByRole('button', { name: 'Clear' }).click()
      await page.getByText('No events yet.').waitFor()
      expect(await page.locator('.event').count()).toBe(0)

      // a retained value from the page: a new MQTT subscriber gets it
      await page.getByLabel('Topic', { exact: true }).fill('plain/studio')
      await page.getByLabel(/^Payload/).fill('21.5')
      await page.getByLabel(/^Retain/).check()
      await page.getByRole('button', { name: 'Publish', exact: true }).click()
      await page.getByText('Stored on plain/studio.').waitFor()
      const late = await connectMqtt(mqttUrl, { ...ADMIN, clientId: 'studio-e2e-retained' })
      clients.push(late)
      const retained = nextMessage(late, 'plain/studio')
      await late.subscribeAsync('plain/studio', { qos: 1 })
      const got = await retained
      expect(got.packet.retain).toBe(true)
      expect(JSON.parse(got.payload.toString())).toBe(21.5)
    })

    it('browses a table with a filter, a sort and the keyset pages, and deletes a record', async () => {
      const put = (id: string, value: unknown) =>
        fetch(`${http}/Dog/${id}`, {
          method: 'PUT',
          headers: { authorization: admin, 'content-type': 'application/json' },
          body: JSON.stringify(value),
        }).then((res) => res.status)
      const ids = Array.from({ length: 30 }, (_, i) => `p${String(i + 1).padStart(2, '0')}`)
      expect(
        await Promise.all(ids.map((id, i) => put(id, { name: `Pager ${i}`, breed: 'pager', age: i + 1 }))),
      ).toEqual(ids.map(() => 201))
      await page.getByRole('navigation').getByRole('link', { name: 'Tables' }).click()
      await page.getByRole('link', { name: 'Dog', exact: true }).click()
      await page.getByLabel('Query', { exact: true }).fill('breed=pager&sort=-age')
      await page.getByRole('button', { name: 'Run' }).click()
      const rows = page.locator('table.grid tbody tr')
      const firstId = () => rows.first().locator('td').first().textContent()
      // 25 a page, oldest last: p30 … p06, then the cursor's page p05 … p01
      await page.waitForFunction(
        () => (globalThis as any).document.querySelector('table.grid tbody tr td')?.textContent === 'p30',
      )
      expect(await rows.count()).toBe(25)
      await page.getByRole('button', { name: 'Next →' }).click()
      await page.getByText('page 2', { exact: true }).waitFor()
      await page.waitForFunction(
        () => (globalThis as any).document.querySelector('table.grid tbody tr td')?.textContent === 'p05',
      )
      expect(await rows.count()).toBe(5)
      expect(await page.getByRole('button', { name: 'Next →' }).isDisabled()).toBe(true)
      await page.getByRole('button', { name: '← Previous' }).click()
      await page.getByText('page 1', { exact: true }).waitFor()
      await page.waitForFunction(
        () => (globalThis as any).document.querySelector('table.grid tbody tr td')?.textContent === 'p30',
      )

      // delete p30 from its editor: gone from the server and from the list
      await page.getByRole('link', { name: 'p30', exact: true }).click()
      await page.getByRole('heading', { name: 'Dog/p30' }).waitFor()
      page.once('dialog', (d) => void d.accept())
      await page.getByRole('button', { name: 'Delete' }).click()
      await page.getByRole('heading', { name: 'Dog/p30' }).waitFor({ state: 'detached' })
      expect((await fetch(`${http}/Dog/p30`, { headers: { authorization: admin } })).status).toBe(404)
      await page.waitForFunction(
        () => (globalThis as any).document.querySelector('table.grid tbody tr td')?.textContent === 'p29',
      )
      expect(await firstId()).toBe('p29')
    })

    it("shows each table's record count in the tables list, and a new record after Refresh", async () => {
      const stored = async () => {
        const res = await fetch(`${http}/Dog/?select(id)`, { headers: { authorization: admin } })
        return ((await res.json()) as unknown[]).length
      }
      await page.getByRole('navigation').getByRole('link', { name: 'Tables' }).click()
      const count = page
        .locator('article.table-card', { has: page.getByRole('heading', { name: 'Dog', exact: true }) })
        .locator('.count')
      const before = await stored()
      expect(before).toBeGreaterThan(25) // the pages of the test above
      await page.getByRole('button', { name: 'Refresh' }).click()
      await expect.poll(() => count.textContent()).toBe(`${before} records`)
      const added = await fetch(`${http}/Dog/counted`, {
        method: 'PUT',
        headers: { authorization: admin, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Counted' }),
      })
      expect(added.status).toBe(201)
      await page.getByRole('button', { name: 'Refresh' }).click()
      await expect.poll(() => count.textContent()).toBe(`${before + 1} records`)
    })

    it('lists the connected MQTT clients and disconnects one', async () => {
      await page.getByRole('navigation').getByRole('link', { name: 'Clients' }).click()
      const row = page.getByRole('row', { name: /studio-e2e-sub/ })
      await row.waitFor()
      expect(await row.textContent()).toContain('Dog/rex')
      const gone = new Promise<void>((resolve) => clients[0]!.once('close', () => resolve()))
      page.once('dialog', (d) => void d.accept())
      await row.getByRole('button', { name: 'Disconnect' }).click()
      await gone
      await page.getByText('Disconnected studio-e2e-sub.').waitFor()
    })

    it('adds a user, who then signs in and sees only what its role allows', async () => {
      await page.getByRole('navigation').getByRole('link', { name: 'Users' }).click()
      await page.getByLabel('User name').fill('viewer')
      await page.getByLabel('Password', { exact: true }).fill('viewer-pw')
      await page.getByLabel('Role').selectOption('user')
      await page.getByRole('button', { name: 'Add user' }).click()
      await page.getByRole('cell', { name: 'viewer', exact: true }).waitFor()

      const second = await browser!.newPage({ viewport: { width: 420, height: 800 } })
      try {
        await second.goto(`${http}/studio/`)
        await second.getByLabel('User name').fill('viewer')
        await second.getByLabel('Password').fill('viewer-pw')
        await second.getByRole('button', { name: 'Sign in' }).click()
        await second.getByRole('heading', { name: 'Tables' }).waitFor()
        const nav = second.getByRole('navigation')
        expect(await nav.getByRole('link', { name: 'Clients' }).count()).toBe(0)
        expect(await nav.getByRole('link', { name: 'Users' }).count()).toBe(0)
        // a narrow window: nothing wider than the viewport
        const overflow = await second.evaluate(
          () => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).innerWidth,
        )
        expect(overflow).toBeLessThanOrEqual(0)
      } finally {
        await second.close()
      }
    })

    it("changes a user's password: the old one no longer signs in, the new one does", async () => {
      await page.getByRole('navigation').getByRole('link', { name: 'Users' }).click()
      const row = page.getByRole('row', { name: /viewer/ })
      await row.getByRole('button', { name: 'Change password' }).click()
      await page.getByLabel('New password for viewer').fill('viewer-pw-2')
      await row.getByRole('button', { name: 'Set', exact: true }).click()
      await page.getByText('Changed the password of viewer.').waitFor()

      const second = await browser!.newPage({ viewport: { width: 800, height: 800 } })
      try {
        await second.goto(`${http}/studio/`)
        await second.getByLabel('User name').fill('viewer')
        // the old password signed in moments ago (its check is cached): it is refused all the same
        await second.getByLabel('Password').fill('viewer-pw')
        await second.getByRole('button', { name: 'Sign in' }).click()
        const refused = second.getByRole('alert')
        await refused.waitFor()
        expect(await refused.textContent()).toMatch(/password/i)
        expect(await second.getByRole('heading', { name: 'Tables' }).count()).toBe(0)
        await second.getByLabel('Password').fill('viewer-pw-2')
        await second.getByRole('button', { name: 'Sign in' }).click()
        await second.getByRole('heading', { name: 'Tables' }).waitFor()
      } finally {
        await second.close()
      }
      const old = await fetch(`${http}/Dog/`, { headers: { authorization: basic('viewer', 'viewer-pw') } })
      expect(old.status).toBe(401)
    })

    it('draws live metrics charts', async () => {
      await page.getByRole('navigation').getByRole('link', { name: 'Metrics' }).click()
      await page.getByText('MQTT connections', { exact: true }).first().waitFor()
      // two reads make the first point of each chart
      // functions, not strings (the Studio's Content-Security-Policy forbids eval), through globalThis
      // since this file is type-checked without the DOM library
      await page.waitForFunction(
        () => (globalThis as any).document.querySelectorAll('.chart canvas').length === 3,
      )
      await page.waitForFunction(() => {
        const label = (globalThis as any).document
          .querySelector('.chart [role="img"]')
          ?.getAttribute('aria-label')
        return typeof label === 'string' && !label.includes('no data')
      })
      if (SCREENSHOT) {
        await page.goto(`${http}/studio/#/tables/Dog/rex`)
        await page.getByRole('heading', { name: 'Dog/rex' }).waitFor()
        await page.screenshot({ path: SCREENSHOT })
      }
    })
  })
})
