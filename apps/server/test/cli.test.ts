import { PassThrough } from 'node:stream'
import { tempDir } from '@proj/test-utils'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { runCli } from '../src/cli-program.js'

let root: Awaited<ReturnType<typeof tempDir>>
beforeEach(async () => {
  root = await tempDir('proj-server-cli-')
})
afterEach(async () => {
  await root.remove()
})

async function cli(args: string[], env: Record<string, string> = {}) {
  let stdout = ''
  let stderr = ''
  const out = new PassThrough().on('data', (d) => (stdout += d))
  const err = new PassThrough().on('data', (d) => (stderr += d))
  const stdin = new PassThrough()
  stdin.end()
  const code = await runCli(args, { stdout: out, stderr: err, stdin, env })
  return { code, stdout, stderr }
}

describe('proj-server (in-process)', () => {
  it('maps key flags, aliases, bare boolean flags and --set onto config keys', async () => {
    const { code, stdout, stderr } = await cli([
      'config',
      '--json',
      '--root',
      root.path,
      '--mqtt-port',
      '0',
      '--http-max-body-size',
      '2mb',
      '--anonymous',
      '--mqtt-web-socket',
      'false',
      '--set',
      'anonymous.role=guest',
      '--set',
      'roles={"guest":{"tables":{"Dog":{"read":true}}}}',
    ])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    const config = JSON.parse(stdout)
    expect(config.mqtt.network.port).toBe(0)
    expect(config.http.maxBodySize).toBe(2 * 1024 * 1024)
    expect(config.anonymous).toEqual({ enabled: true, role: 'guest' })
    expect(config.mqtt.webSocket).toBe(false)
    expect(config.roles.guest.tables.Dog.read).toBe(true)
  })

  it('prints YAML by default and lets flags win over env', async () => {
    const { stdout } = await cli(['config', '--root', root.path, '--log-level', 'debug'], {
      PROJ_LOGGING_LEVEL: 'error',
    })
    expect(stdout).toMatch(/^logging:\n {2}level: debug$/m)
  })

  it('config reports unknown PROJ_ variables on stderr, as start does, and keeps stdout parseable', async () => {
    const { code, stdout, stderr } = await cli(['config', '--json', '--root', root.path], {
      PROJ_MQTT_NETWRK_PORT: '1',
    })
    expect(code).toBe(0)
    expect(JSON.parse(stdout).mqtt.network.port).toBe(1883)
    expect(stderr).toBe(
      'proj-server: ignoring unknown environment variable PROJ_MQTT_NETWRK_PORT (did you mean PROJ_MQTT_NETWORK_PORT?)\n',
    )
  })

  it('exits 2 with every bad key, naming the flag or variable it came from', async () => {
    const { code, stderr } = await cli(
      ['config', '--root', root.path, '--mqtts-port', 'x', '--set', 'nope=1'],
      {
        PROJ_MQTT_MAXQUEUED: '-5',
      },
    )
    expect(code).toBe(2)
    expect(stderr).toContain(
      "mqtt.network.securePort: must be an integer from 0 to 65535 or null, got 'x' (from --mqtts-port)",
    )
    expect(stderr).toContain('nope: unknown key (from --set nope)')
    expect(stderr).toContain("mqtt.maxQueued: must be an integer >= 0, got '-5' (from PROJ_MQTT_MAXQUEUED)")
  })

  it('exits 2 on an unknown option or command, 0 on --help', async () => {
    expect((await cli(['start', '--bogus'])).code).toBe(2)
    expect((await cli(['frobnicate'])).code).toBe(2)
    const help = await cli(['start', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--mqtt-network-secure-port <value>')
  })

  it('refuses an empty password from stdin', async () => {
    const { code, stderr } = await cli(['user', 'add', 'someone', '--root', root.path])
    expect(code).toBe(2)
    expect(stderr).toContain('password: must not be empty')
  })
})
