/**
 * The graphs as vega-lite specs: pure data built from the analyzer's report and series (the
 * view models), so tests can check the right segments in the right order with the right values.
 * Colours and the order of segments are fixed here once: the same layer has the same colour in
 * every graph. Every axis says its unit, every graph says what it shows.
 */
import type { Report, Series } from '../analyzer/report.js';
import { SEGMENTS } from '../protocol/layers.js';

export type Spec = Record<string, unknown>;

/** Segment order and colour, sender's layers warm, the wire grey-blue, receiver's layers cool. */
export const SEGMENT_COLORS: Record<string, string> = {
  tx_sock_tcp: '#b2182b', tx_tcp_ip: '#d6604d', tx_ip_dev: '#f4a582', tx_hops: '#fddbc7',
  wire: '#4d4d4d',
  rx_hops: '#d1e5f0', rx_dev_ip: '#92c5de', rx_ip_tcp: '#4393c3', rx_tcp_sock: '#2166ac',
};
export const SEGMENT_TITLES: Record<string, string> = {
  tx_sock_tcp: 'tx socket→TCP', tx_tcp_ip: 'tx TCP→IP', tx_ip_dev: 'tx IP→device', tx_hops: 'tx device hops', wire: 'wire',
  rx_hops: 'rx device hops', rx_dev_ip: 'rx device→IP', rx_ip_tcp: 'rx IP→TCP', rx_tcp_sock: 'rx TCP→socket', one_way: 'one-way', end_to_end: 'end-to-end',
};
const ORDER = Object.fromEntries(SEGMENTS.map((s, i) => [SEGMENT_TITLES[s]!, i]));
const segmentColor = {
  field: 'segment',
  type: 'nominal',
  title: 'segment',
  scale: { domain: SEGMENTS.map((s) => SEGMENT_TITLES[s]), range: SEGMENTS.map((s) => SEGMENT_COLORS[s]) },
  sort: SEGMENTS.map((s) => SEGMENT_TITLES[s]),
};
const base = (title: string, subtitle: string): Spec => ({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title: { text: title, subtitle, anchor: 'start' },
  config: { font: 'sans-serif', view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11 } },
});
const us = (ns: number) => Math.round(ns / 10) / 100;

/** Rows of the breakdown: per pair, the segment medians stacked, beside the segment means of the tail (≥ p99), and the wire's clock bound. */
export function breakdownModel(r: Report, maxPairs = 12) {
  const rows: { pair: string; bar: string; segment: string; order: number; us: number; from: number; to: number }[] = [];
  const bounds: { pair: string; bar: string; lo: number; hi: number; boundUs: number }[] = [];
  for (const p of r.pairs.slice(0, maxPairs)) {
    const pair = `${p.src} → ${p.dst}`;
    for (const [bar, values] of [
      ['median', SEGMENTS.map((s) => p.segments[s]?.p50 ?? 0)],
      ['tail (≥ p99)', SEGMENTS.map((s) => p.tail?.means[s] ?? NaN)],
    ] as const) {
      if (values.some((v) => Number.isNaN(v))) continue;
      let at = 0;
      SEGMENTS.forEach((s, i) => {
        const v = Math.max(0, values[i]!);
        rows.push({ pair, bar, segment: SEGMENT_TITLES[s]!, order: i, us: us(v), from: us(at), to: us(at + v) });
        if (s === 'wire') bounds.push({ pair, bar, lo: us(Math.max(0, at + v - p.boundNs)), hi: us(at + v + p.boundNs), boundUs: us(p.boundNs) });
        at += v;
      });
    }
  }
  return { rows, bounds };
}

export function breakdownSpec(r: Report): Spec {
  const m = breakdownModel(r);
  return {
    ...base('Where the time goes between servers', 'per pair: each segment\'s median, beside each segment\'s mean over the slowest 1% (these add up to the tail\'s mean); the bar on the wire is its clock bound'),
    width: 640,
    layer: [
      {
        data: { values: m.rows },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          y: { field: 'pair', type: 'nominal', title: 'sender → receiver', sort: null },
          yOffset: { field: 'bar', type: 'nominal', sort: ['median', 'tail (≥ p99)'], title: null },
          // log-like (symlog: 0 allowed, linear below 1 µs): sub-millisecond pairs stay readable beside 16 ms ones
          x: { field: 'from', type: 'quantitative', title: 'delay (µs, log scale)', scale: { type: 'symlog' } },
          x2: { field: 'to' },
          color: segmentColor,
          order: { field: 'order' },
        },
      },
      {
        data: { values: m.bounds },
        mark: { type: 'rule', color: 'black', strokeWidth: 2 },
        encoding: { y: { field: 'pair', type: 'nominal', sort: null }, yOffset: { field: 'bar', type: 'nominal', sort: ['median', 'tail (≥ p99)'] }, x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' } },
      },
    ],
  };
}

export function tailSpec(r: Report): Spec {
  const rows = r.pairs.filter((p) => p.tail).slice(0, 20).flatMap((p) => SEGMENTS.map((s, i) => ({ pair: `${p.src} → ${p.dst}`, segment: SEGMENT_TITLES[s]!, order: i, share: p.tail!.shares[s]! })));
  return {
    ...base('Who holds the tail', 'per pair, each segment\'s share of the mean delay of the paths at or above the end-to-end p99'),
    width: 640,
    data: { values: rows },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'pair', type: 'nominal', title: 'sender → receiver', sort: null },
      x: { field: 'share', type: 'quantitative', stack: 'normalize', title: 'share of the tail (%)', axis: { format: '.0%' } },
      tooltip: [{ field: 'pair', title: 'sender → receiver' }, { field: 'segment' }, { field: 'share', title: 'share of the tail', format: '.1%' }],
      color: segmentColor,
      order: { field: 'order' },
    },
  };
}

export function matrixModel(r: Report) {
  const servers = [...new Set(r.pairs.flatMap((p) => [p.src, p.dst]))].sort();
  return servers.flatMap((src) => servers.filter((dst) => dst !== src).map((dst) => {
    const p = r.pairs.find((x) => x.src === src && x.dst === dst);
    return { src, dst, p99: p?.segments.one_way ? us(p.segments.one_way.p99) : null, bound: p ? us(p.boundNs) : null };
  }));
}

export function matrixSpec(r: Report): Spec {
  return serverMatrix('Server to server: p99 one-way delay', 'sender (row) to receiver (column), device to device; grey: no sampled traffic', matrixModel(r), 'p99', 'p99 one-way (µs, log)');
}

/** A sender-by-receiver matrix of one value (µs) per ordered pair, grey where it is null, the value written in each cell. */
function serverMatrix(title: string, subtitle: string, values: { src: string; dst: string }[], field: string, legend: string): Spec {
  return {
    ...base(title, subtitle),
    width: { step: 56 },
    height: { step: 28 },
    data: { values },
    layer: [
      {
        mark: { type: 'rect', tooltip: true },
        encoding: {
          y: { field: 'src', type: 'nominal', title: 'sender' },
          x: { field: 'dst', type: 'nominal', title: 'receiver' },
          color: { condition: { test: `datum.${field} === null`, value: '#d9d9d9' }, field, type: 'quantitative', title: legend, scale: { scheme: 'orangered', type: 'symlog' } },
        },
      },
      { mark: { type: 'text', fontSize: 10 }, encoding: { y: { field: 'src', type: 'nominal' }, x: { field: 'dst', type: 'nominal' }, text: { field, type: 'quantitative', format: '.0f' } } },
    ],
  };
}

/** Time bins so that a long range has at most `columns` of them: the bin width in ms (0: one per window). */
export function binMs(times: number[], columns: number): number {
  if (!times.length) return 0;
  let lo = Infinity, hi = -Infinity;
  for (const t of times) (lo = Math.min(lo, t)), (hi = Math.max(hi, t));
  const distinct = new Set(times).size;
  return distinct <= columns ? 0 : Math.ceil((hi - lo + 1) / columns);
}
const binOf = (t: number, w: number) => (w ? Math.floor(t / w) * w : t);
/** The middle value of a time bin's values (the lower one of two), sorting them in place. */
const lowerMedian = (xs: number[]) => xs.sort((x, y) => x - y)[(xs.length - 1) >> 1]!;

export function oneWayTimeSpec(s: Series, r: Report, maxPairs = 8, columns = 400): Spec {
  const worst = new Set(r.pairs.slice(0, maxPairs).map((p) => `${p.src} → ${p.dst}`));
  const mine = s.oneWay.filter((x) => worst.has(`${x.src} → ${x.dst}`));
  // a long range: per time bin the median's median and the p99's maximum, the widest bound
  const w = binMs(mine.map((x) => x.unixMs), columns);
  const bins = new Map<string, { pair: string; t: number; p50: number[]; p99: number; bound: number }>();
  for (const x of mine) {
    const pair = `${x.src} → ${x.dst}`, t = binOf(x.unixMs, w), key = `${pair}|${t}`;
    const b = bins.get(key) ?? { pair, t, p50: [], p99: -Infinity, bound: 0 };
    b.p50.push(x.p50);
    b.p99 = Math.max(b.p99, x.p99);
    b.bound = Math.max(b.bound, x.boundNs);
    bins.set(key, b);
  }
  const rows = [...bins.values()].map((b) => {
    const m = lowerMedian(b.p50);
    return { pair: b.pair, t: b.t, p50: us(m), p99: us(b.p99), lo: us(m - b.bound), hi: us(m + b.bound) };
  });
  return {
    ...base('One-way delay over time', 'per pair and window: median (line, with its clock bound as a band) and p99 (dashed)'),
    width: 640,
    height: 240,
    data: { values: rows },
    encoding: { x: { field: 't', type: 'temporal', scale: { type: 'utc' }, title: 'time (UTC, manager clock)', axis: { format: '%H:%M:%S' } }, color: { field: 'pair', type: 'nominal', title: 'sender → receiver' } },
    layer: [
      { mark: { type: 'area', opacity: 0.25 }, encoding: { y: { field: 'lo', type: 'quantitative', title: 'one-way delay (µs, log scale)', scale: { type: 'symlog' } }, y2: { field: 'hi' } } },
      { mark: { type: 'line', tooltip: true }, encoding: { y: { field: 'p50', type: 'quantitative' } } },
      { mark: { type: 'line', strokeDash: [4, 3] }, encoding: { y: { field: 'p99', type: 'quantitative' } } },
    ],
  };
}

export function cdfSpec(s: Series): Spec {
  const layers = SEGMENTS.filter((seg) => s.cdf.some((c) => c.segment === seg));
  // at most ten hosts or pairs per panel (by name): the fleet-wide view is the matrix
  const groups = new Set([...new Set(s.cdf.map((c) => c.group))].sort().slice(0, 10));
  const rows = s.cdf.filter((c) => layers.includes(c.segment as never) && groups.has(c.group)).map((c) => ({ segment: SEGMENT_TITLES[c.segment]!, group: c.group, us: c.ns / 1000, fraction: c.fraction, order: ORDER[SEGMENT_TITLES[c.segment]!] }));
  return {
    ...base('Delay distribution of each layer', 'cumulative share of sampled packets per segment: hosts for their own layers, pairs for the wire (log time axis)'),
    data: { values: rows },
    facet: { field: 'segment', type: 'nominal', title: null, sort: SEGMENTS.map((x) => SEGMENT_TITLES[x]) },
    columns: 3,
    spec: {
      width: 200,
      height: 130,
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 'us', type: 'quantitative', scale: { type: 'log' }, title: 'delay (µs, log)' },
        y: { field: 'fraction', type: 'quantitative', title: 'share of packets', axis: { format: '.0%' } },
        color: { field: 'group', type: 'nominal', title: 'host or pair' },
      },
    },
    resolve: { scale: { x: 'independent' } },
  };
}

/**
 * The kernel's histograms as a heatmap per host and layer pair: time × log2 bucket, colour =
 * segments. The slowest panels come first (by the bucket their p99 falls in), the rest are
 * named as left out; the time axis is continuous UTC, and a bucket with no segment in a column
 * that has snapshots is drawn as 0, not left as a gap.
 */
export function heatmapSpec(s: Series, maxPanels = 12, columns = 120): Spec {
  const byPanel = new Map<string, Map<number, number>>();
  for (const k of s.kernel) {
    const panel = `${k.server} · ${k.label}`;
    const h = byPanel.get(panel) ?? new Map<number, number>();
    h.set(k.bucket, (h.get(k.bucket) ?? 0) + k.count);
    byPanel.set(panel, h);
  }
  const p99Bucket = (h: Map<number, number>) => {
    const total = [...h.values()].reduce((a, b) => a + b, 0);
    let seen = 0;
    for (const b of [...h.keys()].sort((x, y) => x - y)) if ((seen += h.get(b)!) >= 0.99 * total) return b;
    return 0;
  };
  const ranked = [...byPanel].map(([panel, h]) => ({ panel, p99: p99Bucket(h) })).sort((a, b) => b.p99 - a.p99 || a.panel.localeCompare(b.panel));
  const shown = ranked.slice(0, maxPanels).map((r) => r.panel);
  const left = ranked.slice(maxPanels).map((r) => r.panel);
  const keep = new Set(shown);
  const mine = s.kernel.filter((k) => keep.has(`${k.server} · ${k.label}`));
  const w = binMs(mine.map((k) => k.unixMs), columns) || 1000;
  const cells = new Map<string, { panel: string; t: number; t2: number; bucket: string; b: number; count: number }>();
  const times = new Map<string, Set<number>>(shown.map((p) => [p, new Set()]));
  for (const k of mine) {
    const panel = `${k.server} · ${k.label}`, t = binOf(k.unixMs, w), key = `${panel}|${t}|${k.bucket}`;
    const c = cells.get(key) ?? { panel, t, t2: t + w, bucket: bucketLabel(k.bucket), b: k.bucket, count: 0 };
    c.count += k.count;
    cells.set(key, c);
    times.get(panel)!.add(t);
  }
  // every bucket of a panel's range in every column it has: 0 where no segment fell
  for (const [panel, ts] of times) {
    const buckets = [...byPanel.get(panel)!.keys()];
    const [lo, hi] = [Math.min(...buckets), Math.max(...buckets)];
    for (const t of ts)
      for (let b = lo; b <= hi; b++)
        if (!cells.has(`${panel}|${t}|${b}`)) cells.set(`${panel}|${t}|${b}`, { panel, t, t2: t + w, bucket: bucketLabel(b), b, count: 0 });
  }
  const rows = [...cells.values()];
  const note = left.length ? `; the ${shown.length} slowest of ${ranked.length} panels (by p99 bucket), left out: ${left.slice(0, 8).join(', ')}${left.length > 8 ? ` and ${left.length - 8} more` : ''}` : '';
  return {
    ...base('Every segment, from the kernel\'s histograms', `per host, port and layer pair, slowest first: segments per log2 delay bucket between snapshots${note}`),
    data: { values: rows },
    facet: { field: 'panel', type: 'nominal', title: null, sort: shown },
    columns: 2,
    spec: {
      width: 280,
      height: 140,
      mark: { type: 'rect', tooltip: true },
      encoding: {
        x: { field: 't', type: 'temporal', scale: { type: 'utc' }, title: 'snapshot time (UTC)', axis: { format: '%H:%M:%S', labelOverlap: true } },
        x2: { field: 't2' },
        y: { field: 'bucket', type: 'ordinal', title: 'delay bucket', sort: { field: 'b', order: 'descending' } },
        color: { field: 'count', type: 'quantitative', title: 'segments', scale: { type: 'symlog', scheme: 'viridis' } },
      },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  };
}

const bucketLabel = (b: number) => {
  const lo = 2 ** b;
  return lo >= 1e6 ? `${lo / 1e6} ms` : lo >= 1000 ? `${Math.round(lo / 100) / 10} µs` : `${lo} ns`;
};

export function flowsSpec(s: Series, columns = 400): Spec {
  const w = binMs(s.flows.map((f) => f.unixMs), columns);
  const bins = new Map<string, { flow: string; t: number; mbits: number[]; retrans: number; samples: number }>();
  for (const f of s.flows) {
    const t = binOf(f.unixMs, w), key = `${f.flow}|${t}`;
    const b = bins.get(key) ?? { flow: f.flow, t, mbits: [], retrans: 0, samples: 0 };
    if (f.throughputBytesPerS !== null) b.mbits.push((f.throughputBytesPerS * 8) / 1e6);
    b.retrans += f.retransmissions;
    b.samples += f.samples;
    bins.set(key, b);
  }
  const rows = [...bins.values()].map((b) => ({ flow: b.flow, t: b.t, mbits: b.mbits.length ? b.mbits.reduce((x, y) => x + y, 0) / b.mbits.length : null, retrans: b.samples ? b.retrans / b.samples : 0 }));
  return {
    ...base('Flows: throughput and retransmissions', 'the flows with the worst end-to-end p99, per window'),
    data: { values: rows },
    vconcat: [
      { width: 640, height: 160, mark: { type: 'line', point: true, tooltip: true }, encoding: { x: { field: 't', type: 'temporal', scale: { type: 'utc' }, title: 'time (UTC)', axis: { format: '%H:%M:%S' } }, y: { field: 'mbits', type: 'quantitative', title: 'throughput (Mbit/s)' }, color: { field: 'flow', type: 'nominal', title: 'flow' } } },
      { width: 640, height: 120, mark: { type: 'line', point: true }, encoding: { x: { field: 't', type: 'temporal', scale: { type: 'utc' }, title: 'time (UTC)', axis: { format: '%H:%M:%S' } }, y: { field: 'retrans', type: 'quantitative', title: 'retransmitted samples (%)', axis: { format: '.0%' } }, color: { field: 'flow', type: 'nominal' }, tooltip: [{ field: 't', type: 'temporal', timeUnit: 'utchoursminutesseconds', title: 'time (UTC)' }, { field: 'flow' }, { field: 'retrans', title: 'retransmitted samples', format: '.1%' }] } },
    ],
  };
}

/** The probe mesh's matrix: the median one-way delay from each server (row) to each other (column), without application traffic. */
export function meshMatrixModel(r: Report) {
  const servers = [...new Set(r.mesh.directions.flatMap((d) => [d.src, d.dst]))].sort();
  return servers.flatMap((src) => servers.filter((dst) => dst !== src).map((dst) => {
    const d = r.mesh.directions.find((x) => x.src === src && x.dst === dst);
    return { src, dst, p50: d ? us(d.oneWayP50Ns) : null, bound: d ? us(d.boundNs) : null, loss: d ? d.lossRatio : null };
  }));
}

export function meshMatrixSpec(r: Report): Spec {
  const subtitle = `median over ${r.mesh.rounds} mesh rounds, from the sender (row) to the receiver (column), clock-corrected; no application traffic needed; grey: not probed`;
  return serverMatrix('Probe mesh: one-way delay between servers', subtitle, meshMatrixModel(r), 'p50', 'one-way p50 (µs, log)');
}

/** The probe mesh over time: each round's one-way delay for the slowest directions, with the clock bound as a band. */
export function meshTimeSpec(s: Series, r: Report, maxDirections = 8, columns = 400): Spec {
  const slowest = new Set(r.mesh.directions.slice(0, maxDirections).map((d) => `${d.src} → ${d.dst}`));
  const mine = s.mesh.filter((x) => slowest.has(`${x.src} → ${x.dst}`));
  const w = binMs(mine.map((x) => x.unixMs), columns);
  const bins = new Map<string, { direction: string; t: number; v: number[]; bound: number }>();
  for (const x of mine) {
    const direction = `${x.src} → ${x.dst}`, t = binOf(x.unixMs, w), key = `${direction}|${t}`;
    const b = bins.get(key) ?? { direction, t, v: [], bound: 0 };
    b.v.push(x.oneWayNs);
    b.bound = Math.max(b.bound, x.boundNs);
    bins.set(key, b);
  }
  const rows = [...bins.values()].map((b) => {
    const m = lowerMedian(b.v);
    return { direction: b.direction, t: b.t, us: us(m), lo: us(Math.max(0, m - b.bound)), hi: us(m + b.bound) };
  });
  return {
    ...base('Probe mesh: one-way delay over time', 'per mesh round, the slowest directions: the median one-way delay (line) and its clock bound (band)'),
    width: 640,
    height: 240,
    data: { values: rows },
    encoding: { x: { field: 't', type: 'temporal', scale: { type: 'utc' }, title: 'time (UTC)', axis: { format: '%H:%M:%S' } }, color: { field: 'direction', type: 'nominal', title: 'sender → receiver' } },
    layer: [
      { mark: { type: 'area', opacity: 0.25 }, encoding: { y: { field: 'lo', type: 'quantitative', title: 'one-way delay (µs, log scale)', scale: { type: 'symlog' } }, y2: { field: 'hi' } } },
      { mark: { type: 'line', point: true, tooltip: true }, encoding: { y: { field: 'us', type: 'quantitative' } } },
    ],
  };
}

/** Every graph of a report, by file name (without .svg); the mesh's when there are mesh rounds. */
export function allSpecs(r: Report, s: Series): Record<string, Spec> {
  return {
    breakdown: breakdownSpec(r),
    tail: tailSpec(r),
    matrix: matrixSpec(r),
    'one-way-over-time': oneWayTimeSpec(s, r),
    'layer-cdf': cdfSpec(s),
    'kernel-heatmap': heatmapSpec(s),
    flows: flowsSpec(s),
    ...(r.mesh.directions.length ? { 'mesh-matrix': meshMatrixSpec(r), 'mesh-over-time': meshTimeSpec(s, r) } : {}),
  };
}
