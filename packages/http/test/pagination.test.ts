import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openTestRuntime, type TestRuntime } from './support/runtime.js'
import { startServer, type TestServer } from './support/server.js'

let rt: TestRuntime
let srv: TestServer

beforeEach(async () => {
  rt = await openTestRuntime()
  srv = await startServer({ runtime: rt.runtime, cors: { origins: '*' } })
  const ctx = { user: { username: 'ann', role: 'admin', superUser: true } }
  for (let i = 0; i < 23; i++) {
    const id = `d${String(i).padStart(2, '0')}`
    await rt.runtime.put(`Dog/${id}`, { id, name: `N${i}`, breed: i % 2 ? 'lab' : 'pug', age: i % 5 }, ctx)
  }
})

afterEach(async () => {
  await srv.close()
  await rt.close()
})

const auth = { authorization: `Basic ${Buffer.from('ann:secret').toString('base64')}` }

/** The target of `Link: <…>; rel="next"`, resolved against the request URL, or undefined. */
function nextLink(res: Response): string | undefined {
  const link = res.headers.get('link')
  if (link === null) return undefined
  const match = /^<([^>]*)>;\s*rel="next"$/.exec(link)
  if (!match) throw new Error(`unexpected Link header ${link}`)
  return new URL(match[1]!, res.url).href
}

/** GETs `path`, then every `rel="next"` link; returns each page's ids and the links followed. */
async function follow(path: string, headers: Record<string, string> = auth) {
  const pages: string[][] = []
  const links: string[] = []
  let url: string | undefined = `${srv.url}${path}`
  while (url !== undefined) {
    if (pages.length > 50) throw new Error('pagination does not end')
    const res: Response = await fetch(url, { headers })
    expect(res.status).toBe(200)
    pages.push(((await res.json()) as { id: string }[]).map((d) => d.id))
    url = nextLink(res)
    if (url !== undefined) links.push(url)
  }
  return { pages, links }
}

describe('cursor pagination', () => {
  it('follows Link rel="next" through the whole table, limit records a page', async () => {
    const all = ((await (await fetch(`${srv.url}/Dog/`, { headers: auth })).json()) as { id: string }[]).map(
      (d) => d.id,
    )
    expect(all).toHaveLength(23)
    const { pages, links } = await follow('/Dog/?limit=10')
    expect(pages.map((p) => p.length)).toEqual([10, 10, 3])
    expect(pages.flat()).toEqual(all)
    for (const link of links) {
      const url = new URL(link)
      expect(url.pathname).toBe('/Dog/')
      expect(url.searchParams.get('limit')).toBe('10')
      expect(url.searchParams.get('after')).toMatch(/^[\w-]+$/)
    }
  })

  it('keeps conditions, sort and select in the links, and drops offset and access_token', async () => {
    const labs = await follow('/Dog/?breed=lab&sort=-age&select=id,name&limit=4')
    const expected = (
      (await (await fetch(`${srv.url}/Dog/?breed=lab&sort=-age`, { headers: auth })).json()) as {
        id: string
      }[]
    ).map((d) => d.id)
    expect(labs.pages.flat()).toEqual(expected)
    expect(labs.pages.every((p) => p.length <= 4)).toBe(true)
    const first = new URL(labs.links[0]!)
    expect([...first.searchParams.keys()].sort()).toEqual(['after', 'breed', 'limit', 'select', 'sort'])

    const token = (await (
      await fetch(`${srv.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'ann', password: 'secret' }),
      })
    ).json()) as { token: string }
    const res = await fetch(`${srv.url}/Dog/?limit=5&offset=2&access_token=${token.token}`)
    expect(((await res.json()) as { id: string }[]).map((d) => d.id)).toEqual([
      'd02',
      'd03',
      'd04',
      'd05',
      'd06',
    ])
    const next = new URL(nextLink(res)!)
    expect(next.searchParams.has('offset')).toBe(false)
    expect(next.searchParams.has('access_token')).toBe(false)
    const second = await fetch(next, { headers: auth })
    expect(((await second.json()) as { id: string }[]).map((d) => d.id)).toEqual([
      'd07',
      'd08',
      'd09',
      'd10',
      'd11',
    ])
  })

  it('sends no Link on the last page or without a limit, exposes Link to CORS, and works for CSV', async () => {
    expect((await fetch(`${srv.url}/Dog/`, { headers: auth })).headers.get('link')).toBeNull()
    expect((await fetch(`${srv.url}/Dog/?limit=23`, { headers: auth })).headers.get('link')).toBeNull()
    const csv = await fetch(`${srv.url}/Dog/?limit=2&select=id`, {
      headers: { ...auth, accept: 'text/csv', origin: 'http://app.example' },
    })
    expect(await csv.text()).toBe('id\r\nd00\r\nd01\r\n')
    expect(csv.headers.get('link')).toMatch(/rel="next"/)
    expect(csv.headers.get('access-control-expose-headers')).toMatch(/\bLink\b/)
  })

  it('answers 400 to a cursor it did not issue', async () => {
    const res = await fetch(`${srv.url}/Dog/?limit=2&after=not-a-cursor`, { headers: auth })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: 'INVALID' })
  })
})
