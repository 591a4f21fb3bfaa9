/**
 * What `start` says about the applications it loaded: each one's name, tables and code, and, when an
 * `applications/` folder replaced the built-in application, that the built-in `Dog` records are still on
 * disk (they are not deleted, just no longer served), so nobody thinks their data is gone.
 */
import { basename, sep } from 'node:path'
import type { ResourceRuntime } from '@proj/resource'
import type { Logger } from './logger.js'

/** The built-in application's table (apps/server/default-app/schema.graphql). */
const BUILT_IN_TABLE = 'Dog'

export function reportApplications(
  runtime: ResourceRuntime,
  loaded: { folders: readonly string[]; builtIn: boolean; applicationsPath: string; storagePath: string },
  logger: Logger,
): void {
  for (const folder of loaded.folders) {
    const tables = runtime.schema.tables
      .filter((t) => t.file.startsWith(folder + sep))
      .map((t) =>
        t.exportPath !== undefined && t.exportPath !== t.name ? `${t.name} (at /${t.exportPath})` : t.name,
      )
    const name = loaded.builtIn ? 'the built-in default application' : `application ${basename(folder)}`
    logger.info(
      { application: basename(folder), folder, tables },
      `loaded ${name}: ${tables.length > 0 ? `tables ${tables.join(', ')}` : 'no tables'}`,
    )
  }
  if (loaded.builtIn) return
  if (runtime.schema.tables.some((t) => t.storageName === BUILT_IN_TABLE)) return
  if (!runtime.storage.tableNames().includes(BUILT_IN_TABLE)) return
  const records = runtime.storage.count(BUILT_IN_TABLE)
  if (records === 0) return
  logger.warn(
    { table: BUILT_IN_TABLE, records, storage: loaded.storagePath, applications: loaded.applicationsPath },
    `the built-in ${BUILT_IN_TABLE} table is not served since ${loaded.applicationsPath} exists, but its ${records} record(s) are still on disk in ${loaded.storagePath}: declare \`type ${BUILT_IN_TABLE} @table @export\` in an application, or remove ${loaded.applicationsPath}, to serve them again`,
  )
}
