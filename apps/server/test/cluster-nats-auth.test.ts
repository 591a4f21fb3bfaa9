// Nodes join a NATS that asks for a user and password over TLS (cluster.nats.user / password /
// tls.ca); a node with a wrong password does not start, and says why.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { natsSkipReason, tempDir } from '@proj/test-utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestCertificates, hasOpenssl, type TestCertificates } from './helpers/certs.js'
import { getRecord, send, startClusterNodes } from './helpers/cluster.js'
import { startServerProcess } from './helpers/server-process.js'

const skip = natsSkipReason ?? (hasOpenssl() ? undefined : 'openssl is not installed')

describe.skipIf(skip !== undefined)(
  `a cluster on a NATS server with a password and TLS${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    let certsDir: string
    let certs: TestCertificates
    let cluster: Awaited<ReturnType<typeof startClusterNodes>>
    const auth = (password: string) => ({
      PROJ_CLUSTER_NATS_USER: 'proj',
      PROJ_CLUSTER_NATS_PASSWORD: password,
      PROJ_CLUSTER_NATS_TLS_CA: certs.caPath,
    })

    beforeAll(async () => {
      certsDir = mkdtempSync(join(tmpdir(), 'proj-nats-certs-'))
      certs = createTestCertificates(certsDir)
      cluster = await startClusterNodes(['a', 'b'], {
        natsSize: 1,
        natsConfig: [
          'authorization { user: "proj", password: "s3cret" }',
          `tls { cert_file: "${certs.serverCertPath}", key_file: "${certs.serverKeyPath}" }`,
        ],
        env: auth('s3cret'),
      })
    }, 60_000)
    afterAll(async () => {
      await cluster?.stop()
      rmSync(certsDir, { recursive: true, force: true })
    })

    it('joins with the user and password over TLS: a write on one node reads back on the other', async () => {
      // every connection is TLS: the server refuses plain text, and asks every client for the password
      expect(cluster.nats.servers[0]!.output()).toMatch(/TLS required for client connections/)
      expect((await send(cluster.node('a').http, 'PUT', 'Dog/secure', { name: 'Rex' })).status).toBeLessThan(
        300,
      )
      await expect
        .poll(async () => (await getRecord(cluster.node('b').http, 'Dog/secure')).body, { timeout: 10_000 })
        .toMatchObject({ name: 'Rex' })
    })

    it('does not start a node whose NATS password is wrong, and logs the refusal', async () => {
      await using root = await tempDir('proj-cluster-wrong-')
      const started = startServerProcess(root.path, {
        env: {
          ADMIN_PASSWORD: 'pw',
          PROJ_CLUSTER_NATS_SERVERS: cluster.nats.urls.join(','),
          PROJ_CLUSTER_NODENAME: 'intruder',
          PROJ_CLUSTER_REPLICAS: '1',
          PROJ_LOGGING_LEVEL: 'info',
          ...auth('wrong'),
        },
        timeoutMs: 30_000,
      })
      const outcome = await started.then(
        async (node) => {
          await node.stop(5000)
          return `started:\n${node.output()}`
        },
        (error: Error) => error.message,
      )
      expect(outcome).not.toMatch(/^started/)
      expect(outcome).toMatch(/authorization violation|authentication/i)
    }, 60_000)
  },
)
