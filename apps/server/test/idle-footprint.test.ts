import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import { describe, expect, it } from 'vitest'
import { startServerProcess } from './helpers/server-process.js'

// What a server loads is memory it keeps: code an idle server never runs stays out of it.
describe('idle footprint', () => {
  it('loads no HTTP or TLS code without such a listener, no YAML parser without a config file, no mqtt-packet before a client needs it', async () => {
    await using dir = await tempDir('proj-server-footprint-')
    // a module hook in the server process that writes down every file it loads
    await writeFile(
      join(dir.path, 'hook.mjs'),
      "import { register } from 'node:module'\nregister('./loader.mjs', import.meta.url)\n",
    )
    await writeFile(
      join(dir.path, 'loader.mjs'),
      "import { appendFileSync } from 'node:fs'\nexport async function load(url, context, next) {\n  if (url.startsWith('file:') || url.startsWith('node:')) appendFileSync(process.env.LOADED_MODULES_LOG, url + '\\n')\n  return next(url, context)\n}\n",
    )
    // CommonJS modules required from CommonJS do not pass the hook: the require cache names them at exit
    await writeFile(
      join(dir.path, 'required.cjs'),
      "process.on('exit', () => require('node:fs').appendFileSync(process.env.LOADED_MODULES_LOG, Object.keys(require.cache).join('\\n') + '\\n'))\n",
    )
    const loaded = async (name: string, args: string[]) => {
      const log = join(dir.path, `${name}.log`)
      const server = await startServerProcess(join(dir.path, name), {
        args,
        env: { LOADED_MODULES_LOG: log },
        nodeArgs: ['--import', join(dir.path, 'hook.mjs'), '--require', join(dir.path, 'required.cjs')],
      })
      await server.stop()
      return (await readFile(log, 'utf8')).split('\n')
    }
    const httpCode = (url: string) => /\/packages\/http\/|\/node_modules\/ws\//.test(url)
    const yaml = (url: string) => url.includes('/node_modules/yaml/')
    // node:tls with node:http and node:https are 1.7 MB of RSS; mqtt-packet (bl, readable-stream) is
    // needed only for the packets not read and written by hand
    const httpOrTls = (url: string) => /^node:(https?|tls)$/.test(url)
    const mqttPacket = (path: string) => path.includes('/node_modules/mqtt-packet/')

    const mqttOnly = await loaded('mqtt-only', ['--http-port', 'null'])
    expect(mqttOnly.some((url) => url.includes('/packages/mqtt/'))).toBe(true)
    expect(mqttOnly.filter(httpCode)).toEqual([])
    expect(mqttOnly.filter(yaml)).toEqual([])
    expect(mqttOnly.filter(httpOrTls)).toEqual([])
    expect(mqttOnly.filter(mqttPacket)).toEqual([])

    // the same hook sees them when they are used
    await writeFile(join(dir.path, 'with-http.yaml'), 'logging:\n  level: warn\n')
    const withHttp = await loaded('with-http', ['--config', join(dir.path, 'with-http.yaml')])
    expect(withHttp.some(httpCode)).toBe(true)
    expect(withHttp.some(yaml)).toBe(true)
    expect(withHttp).toContain('node:http')
  }, 60_000)
})
