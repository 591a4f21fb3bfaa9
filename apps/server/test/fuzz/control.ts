/**
 * The well-behaved client on its own connection (MQTT.js, as an administrator): a QoS 1 publish round
 * trip, timed, again and again while the fuzzer runs; and the watcher of what the fuzzer may not change
 * (any message on keep/# or Guard/# once the retained ones arrived) or may only change with bytes it
 * actually sent (a sample of fz/# payloads must each be found in a recent input).
 */
import type { MqttClient } from 'mqtt'
import { connectMqtt } from '../helpers/clients.js'
import { ADMIN, GUARD_RECORDS, GUARD_TOPICS } from './fuzz-server.js'

const RING = 8192
const SAMPLE_PER_CHECK = 16

export class Control {
  readonly latencies: number[] = []
  /** Messages that must never have arrived, or whose bytes no input contained. */
  readonly violations: string[] = []
  fuzzMessages = 0
  tableMessages = 0
  checkedPayloads = 0
  #client: MqttClient
  #armed = false
  #seq = 0
  #waiting: { label: string; resolve: () => void } | undefined
  /** The bytes of recent inputs, and of CONNECT inputs for longer (a will is published long after). */
  #recent: Buffer[] = []
  #connects: Buffer[] = []
  #unchecked: Array<{ topic: string; payload: Buffer }> = []

  private constructor(client: MqttClient) {
    this.#client = client
  }

  static async open(url: string): Promise<Control> {
    const client = await connectMqtt(url, { ...ADMIN, clientId: 'fuzz-control', protocolVersion: 5 })
    const control = new Control(client)
    const retained = Object.keys(GUARD_RECORDS).length + Object.keys(GUARD_TOPICS).length
    let seen = 0
    const allRetained = new Promise<void>((resolve) => {
      client.on('message', (topic, payload) => {
        if (!control.#armed && /^(keep|Guard)\//.test(topic) && ++seen === retained) resolve()
        control.#onMessage(topic, payload)
      })
    })
    await client.subscribeAsync(
      { 'control/ping': { qos: 1 }, 'keep/#': { qos: 1 }, 'Guard/#': { qos: 1 } },
      {},
    )
    await client.subscribeAsync({ 'fz/#': { qos: 0 }, 'Fuzz/#': { qos: 0 } })
    await allRetained
    control.#armed = true
    return control
  }

  #onMessage(topic: string, payload: Buffer): void {
    if (topic === 'control/ping') {
      if (this.#waiting?.label === payload.toString()) this.#waiting.resolve()
      return
    }
    if (topic.startsWith('keep/') || topic.startsWith('Guard/')) {
      // keep/~end: the snapshot's own end marker (published by an administrator)
      if (this.#armed && topic !== 'keep/~end')
        this.violations.push(`guarded ${topic} changed: ${payload.toString('hex').slice(0, 200)}`)
      return
    }
    if (topic.startsWith('Fuzz/')) {
      this.tableMessages++
      return
    }
    this.fuzzMessages++
    if (payload.length >= 4 && this.#unchecked.length < SAMPLE_PER_CHECK)
      this.#unchecked.push({ topic, payload })
  }

  /** Records bytes the fuzzer sent (the only source an fz/# message may have). */
  sent(bytes: Buffer, isConnect: boolean): void {
    this.#recent.push(bytes)
    if (this.#recent.length > RING) this.#recent.splice(0, this.#recent.length - RING)
    if (isConnect) {
      this.#connects.push(bytes)
      if (this.#connects.length > RING) this.#connects.splice(0, this.#connects.length - RING)
    }
  }

  /** Checks the sampled fz/# payloads against the inputs (a payload is one contiguous run of an input). */
  checkPayloads(): void {
    for (const { topic, payload } of this.#unchecked.splice(0)) {
      this.checkedPayloads++
      const found =
        this.#recent.some((b) => b.includes(payload)) || this.#connects.some((b) => b.includes(payload))
      if (!found) {
        this.violations.push(`${topic} carried bytes no input sent: ${payload.toString('hex').slice(0, 200)}`)
      }
    }
  }

  /** One QoS 1 publish to ourselves: resolves with the round trip in ms, rejects after `timeoutMs`. */
  async roundTrip(timeoutMs: number): Promise<number> {
    const label = `ping-${++this.#seq}`
    const start = performance.now()
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the control client's QoS 1 round trip took over ${timeoutMs} ms`)),
        timeoutMs,
      )
      this.#waiting = {
        label,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      }
      this.#client.publishAsync('control/ping', label, { qos: 1 }).catch((err) => {
        clearTimeout(timer)
        reject(err)
      })
    })
    const ms = performance.now() - start
    this.latencies.push(ms)
    return ms
  }

  close(): Promise<void> {
    return this.#client.endAsync(true).catch(() => {})
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}
