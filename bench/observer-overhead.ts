/**
 * bench/observer-overhead: what the observer costs the traffic it watches. Two test hosts run
 * TCP ping-pong (100-byte messages, round trips per second) and bulk transfer (bytes per
 * second), side by side in one run, configurations interleaved round by round:
 * - no observer;
 * - the observer, as a server runs it: one for the kernel, here watching both test hosts'
 *   namespaces and interfaces: sampling every 64 KiB; recording every segment (a sample per
 *   message / per MSS); watching another port (the traffic is unwatched);
 * - the floor: empty programs on exactly the observer's hooks (bench/bpf/empty_hooks.bpf.c),
 *   what the hooks alone cost before any program does any work;
 * - the same four with an observer per test host, as the manager provisions one per server:
 *   both test hosts share this kernel, so every global hook runs two programs (which also
 *   costs the tracepoint its direct call);
 * - the reference: a naive tracer on each host (a program on every hook of a cross-layer
 *   tracer, a ring-buffer record for every event, no filtering: bench/bpf/naive_tracer.bpf.c).
 * The observers are the real ones (records assembled and published to the local Redis). As a
 * low-latency deployment would, the traffic runs on one CPU (--traffic-cpu, default 1) and this
 * process (observers' user space, Redis) on the other, so the figures are the in-kernel cost
 * the traffic pays; every BPF program runs on the traffic's CPU. A separate pass with bpf_stats
 * on gives the median ns per run of each BPF program, sampling and every segment. Losses are
 * medians over rounds of each round's loss against that round's baseline; JSON and one line.
 *
 *   node dist/bench/observer-overhead.js [--seconds 3] [--rounds 5]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { benchObject, numberArg, median } from './common.js';
import { testbedUp, testbedDown, type Testbed, type TestbedHost } from '../local/testbed.js';
import { startRedis, stopRedis, redisRunning } from '../local/servers.js';
import { BpfObject, cgroupV2Root, enableBpfStats, inNetns } from '../native/addon.js';
import { Observer } from '../observer/observer.js';
import { projectRoot, workDir } from '../lib/paths.js';
import type { SamplingInfo } from '../conf/schema.js';

const execFileP = promisify(execFile);
const tool = join(projectRoot, 'dist', 'bench', 'tcpbench');
const seconds = numberArg('seconds', 3);
const rounds = numberArg('rounds', 5);
const trafficCpu = numberArg('traffic-cpu', 1);
const userCpu = trafficCpu === 0 ? 1 : 0;
const PORT = 7400;
const OTHER_PORT = 7401;

type Config =
  | 'baseline' | 'sampling' | 'everySegment' | 'unwatched' | 'emptyHooks'
  | 'samplingPerHost' | 'everySegmentPerHost' | 'unwatchedPerHost' | 'emptyHooksPerHost' | 'naiveTracer';
const CONFIGS: Config[] = [
  'baseline', 'sampling', 'everySegment', 'unwatched', 'emptyHooks',
  'samplingPerHost', 'everySegmentPerHost', 'unwatchedPerHost', 'emptyHooksPerHost', 'naiveTracer',
];
/** An observer per test host, as the manager provisions one per server; here both share one kernel. */
const perHost = (c: Config) => c.endsWith('PerHost');

async function runIn(h: TestbedHost, args: (string | number)[]): Promise<any> {
  const { stdout } = await execFileP('taskset', ['-c', String(trafficCpu), 'ip', 'netns', 'exec', h.netns, tool, ...args.map(String)], {
    timeout: (seconds + 30) * 1000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

function sampling(c: Config, workload: 'pingpong' | 'bulk'): SamplingInfo | undefined {
  if (c === 'baseline' || c === 'naiveTracer' || c.startsWith('emptyHooks')) return undefined;
  const size = c.startsWith('sampling') ? 65536 : workload === 'pingpong' ? 100 : 1448;
  return { size, interval: 0, ports: [c.startsWith('unwatched') ? OTHER_PORT : PORT], filter_retrans: true, histogram_interval: 0 };
}

/**
 * The reference: a naive tracer per host (bench/bpf/naive_tracer.bpf.c), the observer's hooks
 * with a ring-buffer record for every event and no filtering; drained on a timer and counted.
 */
async function withNaiveTracers<T>(tb: Testbed, fn: (events: () => { events: number; lost: number }) => Promise<T>): Promise<T> {
  const objs: BpfObject[] = [];
  const drains: { stop(): void }[] = [];
  let events = 0;
  try {
    for (const h of tb.hosts) {
      const o = BpfObject.open(benchObject('naive_tracer'));
      objs.push(o);
      for (const p of ['naive_enter_write', 'naive_enter_writev', 'naive_enter_sendto', 'naive_enter_sendmsg', 'naive_tcp_send', 'naive_dev_out', 'naive_dev_in', 'naive_tcp_recv', 'naive_sock_recv']) o.attach(p);
      o.attachCgroup('naive_ip_out', cgroupV2Root());
      inNetns(h.netns, () => o.attachTc('naive_ip_in', h.iface, 'ingress'));
      drains.push(o.ring('naive_events').poll(20, (_b, n) => (events += n)));
    }
    await new Promise((r) => setTimeout(r, 1000));
    return await fn(() => ({ events, lost: objs.reduce((s, o) => s + Number(o.map('naive_lost').perCpuValues(o.map('naive_lost').lookup(Buffer.alloc(4))!).reduce((a, v) => a + v.readBigUInt64LE(0), 0n)), 0) }));
  } finally {
    drains.forEach((d) => d.stop());
    objs.forEach((o) => o.close());
  }
}

/**
 * The floor: empty programs on exactly the observer's hooks (bench/bpf/empty_hooks.bpf.c), one
 * set per host or one for the kernel, attached as the observer attaches its own.
 */
async function withEmptyHooks<T>(tb: Testbed, one: boolean, fn: () => Promise<T>): Promise<T> {
  const objs: BpfObject[] = [];
  try {
    for (const h of one ? tb.hosts.slice(1) : tb.hosts) {
      const o = BpfObject.open(benchObject('empty_hooks'));
      objs.push(o);
      for (const p of ['empty_tcp_send', 'empty_tcp_recv', 'empty_sock_recv', 'empty_sock_state']) o.attach(p);
      for (const p of ['empty_ip_out', 'empty_ip_in', 'empty_sockops']) o.attachCgroup(p, cgroupV2Root());
      for (const x of one ? tb.hosts : [h])
        inNetns(x.netns, () => {
          o.attachTc('empty_dev_out', x.iface, 'egress');
          o.attachTc('empty_dev_in', x.iface, 'ingress');
        });
    }
    await new Promise((r) => setTimeout(r, 1000));
    return await fn();
  } finally {
    objs.forEach((o) => o.close());
  }
}

async function withObservers<T>(tb: Testbed, s: SamplingInfo | undefined, redis: { host: string; port: number; password: string }, fn: (obs: Observer[]) => Promise<T>, one = false): Promise<T> {
  // Loading and unloading programs leaves kernel work behind (verifier, RCU): let it settle
  // before every run, with or without observers, so all configurations start alike.
  const settle = () => new Promise((r) => setTimeout(r, 1000));
  if (!s) {
    await settle();
    return fn([]);
  }
  const obs = (one ? tb.hosts.slice(1) : tb.hosts).map(
    (h) =>
      new Observer({
        node: `bench-${h.name}`, redis, sampling: s, ownNetnsOnly: !one, netns: h.netns,
        interfaces: one ? tb.hosts.map((x) => `${x.netns}/eth0`) : ['eth0'],
        heartbeatMs: 1000, drainMs: 20, spoolDir: workDir('bench-spool', h.name), limits: { memoryBytes: 256 << 20, spoolBytes: 1 << 30, cpuShare: 1 },
        metrics: { host: '127.0.0.1', port: 0 }, bpfStats: false,
      }),
  );
  for (const o of obs) await o.start();
  await settle();
  try {
    return await fn(obs);
  } finally {
    for (const o of obs) await o.stop();
  }
}


async function main(): Promise<void> {
  // this process and its children (Redis) stay off the traffic's CPU
  await execFileP('taskset', ['-a', '-pc', String(userCpu), String(process.pid)]);
  const tb = await testbedUp({ id: 'bov', hosts: 2 });
  const hadRedis = redisRunning();
  const redis = await startRedis([tb.managerAddress]);
  const [client, server] = [tb.hosts[0]!, tb.hosts[1]!];
  const serve = (port: number) => execFile('taskset', ['-c', String(trafficCpu), 'ip', 'netns', 'exec', server.netns, tool, 'server', String(port)]);
  const srv = serve(PORT);
  const srv2 = serve(OTHER_PORT);
  await new Promise((r) => setTimeout(r, 300));
  const results: Record<Config, { rtt: number[]; bulk: number[]; records: number[]; dropped: number[] }> = Object.fromEntries(
    CONFIGS.map((c) => [c, { rtt: [], bulk: [], records: [], dropped: [] }]),
  ) as never;
  const port = () => PORT; // the traffic; "unwatched" observers watch OTHER_PORT instead
  try {
    for (let r = 0; r < rounds; r++) {
      for (const c of CONFIGS) {
        for (const w of ['pingpong', 'bulk'] as const) {
          const traffic = async () => {
            const out = w === 'pingpong' ? await runIn(client, ['pingpong', server.address, port(), seconds, 100]) : await runIn(client, ['bulk', server.address, port(), seconds]);
            if (w === 'pingpong') results[c].rtt.push(out.rtt_per_s);
            else results[c].bulk.push(out.bytes_per_s);
            await new Promise((res) => setTimeout(res, 100));
          };
          if (c.startsWith('emptyHooks'))
            await withEmptyHooks(tb, !perHost(c), async () => {
              await traffic();
              results[c].records.push(0);
              results[c].dropped.push(0);
            });
          else if (c === 'naiveTracer')
            await withNaiveTracers(tb, async (count) => {
              await traffic();
              results[c].records.push(count().events);
              results[c].dropped.push(count().lost);
            });
          else
            await withObservers(tb, sampling(c, w), redis, async (obs) => {
              await traffic();
              const recs = obs.reduce((s, o) => s + o.counters.assembler.records, 0);
              const dropped = obs.reduce((s, o) => s + Number(o.counters.probe.ringFull) + o.counters.publisher.overflow, 0);
              results[c].records.push(recs);
              results[c].dropped.push(dropped);
            }, !perHost(c));
        }
      }
      process.stderr.write(`round ${r + 1}/${rounds} done\n`);
    }
    // bpf_stats pass: every program's median cost on ping-pong, sampling and every segment
    // (ping-pong only: every segment of bulk traffic floods user space for minutes).
    const statsPass = async (c: Config): Promise<Record<string, number>> => {
      const perProgram: Record<string, number> = {};
      const stop = enableBpfStats();
      try {
        await withObservers(tb, sampling(c, 'pingpong'), redis, async (obs) => {
          await runIn(client, ['pingpong', server.address, PORT, seconds, 100]);
          for (const o of obs)
            for (const p of o.latencyProbe.programStats())
              if (p.runCount > 0n) perProgram[p.name] = Math.max(perProgram[p.name] ?? 0, Number(p.runTimeNs) / Number(p.runCount));
        }, !perHost(c));
      } finally {
        stop();
      }
      return perProgram;
    };
    const perProgram = await statsPass('sampling');
    const perProgramEvery = await statsPass('everySegment');
    const base = { rtt: median(results.baseline.rtt), bulk: median(results.baseline.bulk) };
    // Loss per round against that round's baseline, then the median: the VM's speed drifts
    // between rounds (bulk more than ping-pong), and pairing takes the drift out.
    const paired = (xs: number[], bs: number[]) => median(xs.map((x, i) => 1 - x / bs[i]!));
    const loss = (c: Config) => ({ pingpong: paired(results[c].rtt, results.baseline.rtt), bulk: paired(results[c].bulk, results.baseline.bulk) });
    const nsValues = Object.values(perProgram);
    const nsEvery = Object.values(perProgramEvery);
    const result = {
      bench: 'observer-overhead',
      secondsPerRun: seconds,
      rounds,
      pingpongRttPerSec: Object.fromEntries(CONFIGS.map((c) => [c, median(results[c].rtt)])),
      bulkBytesPerSec: Object.fromEntries(CONFIGS.map((c) => [c, median(results[c].bulk)])),
      loss: Object.fromEntries(CONFIGS.filter((c) => c !== 'baseline').map((c) => [c, loss(c)])) as Record<Exclude<Config, 'baseline'>, { pingpong: number; bulk: number }>,
      recordsPerRun: Object.fromEntries(CONFIGS.map((c) => [c, median(results[c].records)])),
      droppedTotal: Object.fromEntries(CONFIGS.map((c) => [c, results[c].dropped.reduce((a, b) => a + b, 0)])),
      bpfNsPerRun: perProgram,
      bpfNsPerRunMedian: nsValues.length ? median(nsValues) : 0,
      bpfNsPerRunEverySegment: perProgramEvery,
      bpfNsPerRunEverySegmentMedian: nsEvery.length ? median(nsEvery) : 0,
      trafficCpu,
      targets: { samplingLossMax: 0.02, everySegmentLossMax: 0.2, unwatchedLossMax: 0.01, nsPerHookMax: 150 },
    };
    console.log(JSON.stringify(result));
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const L = result.loss;
    console.log(
      `observer-overhead: ping-pong ${base.rtt.toFixed(0)} rt/s baseline; loss sampling ${pct(L.sampling.pingpong)}, every segment ${pct(L.everySegment.pingpong)}, unwatched ${pct(L.unwatched.pingpong)}; ` +
        `bulk ${(base.bulk / 1e9).toFixed(2)} GB/s baseline; loss sampling ${pct(L.sampling.bulk)}, every segment ${pct(L.everySegment.bulk)}, unwatched ${pct(L.unwatched.bulk)}; ` +
        `floor (empty programs on the same hooks) ${pct(L.emptyHooks.pingpong)} / ${pct(L.emptyHooks.bulk)}; ` +
        `an observer per test host (two on one kernel): sampling ${pct(L.samplingPerHost.pingpong)} / ${pct(L.samplingPerHost.bulk)}, every segment ${pct(L.everySegmentPerHost.pingpong)} / ${pct(L.everySegmentPerHost.bulk)}, unwatched ${pct(L.unwatchedPerHost.pingpong)} / ${pct(L.unwatchedPerHost.bulk)}, floor ${pct(L.emptyHooksPerHost.pingpong)} / ${pct(L.emptyHooksPerHost.bulk)} (ping-pong / bulk); ` +
        `reference naive tracer: ping-pong ${pct(L.naiveTracer.pingpong)}, bulk ${pct(L.naiveTracer.bulk)}; ` +
        `BPF median ${result.bpfNsPerRunMedian.toFixed(0)} ns/run sampling (max ${Math.max(...nsValues).toFixed(0)}), ${result.bpfNsPerRunEverySegmentMedian.toFixed(0)} every segment; ` +
        `targets 2% / 20% / 1% / 150 ns`,
    );
  } finally {
    srv.kill();
    srv2.kill();
    await testbedDown('bov');
    if (!hadRedis) await stopRedis();
    for (const h of tb.hosts) rmSync(workDir('bench-spool', h.name), { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench observer-overhead: ${(e as Error).message}`);
  process.exitCode = 1;
});
