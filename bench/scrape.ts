/**
 * bench/scrape: what an observer's Prometheus scrape (or histogram snapshot) costs its event
 * loop (issue 23: a scrape must not delay ring draining). The kernel part reads every histogram
 * bucket of every watched port and the counters; this compares, on the same loaded probe,
 * reading them one lookup per bucket in one go (as before) with the observer's read now
 * (BPF_MAP_LOOKUP_BATCH in chunks, a turn of the event loop between them). Reported: the time
 * of a whole read, and how long it holds the event loop at most (the longest gap a concurrent
 * setImmediate ticker sees, which is how late a ring drain could run). Medians and ratios.
 *
 *   node dist/bench/scrape.js [--ports 64] [--rounds 200]
 */
import { LatencyProbe, BUCKETS } from '../observer/probe.js';
import { PAIRS } from '../protocol/layers.js';
import { median, numberArg } from './common.js';

const ports = numberArg('ports', 64);
const rounds = numberArg('rounds', 200);

function perBucket(probe: LatencyProbe): number {
  // the old read: one lookup per bucket
  const m = (probe as unknown as { bpf: { map(n: string): { lookup(k: Buffer): Buffer | undefined; perCpuValues(v: Buffer): Buffer[] } } }).bpf.map('hist');
  const key = Buffer.alloc(4);
  let n = 0;
  for (let slot = 0; slot < ports; slot++)
    for (let p = 0; p < PAIRS.length; p++)
      for (let b = 0; b < BUCKETS; b++) {
        key.writeUInt32LE((slot * PAIRS.length + p) * BUCKETS + b);
        n += m.perCpuValues(m.lookup(key)!).length;
      }
  return n;
}

/** Runs `read` while a setImmediate ticker measures the longest the event loop was held. */
async function timed(read: () => unknown): Promise<{ ms: number; holdMs: number }> {
  let running = true, last = performance.now(), hold = 0;
  const tick = () => {
    const now = performance.now();
    hold = Math.max(hold, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  await new Promise((r) => setImmediate(r));
  const t0 = performance.now();
  last = t0;
  await read();
  const ms = performance.now() - t0;
  hold = Math.max(hold, performance.now() - last);
  running = false;
  return { ms, holdMs: hold };
}

async function main(): Promise<void> {
  const probe = LatencyProbe.open({ ports: Array.from({ length: ports }, (_, i) => 20000 + i), sampleSize: 8192, intervalNs: 0n, filterRetrans: true, netnsIno: 0, interfaces: [] });
  let stop = false;
  process.once('SIGTERM', () => (stop = true));
  process.once('SIGINT', () => (stop = true));
  try {
    const old: { ms: number; holdMs: number }[] = [], now: { ms: number; holdMs: number }[] = [];
    for (let r = 0; r < rounds && !stop; r++) {
      old.push(await timed(() => (perBucket(probe), probe.counters())));
      now.push(await timed(async () => (await probe.histograms(), probe.counters())));
    }
    const m = (xs: { ms: number; holdMs: number }[], k: 'ms' | 'holdMs') => +median(xs.map((x) => x[k])).toFixed(3);
    const out = {
      bench: 'scrape', ports, buckets: ports * PAIRS.length * BUCKETS, rounds: old.length,
      perBucketMs: m(old, 'ms'), perBucketHoldMs: m(old, 'holdMs'), batchMs: m(now, 'ms'), batchHoldMs: m(now, 'holdMs'),
      ratio: +(m(old, 'ms') / m(now, 'ms')).toFixed(1), holdRatio: +(m(old, 'holdMs') / m(now, 'holdMs')).toFixed(1),
    };
    console.log(JSON.stringify(out));
    console.log(`scrape: ${out.buckets} histogram buckets of ${ports} ports and the counters: read in ${out.batchMs} ms holding the event loop at most ${out.batchHoldMs} ms, vs ${out.perBucketMs} ms held whole one lookup per bucket (medians of ${out.rounds}; x${out.ratio} faster, loop held x${out.holdRatio} shorter)`);
  } finally {
    probe.close(); // every BPF program and map goes with the process's object, on SIGTERM too
  }
}

await main();
