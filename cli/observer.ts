/** `latscope observer --conf DIR`: run the observer on this server until SIGINT/SIGTERM or --duration. */
import { loadTls } from '../conf/tls.js';
import { confOption, numberIn } from './options.js';
import { Command } from 'commander';
import { spawn } from 'node:child_process';
import { constants, hostname } from 'node:os';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Observer, OBSERVER_HEAP_MB, OBSERVER_LIMITS } from '../observer/observer.js';
import { OBSERVER_METRICS } from '../observer/limits.js';
import { HOST_MODULES, type HostModuleName } from '../protocol/host.js';
import { loadConfFile, resolveSecret } from '../conf/load.js';
import { samplingInfo, redisInfo, pingInfo, meshInfo } from '../conf/schema.js';
import { startResponder, type Responder } from '../timesync/responder.js';
import { MeshProbing } from '../timesync/mesh-probing.js';
import { MESH_STREAM, MESH_STREAM_ENTRIES } from '../protocol/redis.js';
import { daemonLogger } from '../lib/log.js';
import { responderSettings } from '../conf/load.js';
import { workDir } from '../lib/paths.js';

interface Opts {
  conf: string;
  node?: string;
  interfaces?: string;
  allNetns: boolean;
  redisPasswordStdin: boolean;
  heartbeatMs: number;
  drainMs: number;
  metricsPort: number;
  metricsHost: string;
  spoolDir?: string;
  bpfStats: boolean;
  duration?: number;
  maxCpu: number;
  stopMs: number;
  json: boolean;
  jitter?: string;
}

/** Interfaces that are up, except loopback. */
function upInterfaces(): string[] {
  return readdirSync('/sys/class/net').filter((i) => {
    if (i === 'lo') return false;
    try {
      return readFileSync(`/sys/class/net/${i}/operstate`, 'utf8').trim() !== 'down';
    } catch {
      return false;
    }
  });
}

/**
 * Runs this same command again under a V8 heap bound (V8 takes it only at start); resolves with
 * its exit code. Signals sent to this process go on to it.
 */
async function underHeapLimit(mb: number): Promise<number> {
  // the IPC channel closes when this process dies, however it dies: the observer then stops itself
  const child = spawn(process.execPath, [`--max-old-space-size=${mb}`, ...process.execArgv, ...process.argv.slice(1)], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  return new Promise((done) => child.on('exit', (code, sig) => done(code ?? 128 + (sig ? constants.signals[sig] : 0))));
}

export function observerCommand(): Command {
  return new Command('observer')
    .description('run the observer on this server: attach the latency probes, publish records to Redis; SIGINT/SIGTERM detach everything')
    .addOption(confOption('sampling_info.yaml, redis_info.yaml, and ping_info.yaml to answer time-sync probes'))
    .option('--node <name>', "this server's name (default: the host name)")
    .option('--interfaces <list>', 'comma-separated interfaces whose crossings are the device layer (default: every interface that is up, but lo)')
    .option('--all-netns', 'watch every network namespace of the host (containers, VMs), not only its own', false)
    .option('--redis-password-stdin', 'read the Redis password from the first line of standard input (keeps it out of ps and logs)', false)
    .option('--heartbeat-ms <ms>', 'milliseconds between heartbeats', numberIn('--heartbeat-ms', 10, 3_600_000), 1000)
    .option('--drain-ms <ms>', 'milliseconds between ring-buffer drains', numberIn('--drain-ms', 1, 10_000), 20)
    .option('--metrics-port <port>', 'Prometheus endpoint port (0: none); a port in use is logged and counted, the observer runs on', numberIn('--metrics-port', 0, 65535), OBSERVER_METRICS.port)
    .option('--metrics-host <addr>', 'Prometheus endpoint address', OBSERVER_METRICS.address)
    .option('--spool-dir <dir>', 'where records wait while Redis is away (default: .work/spool/NODE)')
    .option('--bpf-stats', 'count run time of every BPF program (costs a little on each hook)', false)
    .option('--duration <s>', 'stop after this many seconds (default: run until stopped)', numberIn('--duration', 0.001, 31_536_000, true))
    .option('--max-cpu <share>', 'share of one core the ring reader may use; beyond, the ring fills and the kernel drops (counted)', numberIn('--max-cpu', 0.01, 64, true), OBSERVER_LIMITS.cpuShare)
    .option('--stop-ms <ms>', 'longest a stop spends sending; what is left goes to the disk spool for the next start', numberIn('--stop-ms', 0, 600_000), OBSERVER_LIMITS.stopMs)
    .option('--json', 'at exit, print the counters as one JSON object (records, published, spooled, drops by reason, stop time)', false)
    .option('--jitter <modules>', `host-jitter modules to run too, comma-separated (${HOST_MODULES.join(', ')}); their figures and outliers go to Redis with the histograms`)
    .action(async (o: Opts) => {
      if (!process.execArgv.some((a) => a.startsWith('--max-old-space-size'))) {
        process.exitCode = await underHeapLimit(OBSERVER_HEAP_MB);
        return;
      }
      const conf = resolve(o.conf);
      const jitter = (o.jitter ?? '').split(',').map((m) => m.trim()).filter(Boolean);
      for (const m of jitter) if (!HOST_MODULES.includes(m as HostModuleName)) throw new Error(`--jitter: "${m}" is not a module; choose from ${HOST_MODULES.join(', ')}`);
      const sampling = loadConfFile(conf, 'sampling_info.yaml', samplingInfo);
      const redis = loadConfFile(conf, 'redis_info.yaml', redisInfo);
      let password = resolveSecret(conf, 'redis_info.yaml', 'password', { value: redis.password, file: redis.password_file, env: redis.password_env });
      if (o.redisPasswordStdin) password = readFileSync(0, 'utf8').split('\n')[0]!.trim();
      const node = o.node ?? hostname();
      // a stop asked for while starting is kept, and done once started: the addon's own exit
      // cleanup would otherwise take the signal for an unhandled one and end the process midway
      // (on, not once: a second Ctrl-C must not kill the process halfway through its cleanup)
      let stopAsked = false;
      let wake: (() => void) | undefined;
      const askStop = () => ((stopAsked = true), wake?.());
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, askStop);
      // time sync: the responder (ping_info.yaml), and the probe mesh when the manager wrote mesh_info.yaml
      const ping = existsSync(join(conf, 'ping_info.yaml')) ? loadConfFile(conf, 'ping_info.yaml', pingInfo) : undefined;
      const respond = ping && responderSettings(conf, ping);
      const meshConf = ping && existsSync(join(conf, 'mesh_info.yaml')) ? loadConfFile(conf, 'mesh_info.yaml', meshInfo) : undefined;
      const mesh = meshConf && {
        iface: respond!.iface, port: respond!.port, key: respond!.key, nodes: meshConf.nodes, intervalMs: Math.round(meshConf.interval * 1000), probes: meshConf.probes,
        fullMesh: meshConf.full_mesh, ring: meshConf.ring, random: meshConf.random, timeoutMs: meshConf.timeout_ms, maxProbeRate: meshConf.max_probe_rate,
        manager: meshConf.manager,
      };
      const observer = new Observer({
        node,
        redis: { host: redis.address, port: redis.port, ...(redis.username ? { username: redis.username } : {}), password, signEntries: redis.observer_users && password !== undefined, ...(redis.tls ? { tls: loadTls(conf, 'redis_info.yaml', redis.tls) } : {}) },
        recordShards: redis.record_shards,
        sampling,
        interfaces: o.interfaces ? o.interfaces.split(',').filter(Boolean) : upInterfaces(),
        ownNetnsOnly: !o.allNetns,
        heartbeatMs: o.heartbeatMs,
        histogramMs: sampling.histogram_interval * 1000,
        drainMs: o.drainMs,
        spoolDir: o.spoolDir ?? workDir('spool', node),
        limits: { cpuShare: o.maxCpu, stopMs: o.stopMs, streamEntries: redis.max_stream_entries },
        jitter: jitter as HostModuleName[],
        metrics: { host: o.metricsHost, port: o.metricsPort },
        bpfStats: o.bpfStats,
      });
      await observer.start();
      let responder: Responder | undefined;
      try {
        if (respond) responder = await startResponder(respond);
      } catch (e) {
        await observer.stop();
        throw e;
      }
      // the probe mesh after the responder (which takes the interface's XDP hook); like a host
      // module, a mesh that cannot run is said and the observer goes on
      let probing: MeshProbing | undefined, meshError = '';
      if (mesh) {
        const log = daemonLogger('observer');
        probing = await MeshProbing.start(node, mesh, (fields) => observer.sendCapped(MESH_STREAM, MESH_STREAM_ENTRIES, fields), log).catch((e: Error) => {
          meshError = e.message;
          log.error({ node, err: e.message }, 'the probe mesh cannot run here; the observer goes on without it');
          return undefined;
        });
        if (probing) observer.countDrops('mesh_rounds', () => probing!.counters.unsent);
      }
      console.log(
        `observer ${node}: running (pid ${process.pid}), ports ${sampling.ports.join(',')}, sample every ${sampling.size} bytes` +
          (observer.metricsEndpoint ? `, metrics on ${observer.metricsEndpoint}` : o.metricsPort ? ', metrics endpoint unavailable (see the warning)' : '') +
          (responder ? `, time-sync responder ${responder.mode} on ${ping!.eth}:${ping!.port}${responder.fallbackReason ? ` (${responder.fallbackReason})` : ''}` : '') +
          (mesh ? (probing ? `, probe mesh to ${mesh.nodes.length - 1} servers${mesh.manager ? ' and the manager' : ''} every ${meshConf!.interval} s` : `, probe mesh NOT running (${meshError})`) : ''),
      );
      // the process that started this one under its heap bound died (a listener for it keeps
      // the IPC channel referenced, so only from here on: a failed start must still exit)
      process.on('disconnect', askStop);
      if (process.send && !process.connected) stopAsked = true;
      if (!stopAsked)
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (o.duration) setTimeout(resolve, o.duration * 1000);
        });
      await probing?.stop();
      await responder?.close();
      const stop = await observer.stop();
      const c = observer.counters;
      const dropped = Object.entries(c.drops).filter(([, n]) => n > 0);
      if (o.json)
        console.log(JSON.stringify({ node, records: c.assembler.records, published: c.publisher.published, spooled: stop.spooled, evicted: c.assembler.evicted, incomplete: c.assembler.incomplete, drops: c.drops, heldBack: c.publisher.heldBack, redisFull: c.publisher.redisFull, drainOverBudget: c.drainOverBudget, stopMs: stop.ms }));
      else
        console.log(
          `observer ${node}: stopped in ${stop.ms} ms, probes detached; ${c.assembler.records} records, ${c.publisher.published} published, ${stop.spooled} spooled for the next start, ` +
            (dropped.length ? `dropped: ${dropped.map(([k, n]) => `${k} ${n}`).join(', ')}` : 'nothing dropped'),
        );
      process.disconnect?.(); // the channel to the starting process would keep this one alive
    });
}
