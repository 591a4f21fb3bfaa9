import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import { openRuntime, parseSchema, SchemaError } from '../src/index.js'

function schemaError(source: string): SchemaError {
  try {
    parseSchema(source, 'app/schema.graphql')
  } catch (error) {
    expect(error).toBeInstanceOf(SchemaError)
    return error as SchemaError
  }
  throw new Error('expected a SchemaError')
}

describe('parseSchema', () => {
  it('reads tables, export paths, primary keys, nested types, lists and required attributes', () => {
    const schema = parseSchema(
      `type Owner { name: String! }
       type Dog @table(database: "pets", expiration: 60) @export(name: "dog") {
         key: Int @primaryKey
         name: String! @indexed
         owners: [Owner!]
       }
       type Log @table`,
      'schema.graphql',
    )
    const [dog, log] = schema.tables
    expect(dog).toMatchObject({ name: 'Dog', storageName: 'pets.Dog', exportPath: 'dog', expiration: 60 })
    expect(dog?.primaryKey?.name).toBe('key')
    expect(dog?.attributes.find((a) => a.name === 'name')).toMatchObject({
      indexed: true,
      type: { kind: 'scalar', name: 'String', required: true },
    })
    expect(dog?.attributes.find((a) => a.name === 'owners')?.type).toEqual({
      kind: 'list',
      required: false,
      of: { kind: 'object', name: 'Owner', required: true },
    })
    expect(log).toMatchObject({ name: 'Log', exportPath: undefined, attributes: [] })
  })

  it.each([
    ['a syntax error', 'type Dog @table {\n  name: String!\n  age Int\n}', 3, 7, /Expected ":"/],
    ['an unknown type', 'type Dog @table {\n  name: Strng\n}', 2, 9, /unknown type Strng/],
    [
      'an unknown directive',
      'type Dog @table @cached {\n  name: String\n}',
      1,
      17,
      /unknown directive @cached/,
    ],
    [
      'two primary keys',
      'type Dog @table {\n  a: ID @primaryKey\n  b: ID @id\n}',
      3,
      3,
      /more than one @primaryKey/,
    ],
    ['an unknown @table argument', 'type Dog @table(tabel: "x") { a: ID }', 1, 17, /unknown argument tabel/],
    ['@export without @table', 'type Dog @export { a: ID }', 1, 10, /needs @table/],
    [
      'a list primary key',
      'type Dog @table {\n  a: [ID] @primaryKey\n}',
      2,
      6,
      /must be ID, String, Int, Long or Float/,
    ],
  ])('names file, line and column for %s', (_name, source, line, column, message) => {
    const error = schemaError(source)
    expect(error.code).toBe('SCHEMA_INVALID')
    expect({ file: error.file, line: error.line, column: error.column }).toEqual({
      file: 'app/schema.graphql',
      line,
      column,
    })
    expect(error.message).toMatch(new RegExp(`^app/schema\\.graphql:${line}:${column}: `))
    expect(error.message).toMatch(message)
  })

  it('fails openRuntime with the schema file path of an application folder', async () => {
    await using dir = await tempDir()
    const app = join(dir.path, 'broken')
    await mkdir(app)
    await writeFile(join(app, 'schema.graphql'), 'type A @table {\n  x: Nope\n}\n')
    await expect(openRuntime({ path: join(dir.path, 'db'), applications: [app] })).rejects.toThrow(
      `${join(app, 'schema.graphql')}:2:6: unknown type Nope`,
    )
  })
})
