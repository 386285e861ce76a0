/**
 * A RabbitMQ cluster of our own on this machine, for tests and benches (the system broker on
 * 5672 is never touched).
 *
 *   const c = await startRabbitCluster({ nodes: 3, authBaseUrl, cacheTtlMs: 2000 }); // basePort optional
 *   c.amqpUrls   // amqp://127.0.0.1:{port} per node (no credentials: add the relay user's)
 *   c.mqttUrls   // mqtt://127.0.0.1:{port} per node (gateways)
 *   c.managementUrls // http://127.0.0.1:{port} per node (with `management: true`; else empty)
 *   await c.killNode(1);   // kill -9 of node 1's whole process group
 *   await c.startNode(1);  // starts it again on its data; it rejoins the cluster
 *   await c.stopNode(1);   // graceful stop (SIGTERM)
 *   await c.stop();        // every node, then the data directory is removed
 *
 * Ports: node i listens for AMQP on basePort + 4i, MQTT on basePort + 4i + 1, Erlang
 * distribution on basePort + 4i + 2 and (with `management: true`, plugin rabbitmq_management as
 * rabbitmqEnabledPlugins enables it) the management HTTP API on basePort + 4i + 3 (all on 127.0.0.1). A given basePort with a taken port is an
 * error before anything starts; without basePort, a free block is picked below the ephemeral range
 * (where the OS hands out ports to others: a port free now could be taken before the node binds it). Node names are `tu{random}n{i}@localhost`; the shared epmd (4369) is fine.
 * Each node has its own data, log, config and plugin files under `dir` (default: a temp dir) and
 * the cluster's own Erlang cookie (HOME=dir). Nodes form the cluster by classic peer discovery
 * (node 0 first, then the others join it one at a time). The nodes log at info level, so the log
 * tail in a start failure shows the boot step a node stalled at.
 *
 * Authentication and authorisation are the relay's (rabbitmq_auth_backend_http behind
 * rabbitmq_auth_backend_cache, config from relay/src/ingress/rabbitmq-broker.ts): `authBaseUrl`
 * is what `rabbitmqAuthBaseUrl(relayUrl, secret)` gives; a function gives each node its own
 * (e.g. a different relay instance per node). `cacheTtlMs` is the auth cache TTL, i.e. the
 * revocation cut-off. The relay does not need to be up while the nodes start; logins fail until it is.
 *
 * Every wait is bounded (`startTimeoutMs`, default 90 s per node).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rabbitmqBrokerConf, rabbitmqEnabledPlugins } from '@tu/relay';
import { portOpen } from './processes.js';

/** The Debian package's real scripts (/usr/sbin/rabbitmq-server would switch to the rabbitmq user). */
const RABBIT_BIN = process.env.TU_RABBITMQ_BIN ?? '/usr/lib/rabbitmq/bin';

export interface RabbitClusterOptions {
  nodes?: number;
  /** Default: the first block of free ports found from a random start in 20000-29999 (below Linux's ephemeral range). */
  basePort?: number;
  authBaseUrl: string | ((node: number) => string);
  cacheTtlMs: number;
  /** Enables rabbitmq_management (the relay closes revoked gateways' connections through it). */
  management?: boolean;
  dir?: string;
  startTimeoutMs?: number;
}

export interface RabbitCluster {
  amqpUrls: string[];
  mqttUrls: string[];
  managementUrls: string[];
  nodeNames: string[];
  dir: string;
  /** kill -9 of node i (its process group: the Erlang VM and its helpers). */
  killNode(i: number): Promise<void>;
  /** Graceful stop of node i (SIGTERM, bounded; then kill -9). */
  stopNode(i: number): Promise<void>;
  /** Starts node i again (after killNode/stopNode) and waits until its listeners answer. */
  startNode(i: number): Promise<void>;
  /** Runs rabbitmqctl against node i (bounded, 30 s); resolves with its stdout. */
  ctl(i: number, args: string[]): Promise<string>;
  /** Stops every node and removes `dir` (when the helper made it). */
  stop(): Promise<void>;
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the cluster; a node that does not come up in time gets the whole cluster one more try
 * with other ports and node names (only when both are this function's choice). In one clean-clone
 * CI run the first node sat at "Starting broker..." for the whole 90 s, and the same suite passed
 * when run again; a cluster that cannot start fails both tries, with the node's own log in the
 * error.
 */
export async function startRabbitCluster(o: RabbitClusterOptions): Promise<RabbitCluster> {
  try {
    return await startClusterOnce(o);
  } catch (err) {
    if (o.dir !== undefined || o.basePort !== undefined || !(err instanceof NodeDidNotStart)) throw err;
    console.warn(`rabbitmq: ${err.message.split('\n')[0]}; starting the cluster once more with other ports and node names`);
    return startClusterOnce(o);
  }
}

class NodeDidNotStart extends Error {}

async function startClusterOnce(o: RabbitClusterOptions): Promise<RabbitCluster> {
  const n = o.nodes ?? 3;
  const ownDir = o.dir === undefined;
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tu-rabbit-'));
  fs.mkdirSync(dir, { recursive: true });
  const timeout = o.startTimeoutMs ?? 90_000;
  const tag = randomBytes(3).toString('hex');
  const nodeNames = Array.from({ length: n }, (_, i) => `tu${tag}n${i}@localhost`);
  const block = (base: number) => Array.from({ length: n }, (_, i) => ({ amqp: base + 4 * i, mqtt: base + 4 * i + 1, dist: base + 4 * i + 2, mgmt: base + 4 * i + 3 }));
  const taken = async (b: ReturnType<typeof block>) => (await Promise.all(b.flatMap((x) => [x.amqp, x.mqtt, x.dist, x.mgmt]).map(portOpen))).some(Boolean);
  const randomBase = () => 20_000 + Math.floor(Math.random() * (9900 / (4 * n))) * 4 * n;
  let ports = block(o.basePort ?? randomBase());
  if (o.basePort !== undefined && (await taken(ports))) throw new Error(`a port of ${o.basePort}..${o.basePort + 4 * n - 1} is taken; pick another basePort`);
  for (let tries = 0; o.basePort === undefined && (await taken(ports)); tries++) {
    if (tries > 20) throw new Error('no free block of ports found in 20000-29999');
    ports = block(randomBase());
  }

  const cookie = path.join(dir, '.erlang.cookie');
  fs.writeFileSync(cookie, randomBytes(20).toString('hex'), { mode: 0o400 });
  const envFile = path.join(dir, 'rabbitmq-env.conf');
  fs.writeFileSync(envFile, '');
  const env = (i: number): NodeJS.ProcessEnv => {
    const nd = path.join(dir, `n${i}`);
    fs.mkdirSync(path.join(nd, 'log'), { recursive: true });
    fs.mkdirSync(path.join(nd, 'mnesia'), { recursive: true });
    const authBaseUrl = typeof o.authBaseUrl === 'function' ? o.authBaseUrl(i) : o.authBaseUrl;
    fs.writeFileSync(
      path.join(nd, 'rabbitmq.conf'),
      [
        `listeners.tcp.1 = 127.0.0.1:${ports[i]!.amqp}`,
        `mqtt.listeners.tcp.1 = 127.0.0.1:${ports[i]!.mqtt}`,
        'cluster_formation.peer_discovery_backend = classic_config',
        ...nodeNames.map((nn, k) => `cluster_formation.classic_config.nodes.${k + 1} = ${nn}`),
        'log.console = false',
        'log.file.level = info',
        ...(o.management ? [`management.tcp.ip = 127.0.0.1`, `management.tcp.port = ${ports[i]!.mgmt}`] : []),
        rabbitmqBrokerConf({ authBaseUrl, cacheTtlMs: o.cacheTtlMs, management: o.management ?? false }),
      ].join('\n'),
    );
    fs.writeFileSync(path.join(nd, 'enabled_plugins'), rabbitmqEnabledPlugins({ management: o.management ?? false }));
    return {
      PATH: process.env.PATH,
      HOME: dir,
      LANG: 'C.UTF-8',
      RABBITMQ_CONF_ENV_FILE: envFile,
      RABBITMQ_NODENAME: nodeNames[i],
      RABBITMQ_USE_LONGNAME: 'false',
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(ports[i]!.amqp),
      RABBITMQ_DIST_PORT: String(ports[i]!.dist),
      RABBITMQ_MNESIA_BASE: path.join(nd, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(nd, 'log'),
      RABBITMQ_PID_FILE: path.join(nd, 'pid'),
      RABBITMQ_CONFIG_FILE: path.join(nd, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(nd, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(nd, 'enabled_plugins'),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
  };

  const procs: (ChildProcess | undefined)[] = Array.from({ length: n }, () => undefined);
  const output: string[] = Array.from({ length: n }, () => '');
  const start = (i: number): void => {
    // Its own process group, so kill -9 reaches the Erlang VM behind the start script.
    const child = spawn(path.join(RABBIT_BIN, 'rabbitmq-server'), [], { env: env(i), cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    output[i] = '';
    const keep = (d: Buffer) => (output[i] = (output[i]! + d.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', () => {
      if (procs[i] === child) procs[i] = undefined;
    });
    procs[i] = child;
  };
  const logTail = (i: number): string => {
    try {
      return fs.readFileSync(path.join(dir, `n${i}`, 'log', `${nodeNames[i]}.log`), 'utf8').slice(-3000);
    } catch (err) {
      return `(no log: ${(err as Error).message})`;
    }
  };
  const waitUp = async (i: number, until: number): Promise<void> => {
    for (;;) {
      if (!procs[i]) throw new Error(`rabbitmq node ${nodeNames[i]} exited while starting:\n${output[i]}\n(logs in ${path.join(dir, `n${i}`, 'log')})`);
      if ((await portOpen(ports[i]!.amqp)) && (await portOpen(ports[i]!.mqtt)) && (!o.management || (await portOpen(ports[i]!.mgmt)))) return;
      if (Date.now() > until) {
        throw new NodeDidNotStart(
          `rabbitmq node ${nodeNames[i]} did not open AMQP ${ports[i]!.amqp}, MQTT ${ports[i]!.mqtt}${o.management ? ` and management ${ports[i]!.mgmt}` : ''} within ${timeout} ms:\n${output[i]}\n--- the node's log, last lines:\n${logTail(i)}`,
        );
      }
      await sleep(200);
    }
  };
  const signalGroup = (i: number, sig: NodeJS.Signals): void => {
    const pid = procs[i]?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // already gone
    }
  };
  const waitExit = async (i: number, ms: number): Promise<boolean> => {
    const child = procs[i];
    if (!child) return true;
    return Promise.race([new Promise<boolean>((r) => child.once('exit', () => r(true))), sleep(ms).then(() => false)]);
  };
  const killNode = async (i: number): Promise<void> => {
    signalGroup(i, 'SIGKILL');
    await waitExit(i, 10_000);
    procs[i] = undefined;
  };
  const stopNode = async (i: number): Promise<void> => {
    signalGroup(i, 'SIGTERM');
    if (!(await waitExit(i, 30_000))) await killNode(i);
    // The VM may outlive the script by a moment: the group gets a last SIGKILL either way.
    const pid = procs[i]?.pid;
    if (pid !== undefined) signalGroup(i, 'SIGKILL');
    procs[i] = undefined;
  };
  // A runner that exits without stop() (a crash, process.exit) must not leave Erlang VMs behind:
  // they run detached, in their own process groups.
  const killOnExit = (): void => {
    for (const p of procs) {
      try {
        if (p?.pid !== undefined) process.kill(-p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', killOnExit);
  const stopAll = async (): Promise<void> => {
    await Promise.all(procs.map((_, i) => stopNode(i)));
    process.off('exit', killOnExit);
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    // One node at a time: two nodes joining at once can stall one of them for good. In a
    // clean-clone CI run node 1 sat after "rebuilding indices" for 90 s on both tries while
    // node 2 joined beside it; one by one, each join finds a settled cluster.
    for (let i = 0; i < n; i++) {
      start(i);
      await waitUp(i, Date.now() + timeout);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  const ctl = (i: number, args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = spawn(path.join(RABBIT_BIN, 'rabbitmqctl'), ['-n', nodeNames[i]!, '--timeout', '25', ...args], { env: env(i), cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('exit', (code) => {
        clearTimeout(t);
        if (code === 0) resolve(out);
        else reject(new Error(`rabbitmqctl ${args.join(' ')} on ${nodeNames[i]} exited ${code}: ${out}`));
      });
    });
  return {
    amqpUrls: ports.map((p) => `amqp://127.0.0.1:${p.amqp}`),
    mqttUrls: ports.map((p) => `mqtt://127.0.0.1:${p.mqtt}`),
    managementUrls: o.management ? ports.map((p) => `http://127.0.0.1:${p.mgmt}`) : [],
    nodeNames,
    dir,
    killNode,
    stopNode,
    startNode: async (i) => {
      if (procs[i]) throw new Error(`node ${nodeNames[i]} is running`);
      start(i);
      await waitUp(i, Date.now() + timeout);
    },
    ctl,
    stop: stopAll,
  };
}
