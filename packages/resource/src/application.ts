import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ResourceError } from './errors.js'
import type { RoleDefinition } from './permissions.js'

/** `config.json` of an application folder (all optional). */
export interface ApplicationConfig {
  /** Roles this application defines (merged with the runtime's `roles`). */
  roles?: RoleDefinition[]
}

/** An application folder, read but not yet registered. */
export interface ApplicationSource {
  dir: string
  name: string
  schema: { source: string; file: string } | undefined
  /** Absolute path of resources.js / resources.mjs, when present. */
  resourcesFile: string | undefined
  config: ApplicationConfig
}

const RESOURCE_FILES = ['resources.js', 'resources.mjs']

/**
 * Reads an application folder: `schema.graphql`, optional `resources.js` (or `.mjs`) and optional
 * `config.json`. A `resources.ts` is rejected with a clear message: plain Node 20 cannot load
 * TypeScript at runtime, so compile it to resources.js first.
 */
export async function readApplication(dir: string): Promise<ApplicationSource> {
  const root = resolve(dir)
  if (!existsSync(root))
    throw new ResourceError('APPLICATION_INVALID', `application folder ${root} does not exist`)
  const schemaFile = join(root, 'schema.graphql')
  const schema = existsSync(schemaFile)
    ? { source: await readFile(schemaFile, 'utf8'), file: schemaFile }
    : undefined
  const resourcesFile = RESOURCE_FILES.map((f) => join(root, f)).find((f) => existsSync(f))
  if (!resourcesFile && existsSync(join(root, 'resources.ts'))) {
    throw new ResourceError(
      'APPLICATION_INVALID',
      `${join(root, 'resources.ts')}: Node cannot load TypeScript at runtime; compile it to resources.js`,
    )
  }
  let config: ApplicationConfig = {}
  const configFile = join(root, 'config.json')
  if (existsSync(configFile)) {
    try {
      config = JSON.parse(await readFile(configFile, 'utf8')) as ApplicationConfig
    } catch (cause) {
      throw new ResourceError('APPLICATION_INVALID', `${configFile}: ${(cause as Error).message}`, { cause })
    }
  }
  return { dir: root, name: basename(root), schema, resourcesFile, config }
}

/** Imports an application's resources module. */
export async function importResources(file: string): Promise<Record<string, unknown>> {
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>
  } catch (cause) {
    throw new ResourceError('APPLICATION_INVALID', `${file}: ${(cause as Error).message}`, { cause })
  }
}
