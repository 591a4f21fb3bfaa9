import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { tempDir } from '@proj/test-utils'
import { describe, expect, it, vi } from 'vitest'
import { createTestCertificates, hasOpenssl } from './helpers/certs.js'
import { basic, connectMqtt, nextMessage } from './helpers/clients.js'
import { addUser, startServerProcess } from './helpers/server-process.js'

/** The fingerprint of the certificate a TLS listener presents to a new handshake. */
function presented(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', ca }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.end()
    })
    socket.on('error', reject)
  })
}

const config = (certs: string, extra: string[], mqtt = '') =>
  [
    `mqtt: { network: { securePort: 0 }${mqtt} }`,
    'http: { securePort: 0 }',
    `tls: { certificate: ${certs}/server.pem, privateKey: ${certs}/server.key, certificateAuthority: ${certs}/ca.pem }`,
    ...extra,
    '',
  ].join('\n')

describe('SIGHUP (built server)', () => {
  it.skipIf(!hasOpenssl())(
    'reloads TLS files, roles and anonymous settings without dropping connections; a broken reload changes nothing',
    async () => {
      await using root = await tempDir('proj-server-reload-')
      await mkdir(join(root.path, 'one'))
      await mkdir(join(root.path, 'two'))
      const one = createTestCertificates(join(root.path, 'one'))
      const two = createTestCertificates(join(root.path, 'two'))
      const file = join(root.path, 'config.yaml')
      await writeFile(file, config('one', ['roles: { reader: { tables: {} } }']))
      await addUser(root.path, 'rita', 'rita-pw', '--role', 'reader')
      const server = await startServerProcess(root.path, {
        env: { ADMIN_PASSWORD: 'admin-pw', PROJ_LOGGING_LEVEL: 'info' },
      })
      try {
        const http = server.listeners.http!.url
        const mqtts = server.listeners.mqtts!
        const rita = basic('rita', 'rita-pw')
        const admin = { username: 'admin', password: 'admin-pw' }
        const before = await presented(mqtts.port, one.ca)
        expect((await fetch(`${http}/Dog/`, { headers: { authorization: rita } })).status).toBe(403)
        expect((await fetch(`${http}/Dog/`)).status).toBe(401)
        // connections that must survive the reload: plain MQTT and MQTT over TLS
        const plain = await connectMqtt(server.listeners.mqtt!.url, { ...admin, clientId: 'stays-tcp' })
        const secure = await connectMqtt(mqtts.url, {
          ...admin,
          clientId: 'stays-tls',
          ca: one.ca,
          servername: 'localhost',
        })
        await plain.subscribeAsync('news/#', { qos: 1 })
        let closed = 0
        for (const c of [plain, secure]) c.on('close', () => closed++)

        const reloaded = (n: number) =>
          vi.waitFor(
            () => expect(server.output().match(/configuration reloaded|reload failed/g)?.length ?? 0).toBe(n),
            { timeout: 10_000 },
          )
        // a new certificate, a role that may read Dog, anonymous access on
        await writeFile(
          file,
          config('two', [
            'roles: { reader: { tables: { Dog: { read: true } } } }',
            'anonymous: { enabled: true, role: reader }',
          ]),
        )
        server.child.kill('SIGHUP')
        await reloaded(1)
        expect(server.output()).toMatch(/configuration reloaded \(tls, roles, anonymous\)/)
        expect(await presented(mqtts.port, two.ca)).not.toBe(before)
        expect((await fetch(`${http}/Dog/`, { headers: { authorization: rita } })).status).toBe(200)
        expect((await fetch(`${http}/Dog/`)).status).toBe(200)
        // both connections are still there and working
        const got = nextMessage(plain, 'news/1')
        await secure.publishAsync('news/1', 'still here', { qos: 1 })
        expect(String((await got).payload)).toBe('still here')
        expect(closed).toBe(0)

        // broken: invalid YAML, then a certificate that does not exist; each time nothing changes
        await writeFile(file, 'roles: [\n')
        server.child.kill('SIGHUP')
        await reloaded(2)
        await writeFile(file, config('missing', ['anonymous: { enabled: false }']))
        server.child.kill('SIGHUP')
        await reloaded(3)
        const failures = server.output().match(/reload failed, the running configuration stays: [^"]*/g) ?? []
        expect(failures).toHaveLength(2)
        expect(failures[0]).toMatch(/invalid YAML/)
        expect(failures[1]).toMatch(/cannot read/)
        expect((await fetch(`${http}/Dog/`)).status).toBe(200) // anonymous still on
        expect(await presented(mqtts.port, two.ca)).not.toBe(before)
        // a key only a restart applies is named
        await writeFile(
          file,
          config(
            'two',
            [
              'roles: { reader: { tables: { Dog: { read: true } } } }',
              'anonymous: { enabled: true, role: reader }',
            ],
            ', maxQueued: 5',
          ),
        )
        server.child.kill('SIGHUP')
        await reloaded(4)
        // the line may follow the reload's own by a moment: wait for it
        await vi.waitFor(
          () => expect(server.output()).toContain('changed keys that need a restart: mqtt.maxQueued'),
          { timeout: 5000 },
        )
        expect(closed).toBe(0)
        await Promise.all([plain.endAsync(), secure.endAsync()])
      } finally {
        expect(await server.stop(), server.output()).toBe(0)
      }
    },
  )
})
