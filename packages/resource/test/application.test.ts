import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import { openRuntime, Resource } from '../src/index.js'
import { admin, bytes, runtimeFixture } from './helpers.js'

describe('applications', () => {
  it('registers the tables and resources of an application folder', async () => {
    await using f = await runtimeFixture()
    expect([...f.runtime.resources().keys()].sort()).toEqual(['Anything', 'Counter', 'Dog', 'api/breeds'])
    expect(Object.keys(f.runtime.tables).sort()).toEqual(['Anything', 'Breed', 'Dog'])
    expect(f.runtime.storage.tableNames()).toEqual(expect.arrayContaining(['Dog', 'breeds', 'Anything']))
  })

  it('explains that resources.ts must be compiled', async () => {
    await using dir = await tempDir()
    const app = join(dir.path, 'app')
    await mkdir(app)
    await writeFile(join(app, 'resources.ts'), 'export {}')
    await expect(openRuntime({ path: join(dir.path, 'db'), applications: [app] })).rejects.toMatchObject({
      code: 'APPLICATION_INVALID',
      message: expect.stringMatching(/compile it to resources\.js/),
    })
  })

  it('takes resource classes and inline schemas from options', async () => {
    await using dir = await tempDir()
    class Hello extends Resource {
      static path = 'greetings/hello'
      override async get(id: string | number | readonly (string | number)[]) {
        return { text: `hello ${String(id)}` }
      }
    }
    const runtime = await openRuntime({
      path: dir.path,
      noSync: true,
      schemas: [
        { source: 'type Note @table @export { id: ID @primaryKey  text: String }', file: 'inline.graphql' },
      ],
      resources: { Hello },
    })
    try {
      expect(await runtime.get('greetings/hello/you', admin)).toEqual({
        id: 'you',
        value: { text: 'hello you' },
        version: 0,
      })
      await runtime.put('Note/1', { text: 'x' }, admin)
      expect((await runtime.get('Note/1', admin))?.value).toEqual({ text: 'x', id: '1' })
    } finally {
      await runtime.close()
    }
  })

  it('rejects unclaimed topics when configured to', async () => {
    await using f = await runtimeFixture({ rejectUnclaimedTopics: true })
    await expect(
      f.runtime.publish('free/topic', { payload: bytes('1'), retain: false, qos: 0 }, admin),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
    })
    await expect(f.runtime.subscribe('free/#', () => {}, {}, admin)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    })
    await expect(f.runtime.subscribe('Dog/#', () => {}, {}, admin)).resolves.toBeDefined()
  })
})
