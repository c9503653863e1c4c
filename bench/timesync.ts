/**
 * bench/timesync: how well latscope knows each server's clock. One run, same testbed: host 1
 * answers with the XDP responder (auto mode: generic on veth), host 2 with the user-space UDP
 * echo responder; the manager's prober (t1 at tc egress, t4 at XDP on its veth ports) probes
 * both, one after the other in each round, in rounds over --seconds (default 60). All namespaces share one clock, so
 * the true offset and drift are 0 and every estimate's error is directly its value.
 * Prints offset error p50/p99/max per probe (≥ 10,000 each), per round estimate, and the drift
 * error of the fit over the run, as JSON and one line.
 *
 * SIGTERM and Ctrl-C stop it after the round in progress; its responders and testbed are removed.
 *
 *   node dist/bench/timesync.js [--seconds 60] [--rounds 12] [--probes 1000]
 */
import { execFileSync } from 'node:child_process';
import { checkStop, numberArg, pause, quantile, stopOnSignals } from './common.js';
import { testbedUp, testbedDown } from '../local/testbed.js';
import { spawnResponder, writePingConf } from '../local/responder.js';
import { Prober } from '../timesync/prober.js';
import { estimateRound, fitClock, probeOffset, type RoundEstimate } from '../timesync/estimator.js';
import { newKey, type Sample } from '../protocol/timesync.js';

const seconds = numberArg('seconds', 60);
const rounds = numberArg('rounds', 12);
const probes = numberArg('probes', 1000);
const PORT = 5005;
stopOnSignals();


function errors(samples: Sample[], ests: RoundEstimate[]) {
  const abs = samples.map((s) => Math.abs(probeOffset(s).offsetNs));
  const fit = fitClock(ests);
  return {
    probes: samples.length,
    probeAbsErrorNs: { p50: quantile(abs, 0.5), p99: quantile(abs, 0.99), max: Math.max(...abs) },
    roundAbsErrorNs: { p50: quantile(ests.map((e) => Math.abs(Number(e.offsetNs))), 0.5), max: Math.max(...ests.map((e) => Math.abs(Number(e.offsetNs)))) },
    roundBoundNs: { p50: quantile(ests.map((e) => e.boundNs), 0.5) },
    roundsWithinBound: ests.filter((e) => Math.abs(Number(e.offsetNs)) <= e.boundNs).length,
    driftErrorPpm: Math.abs(fit.driftPpb) / 1000,
    driftBoundPpm: fit.driftBoundPpb / 1000,
    rttNs: { min: Math.min(...samples.map((s) => probeOffset(s).delayNs)), p50: quantile(samples.map((s) => probeOffset(s).delayNs), 0.5) },
  };
}

async function main(): Promise<void> {
  // the prober (and the XDP responder, which runs in its softirq) on one CPU, the user-space
  // responder's process on the other: neither disturbs the other's measurement
  execFileSync('taskset', ['-a', '-pc', '1', String(process.pid)]);
  const tb = await testbedUp({ id: 'bts', hosts: 2 });
  const key = newKey();
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const [hx, hu] = [tb.hosts[0]!, tb.hosts[1]!];
    const xdp = await spawnResponder(hx.netns, writePingConf('bench-xdp', { port: PORT, eth: hx.iface, key, probers: [tb.managerAddress] }), undefined, 0);
    stops.push(xdp.stop);
    const user = await spawnResponder(hu.netns, writePingConf('bench-user', { port: PORT, eth: hu.iface, key, probers: [tb.managerAddress], mode: 'user-space' }), undefined, 0);
    stops.push(user.stop);
    const prober = await Prober.open({ ifaces: tb.hosts.map((h) => h.outerIface), port: PORT, key });
    stops.push(() => prober.close());
    const all = new Map<string, { samples: Sample[]; ests: RoundEstimate[]; lost: number }>(tb.hosts.map((h) => [h.address, { samples: [], ests: [], lost: 0 }]));
    const t0 = Date.now();
    for (let r = 1; r <= rounds; r++) {
      checkStop();
      const res = await prober.round(tb.hosts.map((h) => h.address), probes, r);
      for (const h of tb.hosts) {
        const a = all.get(h.address)!;
        const s = res.samples.get(h.address)!;
        a.samples.push(...s);
        a.lost += res.lost.get(h.address)!;
        const prev = a.ests.length >= 2 ? fitClock(a.ests) : undefined;
        if (s.length) a.ests.push(estimateRound(s, prev && { driftPpb: prev.driftPpb, driftBoundPpb: prev.driftBoundPpb }));
      }
      const next = t0 + (r * seconds * 1000) / rounds;
      if (r < rounds) await pause(Math.max(0, next - Date.now()));
      process.stderr.write(`round ${r}/${rounds}\n`);
    }
    const x = all.get(hx.address)!, u = all.get(hu.address)!;
    const result = {
      bench: 'timesync',
      seconds: (Date.now() - t0) / 1000,
      rounds,
      probesPerRound: probes,
      proberReplyHooks: prober.replyHooks,
      xdp: { mode: xdp.mode, lost: x.lost, ...errors(x.samples, x.ests) },
      userSpaceEcho: { mode: user.mode, lost: u.lost, ...errors(u.samples, u.ests) },
      targets: { xdpP99AbsErrorNsMax: 500, ratioP99Min: 10, driftErrorPpmMax: 0.1 },
    };
    const ratio = result.userSpaceEcho.probeAbsErrorNs.p99 / result.xdp.probeAbsErrorNs.p99;
    console.log(JSON.stringify({ ...result, p99Ratio: ratio }));
    const X = result.xdp, U = result.userSpaceEcho;
    console.log(
      `timesync: ${X.probes} probes per responder over ${result.seconds.toFixed(0)} s; abs offset error per probe p50/p99/max: XDP (${X.mode}) ${X.probeAbsErrorNs.p50}/${X.probeAbsErrorNs.p99}/${X.probeAbsErrorNs.max} ns, ` +
        `user-space echo ${U.probeAbsErrorNs.p50}/${U.probeAbsErrorNs.p99}/${U.probeAbsErrorNs.max} ns (p99 x${ratio.toFixed(1)}); per round XDP ${X.roundAbsErrorNs.p50} ns (bound ${X.roundBoundNs.p50.toFixed(0)}); ` +
        `drift error XDP ${X.driftErrorPpm.toFixed(4)} ppm (bound ${X.driftBoundPpm.toFixed(3)}), echo ${U.driftErrorPpm.toFixed(4)} ppm; targets p99 <= 500 ns, x10, drift <= 0.1 ppm`,
    );
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    await testbedDown('bts');
  }
}

main().catch((e) => {
  console.error(`bench timesync: ${(e as Error).message}`);
  process.exitCode = 1;
});
