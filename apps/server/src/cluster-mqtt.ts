import type { ClusterNode } from '@proj/cluster'
import type { Broker } from '@proj/mqtt'
import type { Logger } from './logger.js'

const FAILED_REASON = 'this node cannot catch up with the cluster; connect to another node'

/**
 * A cluster node that fails (it can no longer apply the stream, so its data will not be current again)
 * serves no MQTT client: its connections close (v5 DISCONNECT 0x9C Use another server; 3.1.1 closed) and
 * each CONNECT is refused (CONNACK 0x88; 3.1.1 return code 3) until the node is ready again. Logged once
 * per change.
 */
export function mqttFollowsClusterState(node: ClusterNode, broker: Broker, logger: Logger): void {
  let refusing = false
  const follow = (state: ClusterNode['state']) => {
    if (state === 'failed' && !refusing) {
      refusing = true
      logger.error(
        { node: node.nodeName, connections: broker.connectionCount },
        'cluster: this node failed; its MQTT connections are closed (0x9C Use another server) and new ones refused (0x88 Server unavailable) until it is ready again',
      )
      broker.unavailable(FAILED_REASON)
    } else if (state === 'ready' && refusing) {
      refusing = false
      logger.info({ node: node.nodeName }, 'cluster: this node is ready again; MQTT connections are accepted')
      broker.unavailable(undefined)
    }
  }
  node.onState(follow)
  follow(node.state)
}
