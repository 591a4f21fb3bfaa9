import { createRequire } from 'node:module'
import type * as GraphQL from 'graphql'
import type {
  ConstDirectiveNode,
  ConstValueNode,
  FieldDefinitionNode,
  Location,
  ObjectTypeDefinitionNode,
  TypeNode,
} from 'graphql'
import { SchemaError } from './errors.js'

type GraphQLLanguage = Pick<typeof GraphQL, 'GraphQLError' | 'getLocation' | 'Kind' | 'parse' | 'Source'>
let graphqlLanguage: GraphQLLanguage | undefined

/**
 * graphql's language module (parser, locations, errors), loaded with the first schema: a runtime without
 * schema.graphql (a plain MQTT broker) never loads graphql, which would add ~6 MB to its idle memory.
 */
function graphql(): GraphQLLanguage {
  if (graphqlLanguage === undefined) {
    const require = createRequire(import.meta.url)
    const language = require('graphql/language/index.js') as typeof GraphQL
    const { GraphQLError } = require('graphql/error/index.js') as typeof GraphQL
    const { getLocation, Kind, parse, Source } = language
    graphqlLanguage = { GraphQLError, getLocation, Kind, parse, Source }
  }
  return graphqlLanguage
}

export type ScalarName = 'ID' | 'String' | 'Int' | 'Float' | 'Long' | 'Boolean' | 'Date' | 'Bytes' | 'Any'

const SCALARS: ReadonlySet<string> = new Set<ScalarName>([
  'ID',
  'String',
  'Int',
  'Float',
  'Long',
  'Boolean',
  'Date',
  'Bytes',
  'Any',
])

/** A resolved attribute type. `required` is the GraphQL `!`. */
export type TypeRef =
  | { kind: 'scalar'; name: ScalarName; required: boolean }
  | { kind: 'list'; of: TypeRef; required: boolean }
  | { kind: 'object'; name: string; required: boolean }
  | { kind: 'enum'; name: string; values: ReadonlySet<string>; required: boolean }

export interface AttributeDefinition {
  name: string
  type: TypeRef
  indexed: boolean
  primaryKey: boolean
  /**
   * `@relationship(from: "brandId")`: the record(s) of table `table` whose primary key is this
   * record's `from` attribute (an id or a list of ids). `@relationship(to: "brandId")`: the records of
   * `table` whose `to` attribute holds this record's primary key. Computed on read, never stored.
   */
  relationship?: { table: string; from?: string; to?: string }
}

export interface TypeDefinition {
  name: string
  attributes: AttributeDefinition[]
  /** `@sealed`: attributes that are not declared are rejected. Otherwise extra attributes are kept. */
  sealed: boolean
  file: string
  line: number
  column: number
}

export interface TableDefinition extends TypeDefinition {
  /** `@table(table:)`, default the type name. */
  table: string
  database: string | undefined
  /** Name of the storage table: `database.table` or `table`. */
  storageName: string
  /** Seconds after the last write when a record expires (`@table(expiration:)`). */
  expiration: number | undefined
  /**
   * `@table(scan: false)`: a list query that no `@indexed` attribute (or the primary key) can serve
   * is refused instead of reading the whole table. Lists without conditions are still served.
   */
  scan: boolean
  audit: boolean
  /** The endpoint path (`@export` = type name, `@export(name:)` = name), or undefined when not exported. */
  exportPath: string | undefined
  primaryKey: AttributeDefinition | undefined
}

export interface SchemaDefinition {
  types: Map<string, TypeDefinition>
  enums: Map<string, ReadonlySet<string>>
  tables: TableDefinition[]
}

const TABLE_ARGS = new Set(['database', 'table', 'expiration', 'audit', 'scan'])
const TYPE_DIRECTIVES = new Set(['table', 'export', 'sealed'])
const FIELD_DIRECTIVES = new Set(['primaryKey', 'id', 'indexed', 'relationship'])

/**
 * Parses a schema.graphql source into table and type definitions. Throws SchemaError naming the file,
 * line and column of the first problem.
 *
 * @example
 * const schema = parseSchema('type Dog @table @export { id: ID @primaryKey  name: String! }', 'schema.graphql')
 * schema.tables[0].exportPath // 'Dog'
 */
export function parseSchema(body: string, file = 'schema.graphql'): SchemaDefinition {
  const { GraphQLError, getLocation, Kind, parse, Source } = graphql()
  const source = new Source(body, file)
  const fail = (loc: Location | undefined, message: string): never => {
    const { line, column } = loc ? getLocation(source, loc.start) : { line: 1, column: 1 }
    throw new SchemaError(file, line, column, message)
  }
  let document: ReturnType<typeof parse>
  try {
    document = parse(source)
  } catch (error) {
    if (error instanceof GraphQLError) {
      const location = error.locations?.[0] ?? { line: 1, column: 1 }
      throw new SchemaError(
        file,
        location.line,
        location.column,
        error.message.replace(/^Syntax Error: /, ''),
        {
          cause: error,
        },
      )
    }
    throw error
  }

  const objects = new Map<string, ObjectTypeDefinitionNode>()
  const enums = new Map<string, ReadonlySet<string>>()
  const customScalars = new Set<string>()
  for (const definition of document.definitions) {
    switch (definition.kind) {
      case Kind.OBJECT_TYPE_DEFINITION:
        if (objects.has(definition.name.value) || enums.has(definition.name.value)) {
          fail(definition.name.loc, `type ${definition.name.value} is defined twice`)
        }
        objects.set(definition.name.value, definition)
        break
      case Kind.ENUM_TYPE_DEFINITION:
        enums.set(definition.name.value, new Set((definition.values ?? []).map((v) => v.name.value)))
        break
      case Kind.SCALAR_TYPE_DEFINITION:
        customScalars.add(definition.name.value)
        break
      case Kind.DIRECTIVE_DEFINITION:
      case Kind.SCHEMA_DEFINITION:
        break
      default:
        fail(definition.loc, `unsupported definition ${definition.kind}; use object types, enums and scalars`)
    }
  }

  const resolveType = (node: TypeNode, required = false): TypeRef => {
    if (node.kind === Kind.NON_NULL_TYPE) return resolveType(node.type, true)
    if (node.kind === Kind.LIST_TYPE) return { kind: 'list', of: resolveType(node.type), required }
    const name = node.name.value
    if (SCALARS.has(name)) return { kind: 'scalar', name: name as ScalarName, required }
    if (customScalars.has(name)) return { kind: 'scalar', name: 'Any', required }
    const values = enums.get(name)
    if (values) return { kind: 'enum', name, values, required }
    if (objects.has(name)) return { kind: 'object', name, required }
    return fail(node.loc, `unknown type ${name} (scalars are ${[...SCALARS].join(', ')})`)
  }

  const types = new Map<string, TypeDefinition>()
  const tables: TableDefinition[] = []
  const exportPaths = new Map<string, string>()
  const storageNames = new Set<string>()

  for (const node of objects.values()) {
    const name = node.name.value
    const directives = node.directives ?? []
    for (const directive of directives) {
      if (!TYPE_DIRECTIVES.has(directive.name.value)) {
        fail(
          directive.loc,
          `unknown directive @${directive.name.value} on type ${name} (known: @table, @export, @sealed)`,
        )
      }
    }
    const tableDirective = directives.find((d) => d.name.value === 'table')
    const exportDirective = directives.find((d) => d.name.value === 'export')
    const attributes = (node.fields ?? []).map((field) => attribute(field, resolveType, fail))
    const primaryKeys = attributes.filter((a) => a.primaryKey)
    if (primaryKeys.length > 1) {
      const second = (node.fields ?? []).find((f) => f.name.value === primaryKeys[1]?.name)
      fail(second?.loc, `type ${name} declares more than one @primaryKey`)
    }
    const { line, column } = getLocation(source, node.loc?.start ?? 0)
    const base: TypeDefinition = {
      name,
      attributes,
      sealed: directives.some((d) => d.name.value === 'sealed'),
      file,
      line,
      column,
    }
    types.set(name, base)
    if (!tableDirective) {
      if (exportDirective)
        fail(
          exportDirective.loc,
          `@export on ${name} needs @table (custom resources export from resources.js)`,
        )
      if (primaryKeys.length > 0) fail(node.loc, `@primaryKey on ${name}, which is not a @table`)
      continue
    }
    const args = directiveArgs(tableDirective, TABLE_ARGS, fail)
    const table = stringArg(args, 'table', fail) ?? name
    const database = stringArg(args, 'database', fail)
    const expiration = numberArg(args, 'expiration', fail)
    const audit = booleanArg(args, 'audit', fail) ?? true
    const scan = booleanArg(args, 'scan', fail) ?? true
    const storageName = database ? `${database}.${table}` : table
    if (storageName.startsWith('__')) fail(tableDirective.loc, `table names starting with __ are reserved`)
    if (storageNames.has(storageName)) fail(tableDirective.loc, `table ${storageName} is declared twice`)
    storageNames.add(storageName)
    let exportPath: string | undefined
    if (exportDirective) {
      exportPath = stringArg(directiveArgs(exportDirective, new Set(['name']), fail), 'name', fail) ?? name
      exportPath = exportPath.replace(/^\/+|\/+$/g, '')
      if (!exportPath || /[#+\0]/.test(exportPath) || exportPath.startsWith('$')) {
        fail(exportDirective.loc, `invalid export name "${exportPath}"`)
      }
      const other = exportPaths.get(exportPath)
      if (other) fail(exportDirective.loc, `export path ${exportPath} is used by ${other} too`)
      exportPaths.set(exportPath, name)
    }
    const primaryKey = primaryKeys[0]
    if (primaryKey) {
      const t = primaryKey.type
      if (t.kind !== 'scalar' || !['ID', 'String', 'Int', 'Long', 'Float'].includes(t.name)) {
        const field = (node.fields ?? []).find((f) => f.name.value === primaryKey.name)
        fail(field?.type.loc, `primary key ${name}.${primaryKey.name} must be ID, String, Int, Long or Float`)
      }
    }
    tables.push({ ...base, table, database, storageName, expiration, audit, scan, exportPath, primaryKey })
  }
  checkRelationships(objects, types, tables, fail)
  return { types, enums, tables }
}

type Fail = (loc: Location | undefined, message: string) => never

function attribute(
  field: FieldDefinitionNode,
  resolveType: (node: TypeNode) => TypeRef,
  fail: Fail,
): AttributeDefinition {
  let primaryKey = false
  let indexed = false
  let relationship: { from?: string; to?: string } | undefined
  for (const directive of field.directives ?? []) {
    const name = directive.name.value
    if (!FIELD_DIRECTIVES.has(name)) {
      fail(
        directive.loc,
        `unknown directive @${name} on attribute ${field.name.value} (known: @primaryKey, @id, @indexed, @relationship)`,
      )
    }
    if (name === 'primaryKey' || name === 'id') primaryKey = true
    if (name === 'indexed') indexed = true
    if (name === 'relationship') {
      const args = directiveArgs(directive, RELATIONSHIP_ARGS, fail)
      const from = stringArg(args, 'from', fail)
      const to = stringArg(args, 'to', fail)
      if ((from === undefined) === (to === undefined)) {
        fail(directive.loc, `@relationship on ${field.name.value} needs either from: or to: (one of them)`)
      }
      relationship = from === undefined ? { to: to! } : { from }
    }
  }
  if (field.arguments && field.arguments.length > 0) {
    fail(field.arguments[0]?.loc, `attribute ${field.name.value} cannot take arguments`)
  }
  const type = resolveType(field.type)
  const attribute: AttributeDefinition = { name: field.name.value, type, indexed, primaryKey }
  if (relationship) {
    if (primaryKey || indexed)
      fail(field.loc, `relationship ${field.name.value} cannot be @primaryKey or @indexed`)
    const target = type.kind === 'list' ? type.of : type
    if (target.kind !== 'object')
      fail(field.type.loc, `relationship ${field.name.value} must name a table type`)
    attribute.relationship = { table: target.name, ...relationship }
  }
  return attribute
}

const RELATIONSHIP_ARGS = new Set(['from', 'to'])

/**
 * A relationship names a table type, and attributes that exist: `from` on its own type, `to` on the
 * related one. (`from` and `to` hold ids; their types are not compared.)
 */
function checkRelationships(
  objects: Map<string, ObjectTypeDefinitionNode>,
  types: Map<string, TypeDefinition>,
  tables: TableDefinition[],
  fail: Fail,
): void {
  const tableNames = new Set(tables.map((t) => t.name))
  for (const type of types.values()) {
    for (const attribute of type.attributes) {
      const relationship = attribute.relationship
      if (!relationship) continue
      const loc = objects.get(type.name)?.fields?.find((f) => f.name.value === attribute.name)?.loc
      if (!tableNames.has(type.name))
        fail(loc, `relationship ${type.name}.${attribute.name} is on a type that is not a @table`)
      if (!tableNames.has(relationship.table)) {
        fail(
          loc,
          `relationship ${type.name}.${attribute.name} names ${relationship.table}, which is not a @table`,
        )
      }
      if (relationship.from !== undefined && !type.attributes.some((a) => a.name === relationship.from)) {
        fail(
          loc,
          `relationship ${type.name}.${attribute.name}: ${type.name} has no attribute ${relationship.from}`,
        )
      }
      const related = types.get(relationship.table)!
      if (relationship.to !== undefined && !related.attributes.some((a) => a.name === relationship.to)) {
        fail(
          loc,
          `relationship ${type.name}.${attribute.name}: ${relationship.table} has no attribute ${relationship.to}`,
        )
      }
    }
  }
}

function directiveArgs(directive: ConstDirectiveNode, allowed: ReadonlySet<string>, fail: Fail) {
  const args = new Map<string, ConstValueNode>()
  for (const arg of directive.arguments ?? []) {
    if (!allowed.has(arg.name.value)) {
      fail(
        arg.loc,
        `unknown argument ${arg.name.value} for @${directive.name.value} (known: ${[...allowed].join(', ')})`,
      )
    }
    args.set(arg.name.value, arg.value)
  }
  return args
}

function stringArg(args: Map<string, ConstValueNode>, name: string, fail: Fail): string | undefined {
  const { Kind } = graphql()
  const value = args.get(name)
  if (!value) return undefined
  if (value.kind !== Kind.STRING) return fail(value.loc, `${name} must be a string`)
  return value.value
}

function numberArg(args: Map<string, ConstValueNode>, name: string, fail: Fail): number | undefined {
  const { Kind } = graphql()
  const value = args.get(name)
  if (!value) return undefined
  if (value.kind !== Kind.INT && value.kind !== Kind.FLOAT) return fail(value.loc, `${name} must be a number`)
  const n = Number(value.value)
  if (!(n > 0)) fail(value.loc, `${name} must be positive`)
  return n
}

function booleanArg(args: Map<string, ConstValueNode>, name: string, fail: Fail): boolean | undefined {
  const { Kind } = graphql()
  const value = args.get(name)
  if (!value) return undefined
  if (value.kind !== Kind.BOOLEAN) return fail(value.loc, `${name} must be true or false`)
  return value.value
}
