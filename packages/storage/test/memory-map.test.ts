import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { useStores } from './helpers.js'

/** The mappings of `file` in this process (Linux: /proc/self/maps). */
function mapsOf(file: string): string[] {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.endsWith(file))
}

describe.runIf(process.platform === 'linux')('memory map', () => {
  const open = useStores()

  it('maps the data file once while it grows (each map of a page counts again in RSS)', async () => {
    const { store, path } = await open()
    const t = store.table('Grow')
    const value = { text: 'x'.repeat(1000) }
    // About 4 MB: lmdb-js's default map (128 KiB, doubled by a new map each time it fills) would be
    // mapped six times over by now.
    for (let batch = 0; batch < 40; batch++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => t.put(`k${batch}-${i}`, value)))
    }
    expect(t.get('k39-99')).toEqual(value)
    expect(mapsOf(join(path, 'data.mdb'))).toHaveLength(1)
  })
})
