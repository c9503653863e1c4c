/**
 * bench/observer-overhead: what the observer costs the traffic it watches. Two test hosts run
 * TCP ping-pong (100-byte messages, round trips per second) and bulk transfer (bytes per second),
 * side by side in one run, configurations interleaved round by round; and sockperf's TCP
 * ping-pong (Debian's sockperf, 100-byte messages: p50 and p99 round trip, a tool this project
 * did not write), one session per configuration with its hooks turned on and off every 500 ms
 * (bench/sockperf.ts: each side measured within half a second of the other, where separate runs
 * seconds apart measure the VM's drift as much as the hooks). The configurations:
 * - no observer;
 * - the observer, as a server runs it: one for the kernel, here watching both test hosts'
 *   namespaces and interfaces: the default configuration (a sample every 72,400 bytes and one a second, histograms scaled: one
 *   segment per 4 KiB timed); the same with histograms of every segment ("allHistograms", the
 *   default before) and of sampled segments only (histograms: samples, "samplesOnly");
 *   recording every segment (a sample per message / per MSS); watching another port (the
 *   traffic is unwatched);
 * - the floor: empty programs on exactly the observer's hooks (bench/bpf/empty_hooks.bpf.c),
 *   what the hooks alone cost before any program does any work;
 * - the realistic topology, the same four with an observer per test host on its own interface
 *   only, as the manager provisions one per server (one device crossing per direction per
 *   host); both test hosts share this kernel, so every global hook runs two programs (which
 *   also costs the tracepoint its direct call): its floor is two sets of empty programs;
 * - the reference: a naive tracer on each host (a program on every hook of a cross-layer
 *   tracer, a ring-buffer record for every event, no filtering: bench/bpf/naive_tracer.bpf.c).
 * The observers are the real ones (records assembled and published to the local Redis). As a
 * low-latency deployment would, the traffic runs on one CPU (--traffic-cpu, default 1) and this
 * process (observers' user space, Redis) on the other, so the figures are the in-kernel cost
 * the traffic pays; every BPF program runs on the traffic's CPU. A separate pass with bpf_stats
 * on gives the median ns per run of each BPF program, sampling and every segment. Losses are
 * medians over rounds of each round's loss against that round's baseline; each target of
 * issue 17 is printed against its figure, relative to the floor measured in the same run.
 * sockperf's figures: the hooks-on windows' percentiles minus the hooks-off windows' (p50 and
 * p99), in each of 5 groups of consecutive windows, and the median of the 5: a burst of the VM
 * (a few ms of slow round trips) moves one group's p99 by microseconds, and the figure pooled
 * over all windows with it; sockperfSessions has every group's, and the pooled. JSON and one line.
 *
 * --breakdown measures instead what each part of the per-segment work costs: the probe built up
 * to each cost stage of latency.bpf.c (LT_STAGE: 1 the watched test, 2 + flow state and clock,
 * 3 + matching and samples, 4 + histograms, the observer's), ns per program run and ping-pong
 * loss, interleaved with the baseline and the floor.
 *
 * By default it runs the configurations the targets are about (no observer, sampling, samples
 * only, every segment, unwatched, the floor) in 3 rounds of 2 s per workload and a sockperf
 * session of 12 s each, within 5 minutes, and the ns per run of histograms of every segment;
 * --all adds their traffic runs, the realistic topology and the naive tracer. SIGTERM and
 * Ctrl-C stop it after the run in progress, and it removes its testbed, its servers and its
 * records either way.
 *
 *   node dist/bench/observer-overhead.js [--seconds 2] [--rounds 3] [--sockperf-seconds 12] [--all] [--breakdown]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { benchObject, checkStop, median, numberArg, stopOnSignals } from './common.js';
import { sockperfToggled, type Hooks, type Percentiles, type ToggledFigures } from './sockperf.js';
import { testbedUp, testbedDown, type Testbed, type TestbedHost } from '../local/testbed.js';
import { startRedis, stopRedis, redisRunning } from '../local/servers.js';
import { BpfObject, cgroupV2Root, enableBpfStats, inNetns } from '../native/addon.js';
import { Observer } from '../observer/observer.js';
import { LatencyProbe, type HistogramMode } from '../observer/probe.js';
import { projectRoot, workDir } from '../lib/paths.js';
import { samplingInfo, type SamplingInfo } from '../conf/schema.js';
import { RECORD_STREAM, entryFields } from '../protocol/redis.js';
import { Redis } from 'ioredis';

const execFileP = promisify(execFile);
const tool = join(projectRoot, 'dist', 'bench', 'tcpbench');
const seconds = numberArg('seconds', 2);
const rounds = numberArg('rounds', 3);
const sockperfSeconds = numberArg('sockperf-seconds', 12);
stopOnSignals(); // checkStop() between runs: its testbed is removed on the way out
const trafficCpu = numberArg('traffic-cpu', 1);
const userCpu = trafficCpu === 0 ? 1 : 0;
const PORT = 7400;
const OTHER_PORT = 7401;
const SOCKPERF_PORT = 7402;

type Config =
  | 'baseline' | 'sampling' | 'allHistograms' | 'samplesOnly' | 'everySegment' | 'unwatched' | 'emptyHooks'
  | 'samplingPerHost' | 'samplesOnlyPerHost' | 'everySegmentPerHost' | 'unwatchedPerHost' | 'emptyHooksPerHost' | 'naiveTracer';
const MAIN: Config[] = ['baseline', 'sampling', 'samplesOnly', 'everySegment', 'unwatched', 'emptyHooks'];
const MORE: Config[] = ['allHistograms', 'samplingPerHost', 'samplesOnlyPerHost', 'everySegmentPerHost', 'unwatchedPerHost', 'emptyHooksPerHost', 'naiveTracer'];
const CONFIGS: Config[] = process.argv.includes('--all') ? [...MAIN, ...MORE] : MAIN;
/** An observer per test host, as the manager provisions one per server; here both share one kernel. */
const perHost = (c: Config) => c.endsWith('PerHost');

async function runIn(h: TestbedHost, args: (string | number)[]): Promise<any> {
  const { stdout } = await execFileP('taskset', ['-c', String(trafficCpu), 'ip', 'netns', 'exec', h.netns, tool, ...args.map(String)], {
    timeout: (seconds + 30) * 1000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

type Workload = 'pingpong' | 'bulk' | 'sockperf';

function sampling(c: Config, workload: Workload): SamplingInfo | undefined {
  if (c === 'baseline' || c === 'naiveTracer' || c.startsWith('emptyHooks')) return undefined;
  const ports = c.startsWith('unwatched') ? [OTHER_PORT] : [PORT, SOCKPERF_PORT];
  // the default configuration (sample size, interval rule, scaled histograms), as a server runs it
  const defaults = samplingInfo.parse({ ports, histogram_interval: 0 });
  if (c.startsWith('sampling')) return defaults;
  if (c.startsWith('samplesOnly')) return { ...defaults, histograms: 'samples' };
  if (c === 'allHistograms') return { ...defaults, histograms: 'all' };
  return { ...defaults, size: workload === 'bulk' ? 1448 : 100, interval: 0, histograms: 'all' };
}

/**
 * The reference: a naive tracer per host (bench/bpf/naive_tracer.bpf.c), the observer's hooks
 * with a ring-buffer record for every event and no filtering; drained on a timer and counted.
 */
async function withNaiveTracers<T>(tb: Testbed, fn: (events: () => { events: number; lost: number }, hooks: Hooks) => Promise<T>): Promise<T> {
  const objs: BpfObject[] = [];
  const drains: { stop(): void }[] = [];
  let events = 0;
  const attach = (o: BpfObject, h: TestbedHost) => {
    for (const p of ['naive_enter_write', 'naive_enter_writev', 'naive_enter_sendto', 'naive_enter_sendmsg', 'naive_tcp_send', 'naive_dev_out', 'naive_dev_in', 'naive_tcp_recv', 'naive_sock_recv']) o.attach(p);
    o.attachCgroup('naive_ip_out', cgroupV2Root());
    inNetns(h.netns, () => o.attachTc('naive_ip_in', h.iface, 'ingress'));
  };
  try {
    for (const h of tb.hosts) {
      const o = BpfObject.open(benchObject('naive_tracer'));
      objs.push(o);
      attach(o, h);
      drains.push(o.ring('naive_events').poll(20, (_b, n) => (events += n)));
    }
    await new Promise((r) => setTimeout(r, 500));
    const hooks: Hooks = { on: () => objs.forEach((o, i) => attach(o, tb.hosts[i]!)), off: () => objs.forEach((o) => o.detachAll()) };
    return await fn(() => ({ events, lost: objs.reduce((s, o) => s + Number(o.map('naive_lost').perCpuValues(o.map('naive_lost').lookup(Buffer.alloc(4))!).reduce((a, v) => a + v.readBigUInt64LE(0), 0n)), 0) }), hooks);
  } finally {
    drains.forEach((d) => d.stop());
    objs.forEach((o) => o.close());
  }
}

/**
 * The floor: empty programs on exactly the observer's hooks (bench/bpf/empty_hooks.bpf.c), one
 * set per host or one for the kernel, attached as the observer attaches its own.
 */
async function withEmptyHooks<T>(tb: Testbed, one: boolean, fn: (objs: BpfObject[], hooks: Hooks) => Promise<T>): Promise<T> {
  const objs: BpfObject[] = [];
  const hosts = one ? tb.hosts.slice(1) : tb.hosts;
  const attach = (o: BpfObject, h: TestbedHost) => {
    for (const p of ['empty_tcp_send', 'empty_tcp_recv', 'empty_sock_recv', 'empty_sock_state']) o.attach(p);
    for (const p of ['empty_ip_out', 'empty_ip_in', 'empty_sockops']) o.attachCgroup(p, cgroupV2Root());
    for (const x of one ? tb.hosts : [h])
      inNetns(x.netns, () => {
        o.attachTc('empty_dev_out', x.iface, 'egress');
        o.attachTc('empty_dev_in', x.iface, 'ingress');
      });
  };
  try {
    for (const h of hosts) {
      const o = BpfObject.open(benchObject('empty_hooks'));
      objs.push(o);
      attach(o, h);
    }
    await new Promise((r) => setTimeout(r, 500));
    return await fn(objs, { on: () => objs.forEach((o, i) => attach(o, hosts[i]!)), off: () => objs.forEach((o) => o.detachAll()) });
  } finally {
    objs.forEach((o) => o.close());
  }
}

async function withObservers<T>(tb: Testbed, s: SamplingInfo | undefined, redis: { host: string; port: number; password: string }, fn: (obs: Observer[], hooks: Hooks) => Promise<T>, one = false): Promise<T> {
  // Loading and unloading programs leaves kernel work behind (verifier, RCU): let it settle
  // before every run, with or without observers, so all configurations start alike.
  const settle = () => new Promise((r) => setTimeout(r, 500));
  if (!s) {
    await settle();
    return fn([], { on() {}, off() {} });
  }
  const hosts = one ? tb.hosts.slice(1) : tb.hosts;
  const obs = hosts.map(
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
  // each observer's probe in its own namespace, where its interfaces without one are
  const hooks: Hooks = { on: () => obs.forEach((o, i) => inNetns(hosts[i]!.netns, () => o.latencyProbe.attach())), off: () => obs.forEach((o) => o.latencyProbe.detachAll()) };
  try {
    return await fn(obs, hooks);
  } finally {
    for (const o of obs) await o.stop();
  }
}


/** The probe alone (no observer's user space), built up to a cost stage; its ring drained and dropped. */
async function withProbeStage<T>(tb: Testbed, stage: number, fn: (p: LatencyProbe) => Promise<T>, histograms: HistogramMode = 'all'): Promise<T> {
  const s = sampling('sampling', 'pingpong')!;
  const p = LatencyProbe.open({
    ports: s.ports, sampleSize: s.size, intervalNs: 0n, filterRetrans: true, netnsIno: 0, histograms,
    interfaces: tb.hosts.map((x) => `${x.netns}/eth0`),
    object: stage < 4 ? benchObject(`latency_stage${stage}`) : undefined,
  });
  const drain = p.ring.poll(20, () => {});
  try {
    await new Promise((r) => setTimeout(r, 1000));
    return await fn(p);
  } finally {
    drain.stop();
    p.close();
  }
}

/** Each program's ns per run (bpf_stats) while `run` makes traffic. */
async function programCosts(programs: () => { name: string; runCount: bigint; runTimeNs: bigint }[][], run: () => Promise<unknown>): Promise<Record<string, number>> {
  const perProgram: Record<string, number> = {};
  const stop = enableBpfStats();
  try {
    await run();
    for (const list of programs())
      for (const p of list) if (p.runCount > 0n) perProgram[p.name] = Math.max(perProgram[p.name] ?? 0, Number(p.runTimeNs) / Number(p.runCount));
  } finally {
    stop();
  }
  return perProgram;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const paired = (xs: number[], bs: number[]) => median(xs.map((x, i) => 1 - x / bs[i]!));

/**
 * Single operations of the per-segment work, each run OPS times in a program of
 * bench/bpf/hook_parts.bpf.c with BPF_PROG_TEST_RUN (bpftool prog run): ns per operation, the
 * empty program's run taken out. Pinned in a bpffs folder of its own, removed after.
 */
async function hookParts(): Promise<Record<string, number>> {
  const OPS = 64;
  const pins = `/sys/fs/bpf/latscope-bench-parts-${process.pid}`;
  const pkt = join(workDir('bench-parts'), 'packet');
  mkdirSync(workDir('bench-parts'), { recursive: true });
  writeFileSync(pkt, Buffer.alloc(64));
  const run = async (prog: string, repeat: number) => {
    const { stdout } = await execFileP('taskset', ['-c', String(trafficCpu), 'bpftool', 'prog', 'run', 'pinned', `${pins}/${prog}`, 'data_in', pkt, 'repeat', String(repeat)]);
    const m = /duration(?: \(average\))?: (\d+)ns/.exec(stdout);
    if (!m) throw new Error(`bpftool prog run ${prog} printed no duration: ${stdout}`);
    return Number(m[1]);
  };
  try {
    await execFileP('bpftool', ['prog', 'loadall', benchObject('hook_parts'), pins]);
    await run('parts_fill', 1);
    const per = async (prog: string) => {
      const runs: number[] = [];
      for (let i = 0; i < 3; i++) runs.push(await run(prog, 20000)); // one at a time: a shared CPU
      return median(runs);
    };
    const empty = await per('parts_empty');
    const op = async (prog: string) => Math.max(0, (await per(prog)) - empty) / OPS;
    return { programRun: empty, clock: await op('parts_clock'), hashMapLookup: await op('parts_hash_lookup'), flowTableLookup: await op('parts_table_lookup') };
  } finally {
    rmSync(pins, { recursive: true, force: true });
    rmSync(workDir('bench-parts'), { recursive: true, force: true });
  }
}

/** --breakdown: what each part of the per-segment work costs (module comment). */
async function breakdown(tb: Testbed, pingpong: () => Promise<number>): Promise<void> {
  const STAGES = [1, 2, 3, 4];
  const rtt: Record<string, number[]> = { baseline: [], floor: [], ...Object.fromEntries(STAGES.map((n) => [`stage${n}`, []])), samplesOnly: [] };
  for (let r = 0; r < rounds; r++) {
    await new Promise((res) => setTimeout(res, 1000));
    rtt.baseline!.push(await pingpong());
    await withEmptyHooks(tb, true, async () => void rtt.floor!.push(await pingpong()));
    for (const n of STAGES) await withProbeStage(tb, n, async () => void rtt[`stage${n}`]!.push(await pingpong()));
    await withProbeStage(tb, 4, async () => void rtt.samplesOnly!.push(await pingpong()), 'samples');
    process.stderr.write(`round ${r + 1}/${rounds} done\n`);
  }
  const ns: Record<string, Record<string, number>> = {};
  ns.floor = await withEmptyHooks(tb, true, (objs) => programCosts(() => objs.map((o) => o.programs().map((p) => ({ name: p.name, ...o.programStats(p.name) }))), pingpong));
  for (const n of STAGES) ns[`stage${n}`] = await withProbeStage(tb, n, (p) => programCosts(() => [p.programStats()], pingpong));
  ns.samplesOnly = await withProbeStage(tb, 4, (p) => programCosts(() => [p.programStats()], pingpong), 'samples');
  const parts = await hookParts();
  const loss = Object.fromEntries(Object.keys(rtt).filter((k) => k !== 'baseline').map((k) => [k, paired(rtt[k]!, rtt.baseline!)]));
  const medianNs = Object.fromEntries(Object.entries(ns).map(([k, v]) => [k, median(Object.values(v))]));
  const result = {
    bench: 'observer-overhead-breakdown', secondsPerRun: seconds, rounds, trafficCpu,
    stages: { 1: 'the watched test (port table, headers)', 2: '+ flow state (flow table lookup), sampling decision and clock', 3: '+ matching (ring search, push), sample records', 4: '+ histograms and counters (the observer)', samplesOnly: 'the observer with histograms of samples only' },
    pingpongRttPerSec: Object.fromEntries(Object.entries(rtt).map(([k, v]) => [k, median(v)])),
    pingpongLoss: loss, bpfNsPerRun: ns, bpfNsPerRunMedian: medianNs, nsPerOperation: parts,
  };
  console.log(JSON.stringify(result));
  console.log(
    `observer-overhead breakdown (sampling every 64 KiB, ping-pong): floor ${pct(loss.floor!)} loss, median ${medianNs.floor!.toFixed(0)} ns/run; ` +
      STAGES.map((n) => `stage ${n} ${pct(loss[`stage${n}`]!)} loss, median ${medianNs[`stage${n}`]!.toFixed(0)} ns/run`).join('; ') +
      `; histograms of samples only ${pct(loss.samplesOnly!)} loss, median ${medianNs.samplesOnly!.toFixed(0)} ns/run` +
      `; per operation: clock ${parts.clock!.toFixed(1)} ns, flow lookup in a hash map ${parts.hashMapLookup!.toFixed(1)} ns, in the flow table ${parts.flowTableLookup!.toFixed(1)} ns`,
  );
}

/**
 * Takes the bench's own records out of the records stream again: nothing ingests them, and a
 * stream left longer than max_stream_entries holds every later observer back.
 */
async function removeBenchRecords(info: { host: string; port: number; password: string }, sinceMs: number): Promise<number> {
  const r = new Redis({ ...info, lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => {});
  let removed = 0;
  try {
    await r.connect();
    for (let start = `${sinceMs}-0`; ; ) {
      const batch = await r.xrange(RECORD_STREAM, start, '+', 'COUNT', 1000);
      if (batch.length === 0) break;
      const ids = batch.filter(([, f]) => entryFields(f).get('node')?.startsWith('bench-')).map(([id]) => id);
      if (ids.length) removed += await r.xdel(RECORD_STREAM, ...ids);
      start = `(${batch[batch.length - 1]![0]}`;
    }
  } finally {
    r.disconnect();
  }
  return removed;
}

async function main(): Promise<void> {
  // this process and its children (Redis) stay off the traffic's CPU
  await execFileP('taskset', ['-a', '-pc', String(userCpu), String(process.pid)]);
  const tb = await testbedUp({ id: 'bov', hosts: 2 });
  const hadRedis = redisRunning();
  const redis = await startRedis([tb.managerAddress]);
  const startedMs = Date.now();
  const [client, server] = [tb.hosts[0]!, tb.hosts[1]!];
  const inServer = (...args: string[]) => execFile('taskset', ['-c', String(trafficCpu), 'ip', 'netns', 'exec', server.netns, ...args]);
  const servers = [
    inServer(tool, 'server', String(PORT)),
    inServer(tool, 'server', String(OTHER_PORT)),
    inServer('sockperf', 'server', '--tcp', '-i', server.address, '-p', String(SOCKPERF_PORT)),
  ];
  await new Promise((r) => setTimeout(r, 500));
  const pingpong = async () => (await runIn(client, ['pingpong', server.address, PORT, seconds, 100])).rtt_per_s as number;
  type Runs = { rtt: number[]; bulk: number[]; records: number[]; dropped: number[] };
  const results: Record<Config, Runs> = Object.fromEntries(CONFIGS.map((c) => [c, { rtt: [], bulk: [], records: [], dropped: [] }])) as never;
  try {
    if (process.argv.includes('--breakdown')) return await breakdown(tb, pingpong);
    for (let r = 0; r < rounds; r++) {
      for (const c of CONFIGS) {
        // the workloads that run under the same settings share one setup (a second each to settle, and an observer's start and stop)
        const groups = new Map<string, Workload[]>();
        for (const w of ['pingpong', 'bulk'] as const) {
          const key = JSON.stringify(sampling(c, w) ?? null);
          groups.set(key, [...(groups.get(key) ?? []), w]);
        }
        for (const ws of groups.values()) {
          checkStop();
          const traffic = async () => {
            for (const w of ws) {
              if (w === 'pingpong') results[c].rtt.push(await pingpong());
              else results[c].bulk.push((await runIn(client, ['bulk', server.address, PORT, seconds])).bytes_per_s);
              await new Promise((res) => setTimeout(res, 100));
            }
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
            await withObservers(tb, sampling(c, ws[0]!), redis, async (obs) => {
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
    // sockperf: a session per configuration, its hooks toggled (bench/sockperf.ts)
    const sessions = {} as Record<Exclude<Config, 'baseline'>, ToggledFigures>;
    mkdirSync(workDir('bench-sockperf'), { recursive: true });
    for (const c of CONFIGS) {
      if (c === 'baseline') continue;
      checkStop();
      const run = (hooks: Hooks) =>
        sockperfToggled({ netns: client.netns, cpu: trafficCpu, address: server.address, port: SOCKPERF_PORT, seconds: sockperfSeconds, hooks, logPath: join(workDir('bench-sockperf'), 'full.log') });
      if (c.startsWith('emptyHooks')) sessions[c] = await withEmptyHooks(tb, !perHost(c), (_o, hooks) => run(hooks));
      else if (c === 'naiveTracer') sessions[c] = await withNaiveTracers(tb, (_n, hooks) => run(hooks));
      else sessions[c] = await withObservers(tb, sampling(c, 'sockperf'), redis, (_o, hooks) => run(hooks), !perHost(c));
      process.stderr.write(`sockperf ${c} done\n`);
    }
    // bpf_stats pass: every program's median cost on ping-pong, sampling and every segment
    // (ping-pong only: every segment of bulk traffic floods user space for minutes).
    const statsPass = (c: Config) => (checkStop(), withObservers(tb, sampling(c, 'pingpong'), redis, (obs) => programCosts(() => obs.map((o) => o.latencyProbe.programStats()), pingpong), !perHost(c)));
    const perProgram = await statsPass('sampling');
    const perProgramAll = await statsPass('allHistograms');
    const perProgramSamplesOnly = await statsPass('samplesOnly');
    const perProgramEvery = await statsPass('everySegment');
    const base = { rtt: median(results.baseline.rtt), bulk: median(results.baseline.bulk) };
    // Loss per round against that round's baseline, then the median: the VM's speed drifts
    // between rounds (bulk more than ping-pong), and pairing takes the drift out.
    const loss = (c: Config) => ({ pingpong: paired(results[c].rtt, results.baseline.rtt), bulk: paired(results[c].bulk, results.baseline.bulk) });
    const nsValues = Object.values(perProgram);
    const nsEvery = Object.values(perProgramEvery);
    const L = Object.fromEntries(CONFIGS.filter((c) => c !== 'baseline').map((c) => [c, loss(c)])) as Record<Exclude<Config, 'baseline'>, { pingpong: number; bulk: number }>;
    const nsMedian = nsValues.length ? median(nsValues) : 0;
    const nsSamplesOnly = Object.values(perProgramSamplesOnly);
    const nsMedianSamplesOnly = nsSamplesOnly.length ? median(nsSamplesOnly) : 0;
    // issue 17's targets, against the floor measured in this run (it moves with the machine)
    const target = (value: number, max: number) => ({ value, max, met: value <= max });
    const floorPp = L.emptyHooks.pingpong;
    const targets = {
      samplingAboveFloor: target(L.sampling.pingpong - floorPp, 0.03),
      everySegmentAboveFloor: target(L.everySegment.pingpong - floorPp, 0.07),
      unwatchedAboveFloor: target(L.unwatched.pingpong - floorPp, 0.005),
      samplingNsPerRunMedian: target(nsMedian, 110),
      sockperfP50AddedBySamplingUs: target(sessions.sampling.added.p50, 1.5),
      sockperfP99AddedBySamplingUs: target(sessions.sampling.added.p99, 3),
      // the same three for sampling with histograms of samples only
      samplesOnlyAboveFloor: target(L.samplesOnly.pingpong - floorPp, 0.03),
      samplesOnlyNsPerRunMedian: target(nsMedianSamplesOnly, 110),
      sockperfP50AddedBySamplesOnlyUs: target(sessions.samplesOnly.added.p50, 1.5),
    };
    const result = {
      bench: 'observer-overhead',
      secondsPerRun: seconds,
      rounds,
      pingpongRttPerSec: Object.fromEntries(CONFIGS.map((c) => [c, median(results[c].rtt)])),
      bulkBytesPerSec: Object.fromEntries(CONFIGS.map((c) => [c, median(results[c].bulk)])),
      /** Bulk throughput of each configuration over the baseline's (1: no cost). */
      bulkThroughputRatio: Object.fromEntries(CONFIGS.filter((c) => c !== 'baseline').map((c) => [c, median(results[c].bulk) / base.bulk])),
      sockperfSeconds,
      /** Round trip with the hooks on; the baseline: with the default configuration's off. */
      sockperfRoundTripUs: { baseline: sessions.sampling.off, ...Object.fromEntries(Object.entries(sessions).map(([c, f]) => [c, f.on])) } as Record<Config, Percentiles>,
      sockperfAddedUs: Object.fromEntries(Object.entries(sessions).map(([c, f]) => [c, f.added])) as Record<Exclude<Config, 'baseline'>, Percentiles>,
      /** Each session whole: both sides pooled, each group's added figures, its counts. */
      sockperfSessions: sessions,
      loss: L,
      recordsPerRun: Object.fromEntries(CONFIGS.map((c) => [c, median(results[c].records)])),
      droppedTotal: Object.fromEntries(CONFIGS.map((c) => [c, results[c].dropped.reduce((a, b) => a + b, 0)])),
      bpfNsPerRun: perProgram,
      bpfNsPerRunMedian: nsMedian,
      bpfNsPerRunAllHistograms: perProgramAll,
      bpfNsPerRunAllHistogramsMedian: Object.values(perProgramAll).length ? median(Object.values(perProgramAll)) : 0,
      bpfNsPerRunSamplesOnly: perProgramSamplesOnly,
      bpfNsPerRunSamplesOnlyMedian: nsMedianSamplesOnly,
      bpfNsPerRunEverySegment: perProgramEvery,
      bpfNsPerRunEverySegmentMedian: nsEvery.length ? median(nsEvery) : 0,
      trafficCpu,
      targets,
    };
    console.log(JSON.stringify(result));
    const us = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(2)} µs`;
    const pts = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}`;
    const SA = result.sockperfAddedUs;
    const t = targets;
    const mark = (x: { met: boolean }) => (x.met ? 'met' : 'MISSED');
    // the figures that hold still on a noisy VM first (ns per run, sockperf added, bulk), ping-pong loss after
    const bulkRatio = (c: Config) => median(results[c].bulk) / base.bulk;
    const more = L.samplingPerHost
      ? `; realistic topology (an observer per host on its own interface; two on this kernel): ping-pong loss sampling ${pct(L.samplingPerHost.pingpong)}, samples only ${pct(L.samplesOnlyPerHost.pingpong)}, every segment ${pct(L.everySegmentPerHost.pingpong)}, unwatched ${pct(L.unwatchedPerHost.pingpong)}, floor ${pct(L.emptyHooksPerHost.pingpong)}; sockperf p50 sampling ${us(SA.samplingPerHost.p50)}, samples only ${us(SA.samplesOnlyPerHost.p50)}, floor ${us(SA.emptyHooksPerHost.p50)}; ` +
        `reference naive tracer: ping-pong ${pct(L.naiveTracer.pingpong)}, bulk ${pct(L.naiveTracer.bulk)}`
      : '';
    console.log(
      `observer-overhead: BPF median ${nsMedian.toFixed(0)} ns/run sampling (max 110: ${mark(t.samplingNsPerRunMedian)}; max program ${Math.max(...nsValues).toFixed(0)}), ${result.bpfNsPerRunAllHistogramsMedian.toFixed(0)} with histograms of every segment, ${nsMedianSamplesOnly.toFixed(0)} samples only, ${result.bpfNsPerRunEverySegmentMedian.toFixed(0)} every segment; ` +
        `sockperf p50/p99 ${sessions.sampling.off.p50.toFixed(2)}/${sessions.sampling.off.p99.toFixed(2)} µs hooks off, added by sampling ${us(SA.sampling.p50)}/${us(SA.sampling.p99)} (max 1.5/3: ${mark(t.sockperfP50AddedBySamplingUs)}/${mark(t.sockperfP99AddedBySamplingUs)}; median of ${sessions.sampling.groups.length} group${sessions.sampling.groups.length === 1 ? '' : 's'} of windows: ${sessions.sampling.groups.map((h) => `${us(h.p50)}/${us(h.p99)}`).join(', ')}; all windows pooled ${us(sessions.sampling.pooled.p50)}/${us(sessions.sampling.pooled.p99)}), ${SA.allHistograms ? `with histograms of every segment ${us(SA.allHistograms.p50)}/${us(SA.allHistograms.p99)}, ` : ''}samples only ${us(SA.samplesOnly.p50)}/${us(SA.samplesOnly.p99)}, every segment ${us(SA.everySegment.p50)}/${us(SA.everySegment.p99)}, unwatched ${us(SA.unwatched.p50)}, floor ${us(SA.emptyHooks.p50)}/${us(SA.emptyHooks.p99)}; ` +
        `bulk ${(base.bulk / 1e9).toFixed(2)} GB/s baseline, x${bulkRatio('sampling').toFixed(3)} sampling, x${bulkRatio('everySegment').toFixed(3)} every segment, x${bulkRatio('emptyHooks').toFixed(3)} floor; ` +
        `ping-pong ${base.rtt.toFixed(0)} rt/s baseline, loss sampling ${pct(L.sampling.pingpong)} (${pts(t.samplingAboveFloor.value)} points above the floor, max +3: ${mark(t.samplingAboveFloor)}), samples only ${pct(L.samplesOnly.pingpong)}, every segment ${pct(L.everySegment.pingpong)} (${pts(t.everySegmentAboveFloor.value)}, max +7: ${mark(t.everySegmentAboveFloor)}), unwatched ${pct(L.unwatched.pingpong)} (${pts(t.unwatchedAboveFloor.value)}, max +0.5: ${mark(t.unwatchedAboveFloor)}), floor ${pct(floorPp)}` +
        more,
    );
  } finally {
    servers.forEach((s) => s.kill());
    await testbedDown('bov');
    await removeBenchRecords(redis, startedMs).catch((e) => console.error(`bench observer-overhead: its records stay in ${RECORD_STREAM}: ${(e as Error).message}`));
    if (!hadRedis) await stopRedis();
    for (const h of tb.hosts) rmSync(workDir('bench-spool', h.name), { recursive: true, force: true });
    rmSync(workDir('bench-sockperf'), { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench observer-overhead: ${(e as Error).message}`);
  process.exitCode = 1;
});
