import { execFileSync, spawn } from 'node:child_process'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'

/** Connects once (no retries, no reconnects); rejects with the broker's refusal. */
export function connectMqtt(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options }, false)
}

/** Resolves with the next message on `topic` that satisfies `accept`. */
/** Resolves with the reason code of the server's DISCONNECT (undefined: closed without one). */
export function closedBy(client: MqttClient): Promise<number | undefined> {
  return new Promise((resolve) => {
    let code: number | undefined
    client.on('disconnect', (packet) => {
      code = packet.reasonCode ?? 0
    })
    client.once('close', () => resolve(code))
  })
}

export function nextMessage(
  client: MqttClient,
  topic: string,
  accept: (payload: Buffer, packet: mqtt.IPublishPacket) => boolean = () => true,
  timeoutMs = 5000,
): Promise<{ payload: Buffer; packet: mqtt.IPublishPacket }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage)
      reject(new Error(`no message on ${topic} within ${timeoutMs} ms`))
    }, timeoutMs)
    const onMessage = (t: string, payload: Buffer, packet: mqtt.IPublishPacket) => {
      if (t !== topic || !accept(payload, packet)) return
      clearTimeout(timer)
      client.off('message', onMessage)
      resolve({ payload, packet })
    }
    client.on('message', onMessage)
  })
}

export const basic = (username: string, password: string) =>
  `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'pipe', timeout: 5000 })
    return true
  } catch {
    return false
  }
}

/** Runs a program with a hard timeout; resolves with its exit code and output, never rejects. */
export function run(
  command: string,
  args: string[],
  timeoutMs = 10_000,
): { done: Promise<{ code: number | null; stdout: string; stderr: string }>; kill(): void } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('error', (err) => resolve({ code: -1, stdout, stderr: String(err) }))
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
  return { done, kill: () => child.kill('SIGKILL') }
}
