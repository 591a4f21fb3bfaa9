import { describe, expect, it } from 'vitest'
import { pairClient, useBrokerFixture } from './helpers.js'

const fx = useBrokerFixture()

describe('retained messages of topics no table claims', () => {
  for (const version of [4, 5] as const) {
    it(`keep the QoS they were published with: a new subscriber gets min(published, granted) (v${version}) [MQTT-3.8.4]`, async () => {
      fx.make()
      const prefix = `rq${version}`
      const pub = pairClient(fx.broker, version)
      await pub.connect()
      for (const qos of [0, 1, 2] as const) {
        pub.send({
          cmd: 'publish',
          topic: `${prefix}/q${qos}`,
          payload: `at ${qos}`,
          qos,
          messageId: qos === 0 ? undefined : 10 + qos,
          retain: true,
          dup: false,
        })
      }
      await pub.next('puback')
      await pub.next('pubrec')
      pub.send({ cmd: 'pubrel', messageId: 12 })
      await pub.next('pubcomp')

      for (const granted of [2, 1, 0] as const) {
        const sub = pairClient(fx.broker, version)
        await sub.connect()
        sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${prefix}/#`, qos: granted }] })
        expect((await sub.next('suback')).granted).toEqual([granted])
        const got = new Map<string, number>()
        for (let i = 0; i < 3; i++) {
          const p = await sub.next('publish')
          expect(p.retain).toBe(true)
          got.set(p.topic, p.qos)
        }
        expect(Object.fromEntries(got)).toEqual({
          [`${prefix}/q0`]: 0,
          [`${prefix}/q1`]: Math.min(1, granted),
          [`${prefix}/q2`]: Math.min(2, granted),
        })
        sub.end()
      }
    })
  }
})
