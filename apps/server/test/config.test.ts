import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '@proj/test-utils'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadConfig, parseSetArguments } from '../src/config.js'
import { CONFIG_KEYS, envName, flagName } from '../src/config-schema.js'
import { coerceValue } from '../src/config-values.js'
import { ConfigError } from '../src/errors.js'

let root: Awaited<ReturnType<typeof tempDir>>
beforeEach(async () => {
  root = await tempDir('proj-server-config-')
})
afterEach(async () => {
  await root.remove()
})

async function issuesOf(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ConfigError)
  return (error as ConfigError).issues
}

describe('config schema', () => {
  it('names env variables by upper-casing each segment without splitting camelCase', () => {
    expect(envName('mqtt.network.port')).toBe('PROJ_MQTT_NETWORK_PORT')
    expect(envName('mqtt.network.securePort')).toBe('PROJ_MQTT_NETWORK_SECUREPORT')
    expect(envName('mqtt.mTLS.user')).toBe('PROJ_MQTT_MTLS_USER')
  })

  it('names flags in kebab-case, splitting camelCase', () => {
    expect(flagName('mqtt.network.securePort')).toBe('mqtt-network-secure-port')
    expect(flagName('mqtt.mTLS.required')).toBe('mqtt-mtls-required')
    expect(flagName('mqtt.webSocket')).toBe('mqtt-web-socket')
    expect(flagName('http.maxBodySize')).toBe('http-max-body-size')
  })

  it('gives every key a distinct env variable and flag', () => {
    const envs = CONFIG_KEYS.map((s) => envName(s.key))
    const flags = CONFIG_KEYS.flatMap((s) => [flagName(s.key), ...(s.aliases ?? [])])
    expect(new Set(envs).size).toBe(envs.length)
    expect(new Set(flags).size).toBe(flags.length)
  })

  it('is documented in the README: every key with its env variable and flags', async () => {
    // whitespace-insensitive: a Markdown formatter may pad the table
    const readme = (await readFile(new URL('../README.md', import.meta.url), 'utf8')).replace(/ +/g, ' ')
    for (const spec of CONFIG_KEYS) {
      const flags = [flagName(spec.key), ...(spec.aliases ?? [])].map((f) => `\`--${f}\``).join(', ')
      expect(readme, spec.key).toContain(`| \`${spec.key}\` | \`${envName(spec.key)}\` | ${flags} |`)
    }
  })

  it('has defaults that pass its own validation', () => {
    for (const spec of CONFIG_KEYS) {
      expect(coerceValue(spec, spec.default, false), spec.key).toMatchObject({ ok: true })
    }
  })
})

describe('loadConfig', () => {
  it('uses the defaults when there is no config file', async () => {
    const { config, file, notes } = await loadConfig({ root: root.path, env: {} })
    expect(file).toBeNull()
    expect(config.http.port).toBe(9926)
    expect(config.mqtt.network.port).toBe(1883)
    expect(config.mqtt.network.securePort).toBeNull() // no TLS files: MQTTS is not started
    expect(notes.join('\n')).toMatch(/mqtt.network.securePort not started/)
    expect(config.storage.path).toBe(join(root.path, 'data'))
    expect(config.anonymous.enabled).toBe(false)
    expect(config.mqtt.mTLS).toEqual({ enabled: false, user: 'CN', required: false })
  })

  it('reads config.yaml under the root, with units and the mTLS shorthand', async () => {
    await writeFile(join(root.path, 'cert.pem'), 'x')
    await writeFile(join(root.path, 'key.pem'), 'x')
    await writeFile(join(root.path, 'ca.pem'), 'x')
    await writeFile(
      join(root.path, 'config.yaml'),
      [
        'http:',
        '  port: 8080',
        '  maxBodySize: 2mb',
        'mqtt:',
        '  network: { port: 0, securePort: 0, host: 127.0.0.1 }',
        '  mTLS: true',
        '  maxKeepAlive: 60',
        'tls: { certificate: cert.pem, privateKey: key.pem, certificateAuthority: ca.pem }',
        'changeLog: { retention: 24h }',
        'roles: { reader: { tables: { Dog: { read: true } } } }',
      ].join('\n'),
    )
    const { config, file, sources } = await loadConfig({ root: root.path, env: {} })
    expect(file).toBe(join(root.path, 'config.yaml'))
    expect(config.http.port).toBe(8080)
    expect(config.http.maxBodySize).toBe(2 * 1024 * 1024)
    expect(config.mqtt.network).toEqual({ port: 0, securePort: 0, host: '127.0.0.1' })
    expect(config.mqtt.mTLS.enabled).toBe(true)
    expect(config.mqtt.maxKeepAlive).toBe(60)
    expect(config.tls.certificate).toBe(join(root.path, 'cert.pem'))
    expect(config.changeLog.retention).toBe(24 * 3600 * 1000)
    expect(config.roles).toEqual({ reader: { tables: { Dog: { read: true } } } })
    expect(sources.get('http.port')).toBe('file')
    expect(sources.get('http.host')).toBe('default')
  })

  it('lets env override the file and flags override env', async () => {
    await writeFile(join(root.path, 'config.yaml'), 'mqtt:\n  network:\n    port: 1000\n  maxKeepAlive: 10\n')
    const { config, sources } = await loadConfig({
      root: root.path,
      env: { PROJ_MQTT_NETWORK_PORT: '2000', PROJ_MQTT_MAXKEEPALIVE: '20', PROJ_ANONYMOUS_ENABLED: 'yes' },
      overrides: { 'mqtt.network.port': '3000' },
    })
    expect(config.mqtt.network.port).toBe(3000)
    expect(sources.get('mqtt.network.port')).toBe('flag')
    expect(config.mqtt.maxKeepAlive).toBe(20)
    expect(sources.get('mqtt.maxKeepAlive')).toBe('env')
    expect(config.anonymous.enabled).toBe(true)
  })

  it('reads null from env to disable a listener and JSON for mappings', async () => {
    const { config } = await loadConfig({
      root: root.path,
      env: { PROJ_HTTP_PORT: 'null', PROJ_ROLES: '{"guest":{"tables":{"Dog":{"read":true}}}}' },
    })
    expect(config.http.port).toBeNull()
    expect(config.roles).toEqual({ guest: { tables: { Dog: { read: true } } } })
  })

  it('notes unknown PROJ_ variables without failing', async () => {
    const { notes } = await loadConfig({
      root: root.path,
      env: { PROJ_MQTT_PROT: '1', PROJ_MQTT_NETWRK_PORT: '1', PROJ_HTTP_MAXBODYSIZ: '1' },
    })
    expect(notes).toContain('ignoring unknown environment variable PROJ_MQTT_PROT')
    expect(notes).toContain(
      'ignoring unknown environment variable PROJ_MQTT_NETWRK_PORT (did you mean PROJ_MQTT_NETWORK_PORT?)',
    )
    expect(notes).toContain(
      'ignoring unknown environment variable PROJ_HTTP_MAXBODYSIZ (did you mean PROJ_HTTP_MAXBODYSIZE?)',
    )
  })

  it('fails with the key, the source and the reason for a bad value', async () => {
    await writeFile(join(root.path, 'config.yaml'), 'mqtt:\n  network:\n    port: 70000\n')
    const issues = await issuesOf(loadConfig({ root: root.path, env: { PROJ_LOGGING_LEVEL: 'loud' } }))
    expect(issues).toEqual([
      {
        key: 'mqtt.network.port',
        source: join(root.path, 'config.yaml'),
        reason: 'must be an integer from 0 to 65535 or null, got 70000',
      },
      {
        key: 'logging.level',
        source: 'PROJ_LOGGING_LEVEL',
        reason: "must be one of fatal, error, warn, info, debug, trace, silent, got 'loud'",
      },
    ])
  })

  it('reports every issue in the error message', async () => {
    const error = await loadConfig({ root: root.path, env: {}, overrides: { 'http.port': 'abc' } }).catch(
      (e) => e,
    )
    expect(error.code).toBe('CONFIG_INVALID')
    expect(error.message).toContain(
      "http.port: must be an integer from 0 to 65535 or null, got 'abc' (from --http-port)",
    )
  })

  it('reads the cluster keys from the environment and checks them', async () => {
    const { config } = await loadConfig({
      root: root.path,
      env: {
        PROJ_CLUSTER_NATS_SERVERS: 'nats://127.0.0.1:4222, tls://n2:4223',
        PROJ_CLUSTER_NODENAME: 'node-a',
        PROJ_CLUSTER_REPLICAS: '1',
        PROJ_CLUSTER_ACK: 'local',
      },
    })
    expect(config.cluster).toMatchObject({
      nodeName: 'node-a',
      replicas: 1,
      ack: 'local',
      prefix: 'proj',
      writeTimeout: 10_000,
      applyTimeout: 30_000,
      nats: { servers: 'nats://127.0.0.1:4222, tls://n2:4223' },
    })
    const issues = await issuesOf(
      loadConfig({
        root: root.path,
        env: {
          PROJ_CLUSTER_NATS_SERVERS: 'http://x:1',
          PROJ_CLUSTER_PREFIX: 'a.b',
          PROJ_CLUSTER_REPLICAS: '7',
          PROJ_CLUSTER_ACK: 'sometimes',
        },
      }),
    )
    expect(issues.map((i) => i.key).sort()).toEqual(['cluster.ack', 'cluster.replicas'])
    const crossKey = await issuesOf(
      loadConfig({
        root: root.path,
        env: { PROJ_CLUSTER_NATS_SERVERS: 'http://x:1', PROJ_CLUSTER_PREFIX: 'a.b' },
      }),
    )
    expect(crossKey.map((i) => i.key).sort()).toEqual(['cluster.nats.servers', 'cluster.prefix'])
  })

  it('rejects unknown keys with a suggestion', async () => {
    await writeFile(
      join(root.path, 'config.yaml'),
      [
        'mqtt:',
        '  netwrk:',
        '    port: 1',
        '  maxKeepAlve: 3',
        '  maxkeepalive: 4',
        '  port: 5',
        'metric:',
        '  enabled: true',
        'http:',
        '  prot: 6',
        'foo: 1',
        '',
      ].join('\n'),
    )
    const issues = await issuesOf(
      loadConfig({ root: root.path, env: {}, overrides: { 'logging.levle': 'info' } }),
    )
    expect(issues.map((i) => [i.key, i.reason])).toEqual([
      ['mqtt.netwrk', 'unknown key (did you mean mqtt.network?)'],
      ['mqtt.maxKeepAlve', 'unknown key (did you mean mqtt.maxKeepAlive?)'],
      ['mqtt.maxkeepalive', 'unknown key (did you mean mqtt.maxKeepAlive?)'],
      ['mqtt.port', 'unknown key (did you mean mqtt.network.port?)'],
      ['metric', 'unknown key (did you mean metrics?)'],
      ['http.prot', 'unknown key (did you mean http.port?)'],
      ['foo', 'unknown key'],
      ['logging.levle', 'unknown key (did you mean logging.level?)'],
    ])
  })

  it('checks role definitions: every unknown key with a suggestion, and each malformed part', async () => {
    await writeFile(
      join(root.path, 'config.yaml'),
      [
        'roles:',
        '  reader:',
        '    tabels: { Dog: { read: true } }',
        '    superuser: false',
        '  writer:',
        '    tables: { Dog: { read: true, raed: true, update: yes }, Cat: true }',
        '    topics:',
        '      - { filter: "public/#", subscibe: true }',
        '      - { publish: true }',
        '      - "#"',
        '  guest: 5',
        '  monitor:',
        '  empty: {}',
        '  bad: { topics: "#" }',
        '',
      ].join('\n'),
    )
    const file = join(root.path, 'config.yaml')
    const issues = await issuesOf(loadConfig({ root: root.path, env: {} }))
    expect(issues.map((i) => [i.key, i.reason])).toEqual([
      ['roles.reader.tabels', 'unknown key (did you mean tables?)'],
      ['roles.reader.superuser', 'unknown key (did you mean superUser?)'],
      ['roles.writer.tables.Dog.raed', 'unknown key (did you mean read?)'],
      ['roles.writer.tables.Dog.update', "must be true or false, got 'yes'"],
      ['roles.writer.tables.Cat', 'must be a mapping of read, insert, update, delete, publish, got true'],
      ['roles.writer.topics.0.subscibe', 'unknown key (did you mean subscribe?)'],
      ['roles.writer.topics.1.filter', 'must be a non-empty topic filter, got undefined'],
      ['roles.writer.topics.2', "must be a rule { filter, publish, subscribe }, got '#'"],
      ['roles.guest', 'must be a mapping, got 5'],
      ['roles.bad.topics', "must be a list of topic rules, got '#'"],
    ])
    expect(issues.every((i) => i.source === file)).toBe(true)
    // the same check for JSON from the environment
    await writeFile(file, '')
    const fromEnv = await issuesOf(loadConfig({ root: root.path, env: { PROJ_ROLES: '{"r":{"topic":[]}}' } }))
    expect(fromEnv).toEqual([
      { key: 'roles.r.topic', source: 'PROJ_ROLES', reason: 'unknown key (did you mean topics?)' },
    ])
  })

  it('rejects a section that is not a mapping and a document that is not a mapping', async () => {
    await writeFile(join(root.path, 'config.yaml'), 'mqtt: 5\n')
    expect(await issuesOf(loadConfig({ root: root.path, env: {} }))).toEqual([
      { key: 'mqtt', source: join(root.path, 'config.yaml'), reason: 'must be a mapping, got 5' },
    ])
    await writeFile(join(root.path, 'config.yaml'), '- a\n- b\n')
    expect((await issuesOf(loadConfig({ root: root.path, env: {} })))[0]?.reason).toMatch(
      /must be a YAML mapping/,
    )
  })

  it('reports invalid YAML with its position', async () => {
    await writeFile(join(root.path, 'config.yaml'), 'http:\n  port: [1\n')
    const [issue] = await issuesOf(loadConfig({ root: root.path, env: {} }))
    expect(issue?.reason).toMatch(/^invalid YAML: \S/)
    expect(issue?.reason).not.toMatch(/line \d+/)
    // the message ends with the location, as file:line:column
    const error = await loadConfig({ root: root.path, env: {} }).catch((e: Error) => e)
    expect((error as Error).message).toMatch(/\(from .*config\.yaml:3:1\)$/)
  })

  it('fails when an explicit --config file is missing', async () => {
    const [issue] = await issuesOf(
      loadConfig({ root: root.path, configFile: join(root.path, 'nope.yaml'), env: {} }),
    )
    expect(issue?.reason).toBe('cannot read the config file (ENOENT)')
  })

  it('fails when a secure port is set explicitly without TLS files', async () => {
    const issues = await issuesOf(
      loadConfig({ root: root.path, env: { PROJ_MQTT_NETWORK_SECUREPORT: '8883' } }),
    )
    expect(issues).toEqual([
      {
        key: 'mqtt.network.securePort',
        source: 'PROJ_MQTT_NETWORK_SECUREPORT',
        reason: 'needs tls.certificate and tls.privateKey',
      },
    ])
  })

  it('fails when TLS files cannot be read, or mTLS has no CA', async () => {
    const issues = await issuesOf(
      loadConfig({
        root: root.path,
        env: {},
        overrides: { 'tls.certificate': 'missing.pem', 'tls.privateKey': 'missing.key', 'mqtt.mTLS': 'true' },
      }),
    )
    expect(issues.map((i) => i.key)).toEqual(['mqtt.mTLS.enabled', 'tls.certificate', 'tls.privateKey'])
    expect(issues[0]?.reason).toBe('needs tls.certificateAuthority')
    expect(issues[1]?.reason).toBe(`cannot read ${join(root.path, 'missing.pem')} (ENOENT)`)
  })

  it('fails when two listeners share a port', async () => {
    const issues = await issuesOf(
      loadConfig({ root: root.path, env: {}, overrides: { 'http.port': '1883' } }),
    )
    expect(issues).toEqual([
      { key: 'mqtt.network.port', source: 'default', reason: 'port 1883 is also http.port' },
    ])
  })

  it('accepts the same port on different hosts and any number of port 0 listeners', async () => {
    const { config } = await loadConfig({
      root: root.path,
      env: {},
      values: { 'http.port': 1883, 'http.host': '127.0.0.1', 'mqtt.network.host': '127.0.0.2' },
    })
    expect(config.http.port).toBe(1883)
    await expect(
      loadConfig({ root: root.path, env: {}, overrides: { 'http.port': '0', 'mqtt.network.port': '0' } }),
    ).resolves.toBeDefined()
  })
})

describe('coerceValue', () => {
  const spec = (key: string) => CONFIG_KEYS.find((s) => s.key === key)!
  it.each([
    ['http.maxBodySize', '512kb', 512 * 1024],
    ['http.maxBodySize', '1.5 MiB', 1.5 * 1024 * 1024],
    ['http.maxBodySize', '100', 100],
    ['changeLog.retention', '7d', 7 * 86_400_000],
    ['changeLog.retention', '250ms', 250],
    ['shutdown.timeout', '10s', 10_000],
    ['mqtt.webSocket', 'off', false],
    ['mqtt.webSocket', 'TRUE', true],
    ['mqtt.maxQueued', '0', 0],
    ['http.cors', 'false', false],
    ['http.cors', 'true', '*'],
    ['http.cors', 'https://a.example, https://b.example', ['https://a.example', 'https://b.example']],
  ])('%s accepts %j from a string', (key, raw, value) => {
    expect(coerceValue(spec(key), raw, true)).toEqual({ ok: true, value })
  })

  it.each([
    ['http.maxBodySize', '10 parsecs', 'must be a size'],
    ['mqtt.receiveMaximum', '0', 'must be an integer from 1 to 65535'],
    ['mqtt.maxQueued', '-1', 'must be an integer >= 0'],
    ['mqtt.webSocket', 'maybe', 'must be true or false'],
    ['storage.path', 'null', 'must not be null'],
    ['roles', '[1]', 'must be a mapping'],
    ['anonymous.role', '', 'must be a non-empty string'],
  ])('%s rejects %j', (key, raw, reason) => {
    const result = coerceValue(spec(key), raw, true)
    expect(result.ok).toBe(false)
    expect(result.ok ? '' : result.reason).toContain(reason)
  })

  it('does not read strings as numbers or booleans inside YAML', () => {
    expect(coerceValue(spec('http.port'), '80', false).ok).toBe(false)
    expect(coerceValue(spec('mqtt.webSocket'), 'yes', false).ok).toBe(false)
  })
})

describe('parseSetArguments', () => {
  it('splits key.path=value at the first =', () => {
    expect(parseSetArguments(['mqtt.maxKeepAlive=30', 'roles={"a":{"x":"=1"}}'])).toEqual({
      'mqtt.maxKeepAlive': '30',
      roles: '{"a":{"x":"=1"}}',
    })
  })
  it('rejects an argument without =', () => {
    expect(() => parseSetArguments(['mqtt.maxKeepAlive'])).toThrow(ConfigError)
  })
})
