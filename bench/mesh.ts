/**
 * bench/mesh: clocks solved over a probe mesh against the star (the manager probing every server,
 * one way), side by side (issue 26):
 * - on the testbed: --hosts (default 8) hosts as namespaces on two subnets joined by a router;
 *   each runs the XDP responder; the manager's prober probes every host (the star) and two
 *   anchors, one per subnet; each host probes its peers with `latscope timesync probe` from its
 *   own namespace (t1 and t4 at tc on its interface). All namespaces share one clock, so every
 *   true offset is 0: an estimate's error is its value. Reported: each host's offset error
 *   against the manager (starP99ErrorNs, meshP99ErrorNs, boundCoverage), and the error of
 *   every pair's difference, what a one-way delay between two servers needs (…PairP99ErrorNs).
 *   The anchors probe the manager's responder too (as with the mesh on), so they are probed
 *   both ways. The mesh's rounds are solved together as the analysis does (each edge carried to
 *   its round's time along the fitted drifts), and also each on its own as if its edges were
 *   simultaneous (`simultaneous`). 30 rounds by default: a clock's line is fitted over the 8
 *   rounds either side of a round, as the analysis does over a day of rounds, and fewer rounds
 *   leave the windows half empty (10 rounds: 211-236 ns p99; 30: 57-76 ns since the anchors only place the mesh, 75-105 ns before). --skew puts each host on a synthetic clock (an offset and a
 *   drift on its responder's and its prober's stamps), so the truth is known, not 0, and drifts.
 * - simulated: --servers (default 1,000) servers (timesync/simulate.ts), the anchors probed both
 *   ways: p99 errors, bound coverage and the time of one solve (solve1000Ms).
 * - drifting: --drift-servers (default 200) simulated servers whose clocks drift --drift-ppm
 *   (default 20) apart, each round's edges measured over --round-ms (default 5,000): the rounds
 *   solved with the drifts (what the analysis does) vs as if each round's edges were simultaneous.
 *
 *   node dist/bench/mesh.js [--hosts 8] [--rounds 30] [--probes 200] [--testbed-anchors 2] [--skew [--skew-us 500] [--skew-ppm 20]] [--verbose] [--servers 1000] [--sim-rounds 5] [--bias-ns 300] [--asymmetry-ns 40] [--noise-ns 20] [--anchors 4] [--drift-servers 200] [--drift-rounds 6] [--drift-ppm 20] [--round-ms 5000] [--no-testbed]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { checkStop, median, numberArg, quantile, stopOnSignals } from './common.js';
import { MANAGER, solveMesh, solveMeshExact, solveMeshRounds, type TimedEdge, type TimedRound } from '../timesync/mesh.js';
import { meshPeers } from '../protocol/mesh.js';
import { gaussian, roundErrors, simulateRound, simulateRounds, type FleetModel } from '../timesync/simulate.js';
import { testbedUp, testbedDown } from '../local/testbed.js';
import { spawnResponder, writePingConf } from '../local/responder.js';
import { Prober } from '../timesync/prober.js';
import { estimateRound } from '../timesync/estimator.js';
import { startResponder } from '../timesync/responder.js';
import { newKey, testStamp } from '../protocol/timesync.js';
import { projectRoot } from '../lib/paths.js';

const execFileP = promisify(execFile);
const PORT = 5007;
stopOnSignals();
/** --verbose: each round's error of every host, once the last round is in. */
const verbose = process.argv.includes('--verbose');
const p99 = (xs: number[]) => (xs.length ? quantile([...xs].sort((a, b) => a - b), 0.99) : NaN);

/** Errors of each round's clocks against the truth at its time: per host, and per pair of hosts. */
function errorsOf(clocks: Map<string, { offsetNs: bigint; boundNs: number }>, names: string[], truth: (host: string) => number) {
  const own: number[] = [], pair: number[] = [];
  let covered = 0;
  const err = (n: string) => Number(clocks.get(n)!.offsetNs) - truth(n);
  for (const n of names) {
    const c = clocks.get(n);
    if (!c) continue;
    own.push(Math.abs(err(n)));
    if (Math.abs(err(n)) <= c.boundNs) covered++;
  }
  for (let i = 0; i < names.length; i++)
    for (let j = i + 1; j < names.length; j++) if (clocks.has(names[i]!) && clocks.has(names[j]!)) pair.push(Math.abs(err(names[j]!) - err(names[i]!)));
  return { own, pair, covered };
}

/**
 * The testbed's hosts share one clock. With --skew each host gets a synthetic clock of its own,
 * on its responder's t2 and t3 and its prober's t1 and t4 (--test-clock): an offset (a standard
 * deviation of --skew-us, default 500 µs) and a drift (--skew-ppm, default 20 ppm), so the truth
 * is known and not 0, and the rounds' edges, seconds apart, meet clocks that drift apart.
 */
async function onTestbed(hosts: number, rounds: number, probes: number, skew: boolean) {
  const tb = await testbedUp({ id: 'bmsh', hosts, router: true });
  const key = newKey();
  const stops: (() => Promise<unknown>)[] = [];
  // one moment on both clocks: CLOCK_MONOTONIC (the stamps') and the wall clock (the edges' dates)
  const monoAt0 = process.hrtime.bigint(), wallAt0 = Date.now();
  const monoOf = (ms: number) => monoAt0 + BigInt(Math.round((ms - wallAt0) * 1e6));
  const msOf = (mono: bigint) => wallAt0 + Number(mono - monoAt0) / 1e6;
  const rnd = gaussian(2026);
  const clocks = new Map(tb.hosts.map((h) => [h.name, skew ? { offsetNs: BigInt(Math.round(rnd() * numberArg('skew-us', 500) * 1e3)), driftPpb: BigInt(Math.round(rnd() * numberArg('skew-ppm', 20) * 1e3)), epochNs: monoAt0 } : undefined]));
  /** A host's true clock minus the manager's at wall-clock ms `ms`. */
  const truthAt = (host: string, ms: number) => {
    const c = clocks.get(host);
    return c ? Number(testStamp(monoOf(ms), c, c.epochNs) - monoOf(ms)) : 0;
  };
  try {
    const names = tb.hosts.map((h) => h.name);
    const byAddress = new Map(tb.hosts.map((h) => [h.address, h.name]));
    const confs = new Map<string, string>();
    for (const h of tb.hosts) {
      const conf = writePingConf(`bmsh-${h.name}`, { port: PORT, eth: h.iface, key, probers: [tb.managerAddress, ...tb.hosts.map((x) => x.address)] });
      confs.set(h.name, conf);
      stops.push((await spawnResponder(h.netns, conf, clocks.get(h.name))).stop);
    }
    const prober = await Prober.open({ ifaces: tb.hosts.map((h) => h.outerIface), port: PORT, key });
    stops.push(() => prober.close());
    const anchors = names.slice(0, Math.max(2, numberArg('testbed-anchors', 2))); // hosts alternate between the subnets: at least one on each
    // as the manager does with the mesh on: it answers its anchors' probes (a responder on the
    // interface holding its address, the bridge), so they are probed both ways
    const managerResponder = await startResponder({ iface: tb.bridges[0]!, port: PORT, key, probers: anchors.map((n) => tb.hosts.find((h) => h.name === n)!.address) });
    stops.push(async () => managerResponder.close());
    const star = { own: [] as number[], pair: [] as number[], covered: 0 };
    const meshRounds: TimedRound[] = [];
    let mesh = { own: [] as number[], pair: [] as number[], covered: 0 };
    let edges = 0, rejected = 0;
    // the same rounds each solved on its own as if its edges were simultaneous (the solve before the drifts were modelled)
    const simultaneous = { own: [] as number[], pair: [] as number[], covered: 0 };
    for (let r = 1; r <= rounds; r++) {
      checkStop();
      const res = await prober.round(tb.hosts.map((h) => h.address), probes, r);
      const starEdges: TimedEdge[] = [];
      for (const h of tb.hosts) {
        const s = res.samples.get(h.address)!;
        if (!s.length) continue;
        const e = estimateRound(s);
        starEdges.push({ a: MANAGER, b: h.name, offsetNs: e.offsetNs, boundNs: e.boundNs, atMs: msOf(e.atNs) });
      }
      if (starEdges.length < tb.hosts.length) process.stderr.write(`mesh: round ${r}: the manager had replies from ${starEdges.map((e) => e.b).join(', ') || 'no host'} only\n`);
      // the star: each host's own edge, against the truth when it was measured
      const starClocks = new Map(starEdges.map((e) => [e.b, { offsetNs: e.offsetNs, boundNs: e.boundNs, atMs: e.atMs }]));
      const s = errorsOf(starClocks, names, (n) => truthAt(n, starClocks.get(n)!.atMs));
      star.own.push(...s.own), star.pair.push(...s.pair), (star.covered += s.covered);
      const meshEdges = starEdges.filter((e) => anchors.includes(e.b));
      for (const h of tb.hosts) {
        checkStop();
        const peers = [...meshPeers(names, h.name, { epoch: r }).map((n) => tb.hosts.find((x) => x.name === n)!.address), ...(anchors.includes(h.name) ? [tb.managerAddress] : [])];
        const c = clocks.get(h.name);
        const { stdout } = await execFileP('ip', ['netns', 'exec', h.netns, process.execPath, join(projectRoot, 'dist', 'cli.js'), 'timesync', 'probe', '--conf', confs.get(h.name)!, '--eth', h.iface, '--count', String(probes), '--json', ...(c ? ['--test-clock', `${c.offsetNs}:${c.driftPpb}:${c.epochNs}`] : []), ...peers], { timeout: 60_000 });
        const got = JSON.parse(stdout.trim().split('\n').pop()!) as { estimates: { address: string; offsetNs: string | null; boundNs: number; atUnixMs: number }[] };
        for (const e of got.estimates) if (e.offsetNs !== null) meshEdges.push({ a: h.name, b: e.address === tb.managerAddress ? MANAGER : byAddress.get(e.address)!, offsetNs: BigInt(e.offsetNs), boundNs: e.boundNs, atMs: e.atUnixMs });
        const silent = got.estimates.filter((e) => e.offsetNs === null).map((e) => byAddress.get(e.address));
        if (silent.length) process.stderr.write(`mesh: round ${r}: ${h.name} had no reply from ${silent.join(', ')}\n`);
      }
      meshRounds.push({ refMs: median(meshEdges.map((e) => e.atMs)), edges: meshEdges });
      edges = meshEdges.length;
      // every round so far solved together, as the analysis does (each edge carried to its round's time along the fitted drifts)
      const solved = solveMeshRounds(meshRounds).rounds;
      mesh = { own: [], pair: [], covered: 0 };
      rejected = 0;
      for (const [k, x] of solved.entries()) {
        const m = errorsOf(x.clocks, names, (n) => truthAt(n, x.refMs));
        if (verbose && r === rounds) process.stderr.write(`mesh: round ${k + 1} errors (ns): ${names.map((n) => `${n} ${(Number(x.clocks.get(n)?.offsetNs ?? NaN) - truthAt(n, x.refMs)).toFixed(0)}`).join(', ')}\n`);
        mesh.own.push(...m.own), mesh.pair.push(...m.pair), (mesh.covered += m.covered);
        rejected += x.rejected.length;
      }
      const m0 = errorsOf(solveMeshExact(meshEdges).clocks, names, (n) => truthAt(n, meshRounds.at(-1)!.refMs));
      simultaneous.own.push(...m0.own), simultaneous.pair.push(...m0.pair), (simultaneous.covered += m0.covered);
      process.stderr.write(`mesh: round ${r}/${rounds}: star p99 so far ${p99(star.own).toFixed(0)} ns, mesh ${p99(mesh.own).toFixed(0)} ns (pairs ${p99(star.pair).toFixed(0)} / ${p99(mesh.pair).toFixed(0)} ns)\n`);
    }
    return {
      hosts, rounds, probesPerPeer: probes, edgesPerRound: edges, anchors,
      skew: skew ? Object.fromEntries([...clocks].map(([n, c]) => [n, { offsetNs: Number(c!.offsetNs), driftPpb: Number(c!.driftPpb) }])) : null,
      starP99ErrorNs: +p99(star.own).toFixed(1),
      meshP99ErrorNs: +p99(mesh.own).toFixed(1),
      starPairP99ErrorNs: +p99(star.pair).toFixed(1),
      meshPairP99ErrorNs: +p99(mesh.pair).toFixed(1),
      boundCoverage: mesh.covered / mesh.own.length,
      starBoundCoverage: star.covered / star.own.length,
      simultaneous: { meshP99ErrorNs: +p99(simultaneous.own).toFixed(1), meshPairP99ErrorNs: +p99(simultaneous.pair).toFixed(1), boundCoverage: simultaneous.covered / simultaneous.own.length },
      rejectedEdges: rejected,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await testbedDown('bmsh');
  }
}

function simulated(servers: number, rounds: number) {
  const model: Omit<FleetModel, 'seed'> = {
    servers,
    biasNs: numberArg('bias-ns', 300),
    asymmetryNs: numberArg('asymmetry-ns', 40),
    noiseNs: numberArg('noise-ns', 20),
    oneWayNs: 20_000,
    anchors: numberArg('anchors', 4),
  };
  const meshErr: number[] = [], starErr: number[] = [], solveMs: number[] = [];
  let covered = 0, total = 0, edges = 0, rejected = 0;
  for (let r = 0; r < rounds; r++) {
    const round = simulateRound({ ...model, seed: 1000 + r });
    edges = round.mesh.length;
    const t0 = process.hrtime.bigint();
    const mesh = solveMesh(round.mesh);
    solveMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    rejected += mesh.rejected.length;
    const star = solveMesh(round.star);
    for (const [n, truth] of round.truth) {
      const m = mesh.clocks.get(n)!;
      const e = Math.abs(m.offsetNs - truth);
      meshErr.push(e);
      starErr.push(Math.abs(star.clocks.get(n)!.offsetNs - truth));
      total++;
      if (e <= m.boundNs) covered++;
    }
  }
  return {
    servers, rounds, model, edgesPerRound: edges,
    starP99ErrorNs: +p99(starErr).toFixed(1),
    meshP99ErrorNs: +p99(meshErr).toFixed(1),
    boundCoverage: covered / total,
    solveMs: +median(solveMs).toFixed(1),
    rejectedEdges: rejected,
  };
}

/**
 * Clocks that drift (--drift-ppm between them, a standard deviation) and rounds that take
 * --round-ms (each observer's peers one after the other), a round every 10 s: every round solved
 * with each edge carried to the round's time along the fitted drifts (solveMeshRounds, what the
 * analysis does), against the same rounds solved as if their edges were simultaneous.
 */
function simulatedDrift(servers: number, rounds: number) {
  const model: FleetModel = { servers, biasNs: 300, asymmetryNs: 150, noiseNs: 40, oneWayNs: 5000, anchors: 4, seed: 77, driftPpm: numberArg('drift-ppm', 20), roundMs: numberArg('round-ms', 5000) };
  const { rounds: timed, sims } = simulateRounds(model, rounds);
  const judge = (solved: { clocks: Map<string, { offsetNs: bigint; boundNs: number }> }[]) => {
    const { errors, outside } = roundErrors(solved, timed, sims);
    return { p99ErrorNs: +p99(errors).toFixed(1), boundCoverage: 1 - outside / errors.length };
  };
  const t0 = process.hrtime.bigint();
  const withDrift = judge(solveMeshRounds(timed).rounds);
  const solveMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const simultaneous = judge(timed.map((r) => solveMeshExact(r.edges)));
  return { servers, rounds, driftPpm: model.driftPpm!, roundMs: model.roundMs!, p99ErrorNs: withDrift.p99ErrorNs, boundCoverage: withDrift.boundCoverage, solveMs: +solveMs.toFixed(1), simultaneousP99ErrorNs: simultaneous.p99ErrorNs, simultaneousBoundCoverage: simultaneous.boundCoverage };
}

async function main(): Promise<void> {
  const servers = numberArg('servers', 1000);
  const sim = simulated(servers, numberArg('sim-rounds', 5));
  const drift = simulatedDrift(numberArg('drift-servers', 200), numberArg('drift-rounds', 6));
  const testbed = process.argv.includes('--no-testbed') ? undefined : await onTestbed(numberArg('hosts', 8), numberArg('rounds', 30), numberArg('probes', 200), process.argv.includes('--skew'));
  const headline = testbed ?? sim;
  const result = {
    bench: 'mesh',
    starP99ErrorNs: headline.starP99ErrorNs,
    meshP99ErrorNs: headline.meshP99ErrorNs,
    boundCoverage: headline.boundCoverage,
    [`solve${servers}Ms`]: sim.solveMs,
    testbed: testbed ?? null,
    simulated: sim,
    drifting: drift,
  };
  console.log(JSON.stringify(result));
  const tbLine = testbed
    ? `testbed (${testbed.hosts} hosts, router, ${testbed.rounds} rounds): offset p99 error star ${testbed.starP99ErrorNs} ns, mesh ${testbed.meshP99ErrorNs} ns; pairs star ${testbed.starPairP99ErrorNs} ns, mesh ${testbed.meshPairP99ErrorNs} ns; mesh bound coverage ${(testbed.boundCoverage * 100).toFixed(1)}% (rounds solved as if simultaneous: ${testbed.simultaneous.meshP99ErrorNs} ns, pairs ${testbed.simultaneous.meshPairP99ErrorNs} ns, coverage ${(testbed.simultaneous.boundCoverage * 100).toFixed(1)}%)${testbed.skew ? '; hosts on synthetic clocks (--skew)' : ''}; `
    : 'testbed: skipped (--no-testbed); ';
  console.log(
    `mesh: ${tbLine}simulated (${servers} servers, ${sim.edgesPerRound} edges a round, bias ${sim.model.biasNs} ns, asymmetry ${sim.model.asymmetryNs} ns): p99 error star ${sim.starP99ErrorNs} ns, mesh ${sim.meshP99ErrorNs} ns, bound coverage ${(sim.boundCoverage * 100).toFixed(2)}%, solve ${sim.solveMs} ms; ` +
      `drifting clocks (${drift.servers} servers, ${drift.driftPpm} ppm, rounds of ${drift.roundMs / 1000} s, ${drift.rounds} rounds): p99 error ${drift.p99ErrorNs} ns with the drifts, coverage ${(drift.boundCoverage * 100).toFixed(2)}% (as if simultaneous: ${drift.simultaneousP99ErrorNs} ns, ${(drift.simultaneousBoundCoverage * 100).toFixed(2)}%)`,
  );
}

main().catch((e) => {
  console.error(`bench mesh: ${(e as Error).message}`);
  process.exitCode = 1;
});
