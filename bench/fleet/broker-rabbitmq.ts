import { randomBytes } from 'node:crypto';
import { rabbitmqAuthBaseUrl } from '@tu/relay';
import { startRabbitCluster, type RabbitCluster } from '../../test/support/rabbitmq.js';
import { startBalancer } from './balancer.js';
import type { FleetBroker } from './broker.js';
import { pidsWithArgument, type RelayInstance } from './relays.js';

/**
 * A RabbitMQ cluster of `nodes` nodes on this machine (test/support/rabbitmq.ts) as the gateways'
 * broker: gateways connect to the nodes' MQTT listeners (gateway i to node i mod n, moving on
 * when its node dies); relay instances are competing consumers of the quorum queue
 * (ingress.mode rabbitmq, relay/src/ingress/rabbitmq.ts). The nodes ask the relay instances
 * about logins and permissions (rabbitmq_auth_backend_http) through a load balancer
 * (bench/fleet/balancer.ts), so killing an instance does not stop its node's authentication.
 */
export function rabbitmqBroker(nodes = 3, cacheTtlMs = 10_000): FleetBroker {
  const authSecret = randomBytes(24).toString('base64url');
  const password = randomBytes(24).toString('base64url');
  let cluster: RabbitCluster | undefined;
  let balancer: Awaited<ReturnType<typeof startBalancer>> | undefined;
  let killed: number | undefined;
  const urls = (i: number): string[] => {
    const all = cluster?.amqpUrls ?? [];
    // Instance i starts at node i: the consumers spread over the nodes.
    return all.map((_, k) => all[(i + k) % all.length]!);
  };
  return {
    kind: `rabbitmq (${nodes} nodes)`,
    async prepare(relays: RelayInstance[]) {
      balancer = await startBalancer(() => relays.map((r) => r.httpPort));
      cluster = await startRabbitCluster({ nodes, authBaseUrl: rabbitmqAuthBaseUrl(`http://127.0.0.1:${balancer.port}`, authSecret), cacheTtlMs });
    },
    relayConfig: (i) => ({ ingress: { mode: 'rabbitmq', rabbitmq: { urls: urls(i), password, authSecret, cacheTtlMs } } }),
    relayEnv: () => ({ TU_RELAY_INGRESS_MODE: 'rabbitmq' }),
    gatewayUrls: () => cluster?.mqttUrls ?? [],
    // HTTP connections through the balancer: each is at least one question of a node to the relays.
    authRequests: () => balancer?.connections() ?? 0,
    // The Erlang VMs of our nodes (their command lines hold the cluster's directory as home), not the system broker's.
    pids: () => (cluster ? pidsWithArgument([cluster.dir]) : []),
    async killNode() {
      if (!cluster) throw new Error('no cluster');
      killed = cluster.mqttUrls.length - 1;
      await cluster.killNode(killed);
      return `broker node ${killed} (SIGKILL)`;
    },
    async restartNode() {
      if (cluster && killed !== undefined) await cluster.startNode(killed);
      killed = undefined;
    },
    async stop() {
      await cluster?.stop();
      cluster = undefined;
      await balancer?.close();
      balancer = undefined;
    },
  };
}
