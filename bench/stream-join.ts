/**
 * bench/stream-join: the stream stage's join alone (analyzer/stream/join.ts: typed arrays,
 * dense sketches), records per second on one core, side by side in one run with a plain
 * reference of the same work (a Map of record objects keyed by text, LogHistogram sketches).
 * Synthetic fleet: sender and receiver records of every sample from 8 servers, the streams
 * interleaved with a bounded lag, the watermark advanced every 1000 records. Rounds interleave
 * the two; medians, JSON and one line. Issue 22's target for the whole stage: 1,000,000 records/s.
 *
 *   node dist/bench/stream-join.js [--records 2000000] [--rounds 3]
 */
import { numberArg, median } from './common.js';
import { StreamJoin, type JoinRecord } from '../analyzer/stream/join.js';
import { LogHistogram } from '../lib/stats.js';

const records = numberArg('records', 2_000_000);
const rounds = numberArg('rounds', 3);
const SERVERS = 8;

function fleet(n: number): JoinRecord[] {
  const out: JoinRecord[] = new Array(n);
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < n / 2; i++) {
    const src = i % SERVERS, dst = (i + 1 + (i % (SERVERS - 1))) % SERVERS;
    const t = 1e12 + i * 1000;
    const flow = 1e13 + src * 1000 + dst * 10 + (i % 7);
    const sample = (i * 4096) >>> 0;
    const edge = t + 3000 + rand() * 2000;
    const rxEdge = edge + 20_000 + rand() * 30_000;
    out[2 * i] = { server: src, flow, sample, tx: true, sock: t, edge };
    out[2 * i + 1] = { server: dst, flow, sample, tx: false, sock: rxEdge + 5000 + rand() * 10_000, edge: rxEdge };
  }
  // the receiver's stream lags the sender's by up to 256 records
  for (let i = 1; i < n; i += 2) {
    const j = Math.min(n - 1, i + 2 * Math.floor(rand() * 128));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function ours(recs: JoinRecord[]): number {
  const join = new StreamJoin({ capacity: 1 << 16, waitNs: 1e6 });
  let wm = 0;
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i]!;
    join.add(r);
    const t = r.tx ? r.sock : r.edge;
    if (t > wm) wm = t;
    if (i % 1000 === 999) join.advance(wm);
  }
  join.advance(Infinity);
  return join.counters.paths;
}

/** The plain way: objects in a Map keyed by text, settled at the same watermark, LogHistogram sketches. */
function reference(recs: JoinRecord[]): number {
  const waiting = new Map<string, { tx: JoinRecord[]; rx: JoinRecord[] }>();
  const queue: { key: string; at: number }[] = [];
  const pairs = new Map<string, { oneWay: LogHistogram; e2e: LogHistogram }>();
  let paths = 0, head = 0, wm = 0;
  const settle = (upTo: number) => {
    while (head < queue.length && queue[head]!.at + 1e6 < upTo) {
      const w = waiting.get(queue[head++]!.key);
      if (!w) continue;
      for (const rx of w.rx) {
        const tx = w.tx.filter((x) => x.sock <= rx.edge).sort((a, b) => b.sock - a.sock)[0];
        if (!tx) continue;
        w.tx.splice(w.tx.indexOf(tx), 1);
        paths++;
        const k = `${tx.server}>${rx.server}`;
        let p = pairs.get(k);
        if (!p) pairs.set(k, (p = { oneWay: new LogHistogram(), e2e: new LogHistogram() }));
        p.oneWay.add(rx.edge - tx.edge);
        p.e2e.add(rx.sock - tx.sock);
      }
      w.rx = [];
      if (!w.tx.length) waiting.delete(queue[head - 1]!.key);
    }
  };
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i]!;
    const key = `${r.flow}|${r.sample}`;
    let w = waiting.get(key);
    if (!w) waiting.set(key, (w = { tx: [], rx: [] }));
    (r.tx ? w.tx : w.rx).push(r);
    const t = r.tx ? r.sock : r.edge;
    queue.push({ key, at: t });
    if (t > wm) wm = t;
    if (i % 1000 === 999) settle(wm);
  }
  settle(Infinity);
  return paths;
}

let stop = false;
process.once('SIGTERM', () => (stop = true));
process.once('SIGINT', () => (stop = true));
const recs = fleet(records);
const rate: Record<'ours' | 'reference', number[]> = { ours: [], reference: [] };
let peakRss = 0;
for (let round = 0; round < rounds && !stop; round++)
  for (const [name, run] of [['ours', ours], ['reference', reference]] as const) {
    const t0 = performance.now();
    const paths = run(recs);
    const s = (performance.now() - t0) / 1000;
    if (paths !== records / 2) throw new Error(`${name}: ${paths} paths, expected ${records / 2}`);
    rate[name].push(records / s);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
const result = {
  bench: 'stream-join',
  records,
  rounds,
  recordsPerSec: Math.round(median(rate.ours)),
  referenceRecordsPerSec: Math.round(median(rate.reference)),
  ratio: median(rate.ours) / median(rate.reference),
  peakRssMb: Math.round(peakRss / 2 ** 20),
  runs: rate,
  target: { recordsPerSecMin: 1_000_000 },
};
console.log(JSON.stringify(result));
console.log(
  `stream-join: ${(result.recordsPerSec / 1e6).toFixed(2)} M records/s joined and sketched on one core vs ${(result.referenceRecordsPerSec / 1e6).toFixed(2)} M/s for Map-of-objects (x${result.ratio.toFixed(1)}); ` +
    `median of ${rounds} rounds of ${records} records; peak RSS ${result.peakRssMb} MB; target >= 1 M/s for the whole stage`,
);
