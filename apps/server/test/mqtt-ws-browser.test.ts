import { existsSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createBroker } from '@proj/mqtt'
import mqtt from 'mqtt'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openTestRuntime, startServer, type TestRuntime, type TestServer } from './helpers/in-process.js'

const CHROMIUM = '/usr/bin/chromium'
const haveChromium = existsSync(CHROMIUM)
if (!haveChromium) {
  console.warn(
    `[server] skipping the MQTT-over-WebSocket browser test: ${CHROMIUM} is missing (run: bash scripts/ensure-system-deps.sh)`,
  )
}

// The page logs in (POST /login), then follows Dog/e2e with an EventSource and with a WebSocket, both
// authenticated with ?access_token= (browsers cannot set headers on either), and records what arrives.
const PAGE = `<!doctype html><html><body><script type="module">
const received = { sse: [], ws: [], errors: [] }
window.received = received
const login = await fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ username: 'ann', password: 'secret' }) })
const { token } = await login.json()
const q = 'access_token=' + encodeURIComponent(token)
const es = new EventSource('/Dog/e2e?' + q)
for (const type of ['put', 'patch', 'delete', 'message'])
  es.addEventListener(type, (e) => received.sse.push({ event: e.type, id: e.lastEventId, data: JSON.parse(e.data) }))
es.onerror = () => received.errors.push('sse')
const ws = new WebSocket('ws://' + location.host + '/Dog/e2e?' + q)
ws.onmessage = (e) => received.ws.push(JSON.parse(e.data))
ws.onerror = () => received.errors.push('ws')
await Promise.all([
  new Promise((resolve) => { es.onopen = resolve }),
  new Promise((resolve) => { ws.onopen = resolve }),
])
window.ready = true
</script></body></html>`

describe.skipIf(!haveChromium)('in headless Chromium', () => {
  let rt: TestRuntime
  let srv: TestServer
  let broker: ReturnType<typeof createBroker>
  let browser: Browser

  beforeAll(async () => {
    rt = await openTestRuntime()
    broker = createBroker({ runtime: rt.runtime })
    srv = await startServer({
      runtime: rt.runtime,
      subprotocols: { mqtt: (stream) => broker.handle(stream, { transport: 'ws' }) },
      extraRoutes: {
        'GET /': (_req: IncomingMessage, res: ServerResponse) => {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
          res.end(PAGE)
        },
      },
    })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await srv?.close()
    await broker?.close()
    await rt?.close()
  })

  it('a page sees an MQTT publish arrive over EventSource and over WebSocket', async () => {
    const page = await browser.newPage()
    const pageErrors: string[] = []
    page.on('pageerror', (err) => pageErrors.push(err.message))
    await page.goto(`${srv.url}/`)
    await page.waitForFunction(() => (globalThis as any).ready === true, undefined, { timeout: 15_000 })

    const client = await mqtt.connectAsync(`${srv.wsUrl}/mqtt`, {
      username: 'ann',
      password: 'secret',
      reconnectPeriod: 0,
    })
    try {
      await client.publishAsync('Dog/e2e', JSON.stringify({ id: 'e2e', name: 'From MQTT' }), {
        qos: 1,
        retain: true,
      })
    } finally {
      await client.endAsync()
    }

    await page.waitForFunction(
      () => {
        const r = (globalThis as any).received
        const hit = (e: any) => e?.value?.name === 'From MQTT'
        return r.sse.some((e: any) => hit(e.data)) && r.ws.some(hit)
      },
      undefined,
      { timeout: 15_000 },
    )
    const received = await page.evaluate(() => (globalThis as any).received)
    expect(pageErrors).toEqual([])
    expect(received.errors).toEqual([])
    const sse = received.sse.find((e: any) => e.data.value?.name === 'From MQTT')
    expect(sse).toMatchObject({
      event: 'put',
      data: { type: 'put', id: 'e2e', value: { id: 'e2e', name: 'From MQTT' } },
    })
    expect(Number(sse.id)).toBeGreaterThan(0)
    expect(received.ws.find((e: any) => e.value?.name === 'From MQTT')).toMatchObject({
      type: 'put',
      id: 'e2e',
    })
    await page.close()
  }, 60_000)
})
