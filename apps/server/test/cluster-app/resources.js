// Custom resources every node of the cluster test runs, each node its own copy of this code (so its own
// in-memory state: `node` below differs per node). What they write and publish goes through the runtime,
// so it replicates; what they compute and yield stays on the node that runs them.
export default ({ Resource, context }) => {
  const { server } = context
  const node = () => server.config.cluster.nodeName
  const bytes = (value) => Buffer.from(JSON.stringify(value))
  const publish = (topic, value, qos, ctx) =>
    server.runtime.publish(topic, { payload: bytes(value), retain: false, qos }, ctx)

  return {
    // A door of its own onto the Dog table: put (REST PUT, and an MQTT retained publish to Intake/<id>,
    // which the base class turns into a put) and post write Dog records; post also publishes a QoS 1 and
    // a QoS 0 message.
    Intake: class extends Resource {
      async put(id, value, ctx) {
        return server.runtime.put(`Dog/${id}`, { name: value.name, via: `intake on ${node()}` }, ctx)
      }

      async post(value, ctx) {
        const written = await server.runtime.put(
          `Dog/${value.name}`,
          { name: value.name, via: `intake post on ${node()}` },
          ctx,
        )
        await publish('Intake/admitted', { name: value.name, by: node() }, 1, ctx)
        await publish('Intake/seen', { name: value.name, by: node() }, 0, ctx)
        return written
      }
    },

    // connect() is an async generator: it yields the Dog writes this node applies (whichever node made
    // them), labelled with this node's name, and publishes what its client sends as a QoS 1 and a QoS 0
    // message.
    Watch: class extends Resource {
      async *connect(_id, incoming, ctx, options = {}) {
        const queue = []
        let wake
        const push = (value) => {
          queue.push(value)
          wake?.()
        }
        const subscription = await server.runtime.subscribe(
          'Dog/#',
          (event) => push({ node: node(), saw: event.id, via: event.value?.via }),
          { retained: false, qos: 1 },
          ctx,
        )
        if (incoming)
          void (async () => {
            for await (const said of incoming) {
              await publish('Watch/said', { said, by: node() }, 1, ctx)
              await publish('Watch/said0', { said, by: node() }, 0, ctx)
            }
          })().catch(() => {})
        try {
          yield { node: node(), ready: true }
          while (!options.signal?.aborted) {
            if (queue.length > 0) yield queue.shift()
            else
              await new Promise((resolve) => {
                wake = resolve
                options.signal?.addEventListener('abort', resolve, { once: true })
              })
          }
        } finally {
          subscription.close()
        }
      }
    },
  }
}
