/**
 * bench/graph: seconds to render every graph (and report.html) for a day of one hundred server
 * pairs: 10-s windows (8,640 per pair), the kernel's histograms every 10 s on every host, CDFs
 * of every layer. The view models come ready (as analyzer/report.ts makes them); the figure is
 * the renderer's. Side by side: the same report over one hour, to show how the time grows with
 * the range (long ranges are binned to a fixed number of columns). Target: a day under 10 s.
 * Run: npm run bench:graph [-- --rounds 3] (the median of the rounds). No root needed. SIGTERM
 * and Ctrl-C stop it after the drawing in progress; its temporary folder is removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Report, Series, SegmentStats } from '../analyzer/report.js';
import { writeGraphs } from '../graph/write.js';
import { SEGMENTS } from '../protocol/layers.js';
import { checkStop, median, numberArg, pause, stopOnSignals } from './common.js';

const rounds = numberArg('rounds', 3);
const SERVERS = 11; // 110 ordered pairs, of which 100 carry traffic

function data(hours: number): { report: Report; series: Series } {
  let seed = 9;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const names = Array.from({ length: SERVERS }, (_, i) => `node${i + 1}`);
  const pairs = names.flatMap((a) => names.filter((b) => b !== a).map((b) => [a, b] as const)).slice(0, 100);
  const st = (p50: number): SegmentStats => ({ samples: 10_000, p50, p90: p50 * 1.6, p99: p50 * 3, p999: p50 * 6, max: p50 * 20, mean: p50 * 1.2 });
  const start = Date.UTC(2026, 10, 25);
  const windows = (hours * 3600) / 10;
  const report: Report = {
    version: 1, generatedAtUnixMs: start + hours * 3600e3, range: { fromUnixMs: start, toUnixMs: start + hours * 3600e3, windows, windowNs: 10e9 }, servers: names,
    pairs: pairs.map(([src, dst]) => {
      const segments = Object.fromEntries([...SEGMENTS.map((s) => [s, st(1000 + rnd() * 30_000)]), ['one_way', st(20_000 + rnd() * 20_000)], ['end_to_end', st(60_000 + rnd() * 40_000)]]);
      const means = Object.fromEntries(SEGMENTS.map((s) => [s, rnd() * 50_000]));
      const total = Object.values(means).reduce((a, b) => a + b, 0);
      return { src, dst, paths: 10_000, segments, boundNs: 300 + rnd() * 500, faults: 0, tail: { quantile: 0.99, paths: 100, meanNs: total, means, shares: Object.fromEntries(SEGMENTS.map((s) => [s, means[s]! / total])), holder: 'wire', growsMost: { segment: 'wire', growthNs: 20_000 } } };
    }),
    hosts: names.map((server) => ({ server, segments: Object.fromEntries(SEGMENTS.map((s) => [s, st(1000)])), kernel: {} })),
    flows: [], unmatched: [], faults: 0, spikes: [], mesh: { rounds: 0, settledRounds: 0, edges: 0, unsolved: 0, rejected: 0, directions: [], clocks: [], slowest: null },
  };
  const series: Series = { oneWay: [], flows: [], kernel: [], cdf: [], mesh: [] };
  for (let w = 0; w < windows; w++) {
    const t = start + w * 10_000;
    for (const [src, dst] of pairs) series.oneWay.push({ src, dst, unixMs: t, p50: 20_000 + rnd() * 5000, p99: 40_000 + rnd() * 40_000, boundNs: 400, samples: 100 });
    for (const server of names) for (const label of ['5000 tx sock->tcp', '5000 rx tcp->sock']) for (let b = 8; b < 16; b++) series.kernel.push({ server, label, unixMs: t, bucket: b, count: Math.round(rnd() * 1000) });
    for (let f = 0; f < 8; f++) series.flows.push({ flow: `flow ${f}`, unixMs: t, throughputBytesPerS: 1e8 * rnd(), retransmissions: Math.round(rnd() * 3), samples: 100 });
  }
  for (const g of [...names, ...pairs.map(([a, b]) => `${a} → ${b}`)]) for (const s of SEGMENTS) for (let k = 1; k <= 200; k++) series.cdf.push({ group: g, segment: s, ns: 1000 * 1.05 ** k, fraction: k / 200 });
  return { report, series };
}

async function time(hours: number): Promise<{ seconds: number; points: number }> {
  await pause(1); // drawing never waits on I/O: the event loop turns here, so that a SIGTERM is seen
  checkStop();
  const { report, series } = data(hours);
  const points = series.oneWay.length + series.kernel.length + series.flows.length + series.cdf.length;
  const dir = mkdtempSync(join(tmpdir(), 'latscope-bench-graph-'));
  try {
    const t0 = performance.now();
    await writeGraphs(report, series, dir);
    return { seconds: (performance.now() - t0) / 1000, points };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  stopOnSignals();
  await time(0.1); // warm up the renderer
  const day: number[] = [], hour: number[] = [];
  let points = { day: 0, hour: 0 };
  for (let r = 0; r < rounds; r++) {
    const d = await time(24), h = await time(1);
    day.push(d.seconds);
    hour.push(h.seconds);
    points = { day: d.points, hour: h.points };
  }
  const result = { bench: 'graph', pairs: 100, rounds, daySeconds: median(day), hourSeconds: median(hour), ratio: median(day) / median(hour), points, target: { seconds: 10, met: median(day) < 10 } };
  console.log(JSON.stringify(result));
  console.log(`graph: every graph and report.html for a day of 100 server pairs (${points.day.toLocaleString('en')} points) in ${result.daySeconds.toFixed(2)} s, an hour in ${result.hourSeconds.toFixed(2)} s (x${result.ratio.toFixed(1)}); median of ${rounds}; target < 10 s: ${result.target.met ? 'met' : 'NOT met'}`);
}

main().catch((e) => {
  console.error(`bench/graph: ${(e as Error).message}`);
  process.exitCode = 1;
});
