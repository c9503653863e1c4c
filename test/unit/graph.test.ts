/**
 * graph/: the specs from small known data (segments in order, stacked from the right values,
 * the wire's clock bound, grey cells where no traffic, fixed colours), and every graph rendered
 * to SVG in Node with marks and axis titles. No database, no browser, no root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Report, Series, SegmentStats } from '../../analyzer/report.js';
import { allSpecs, breakdownModel, matrixModel, meshMatrixModel, SEGMENT_COLORS, SEGMENT_TITLES } from '../../graph/specs.js';
import { renderSvg } from '../../graph/render.js';
import { reportHtml } from '../../graph/html.js';
import { SEGMENTS } from '../../protocol/layers.js';

const st = (p50: number, p99 = p50 * 2): SegmentStats => ({ samples: 100, p50, p90: p50 * 1.5, p99, p999: p99 * 1.2, max: p99 * 1.5, mean: p50 * 1.1 });
const segs = (wire: number) => Object.fromEntries([...SEGMENTS.map((s, i) => [s, st(s === 'wire' ? wire : (i + 1) * 1000)]), ['one_way', st(wire + 4000)], ['end_to_end', st(wire + 45_000)]]);
const tail = (wireShare: number) => {
  const means = Object.fromEntries(SEGMENTS.map((s) => [s, s === 'wire' ? 100_000 * wireShare : (100_000 * (1 - wireShare)) / 8]));
  return { quantile: 0.99, paths: 10, meanNs: 100_000, means, shares: Object.fromEntries(SEGMENTS.map((s) => [s, means[s]! / 100_000])), holder: 'wire', growsMost: { segment: 'wire', growthNs: 50_000 } };
};

const REPORT: Report = {
  version: 1,
  generatedAtUnixMs: 1_764_000_000_000,
  range: { fromUnixMs: 1_764_000_000_000, toUnixMs: 1_764_000_060_000, windows: 6, windowNs: 10e9 },
  servers: ['a', 'b', 'c'],
  pairs: [
    { src: 'a', dst: 'b', paths: 100, segments: segs(20_000), boundNs: 500, faults: 0, tail: tail(0.8) },
    { src: 'b', dst: 'a', paths: 100, segments: segs(10_000), boundNs: 300, faults: 0, tail: tail(0.2) },
  ],
  hosts: [{ server: 'a', segments: segs(0), kernel: {} }],
  flows: [],
  unmatched: [{ src: 'a', dst: '(not observed)', reason: 'peer_not_observed', samples: 3 }],
  faults: 0,
  spikes: [],
  mesh: { rounds: 0, settledRounds: 0, edges: 0, unsolved: 0, rejected: 0, directions: [], clocks: [], slowest: null },
};
const SERIES: Series = {
  oneWay: [0, 1, 2].flatMap((w) => [{ src: 'a', dst: 'b', unixMs: 1_764_000_000_000 + w * 10_000, p50: 24_000 + w * 100, p99: 40_000, boundNs: 500, samples: 30 }]),
  flows: [{ flow: '10.0.0.1:1 → 10.0.0.2:5000', unixMs: 1_764_000_000_000, throughputBytesPerS: 1e6, retransmissions: 1, samples: 50 }],
  kernel: [{ server: 'a', label: '5000 tx sock->tcp', unixMs: 1_764_000_000_000, bucket: 10, count: 40 }, { server: 'a', label: '5000 tx sock->tcp', unixMs: 1_764_000_010_000, bucket: 11, count: 4 }],
  cdf: [{ group: 'a', segment: 'tx_sock_tcp', ns: 1000, fraction: 0.5 }, { group: 'a', segment: 'tx_sock_tcp', ns: 3000, fraction: 1 }, { group: 'a → b', segment: 'wire', ns: 20_000, fraction: 1 }],
  mesh: [],
};

test('the breakdown: segments in path order, stacked from their medians, the tail bar from the tail means, the wire\'s bound around its end', () => {
  const m = breakdownModel(REPORT);
  const median = m.rows.filter((r) => r.pair === 'a → b' && r.bar === 'median');
  assert.deepEqual(median.map((r) => r.segment), SEGMENTS.map((s) => SEGMENT_TITLES[s]));
  assert.deepEqual(median.map((r) => r.us), [1, 2, 3, 4, 20, 6, 7, 8, 9]);
  assert.equal(median[4]!.from, 10, 'the wire starts after the sender\'s four segments (1+2+3+4 µs)');
  assert.equal(median[8]!.to, 60);
  const tailBar = m.rows.filter((r) => r.pair === 'a → b' && r.bar === 'tail (≥ p99)');
  assert.equal(tailBar.find((r) => r.segment === 'wire')!.us, 80);
  assert.ok(Math.abs(tailBar.at(-1)!.to - 100) < 1e-9, 'the tail means add up to the tail mean');
  const bound = m.bounds.find((b) => b.pair === 'a → b' && b.bar === 'median')!;
  assert.deepEqual([bound.lo, bound.hi, bound.boundUs], [29.5, 30.5, 0.5]);
});

test('the matrix: a cell per ordered pair of servers, grey (null) where no traffic went', () => {
  const m = matrixModel(REPORT);
  assert.deepEqual(m.find((c) => c.src === 'a' && c.dst === 'b'), { src: 'a', dst: 'b', p99: 48, bound: 0.5 });
  assert.equal(m.length, 2, 'only servers seen in pairs: a and b');
  const spec = JSON.stringify(allSpecs(REPORT, SERIES).matrix);
  assert.match(spec, /datum\.p99 === null/);
  assert.match(spec, /#d9d9d9/);
});

test('colours and order are fixed: every graph that colours by segment uses the same scale', () => {
  const specs = allSpecs(REPORT, SERIES);
  for (const name of ['breakdown', 'tail']) {
    const text = JSON.stringify(specs[name]);
    assert.ok(text.includes(JSON.stringify(SEGMENTS.map((s) => SEGMENT_COLORS[s]))), `${name} uses the segment palette`);
    assert.ok(text.includes(JSON.stringify(SEGMENTS.map((s) => SEGMENT_TITLES[s]))), `${name} uses the segment order`);
  }
  for (const [name, spec] of Object.entries(specs)) assert.ok(((spec.title as { text?: string })?.text ?? '').length > 10, `${name} has a title`);
});

test('every graph renders to an SVG with marks and axis titles, in Node', async () => {
  for (const [name, spec] of Object.entries(allSpecs(REPORT, SERIES))) {
    const svg = await renderSvg(spec);
    assert.match(svg, /^<svg/, name);
    assert.match(svg, /role-mark|class="mark-/, `${name} has marks`);
    assert.match(svg, /µs|%|sender|time/, `${name} has axis titles with units`);
  }
});

test('the HTML report is self-contained: inline SVG, no external reference, the worst pair and its tail holder', async () => {
  const html = reportHtml(REPORT, [{ name: 'breakdown', title: 'Where', reading: 'read', svg: await renderSvg(allSpecs(REPORT, SERIES).breakdown!) }]);
  assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//i);
  assert.doesNotMatch(html, /<script|<link|@import|url\(/i);
  assert.match(html, /<td>a → b<\/td>.*<td class="holder">wire 80%<\/td>/s);
  assert.match(html, /<svg/);
  assert.match(html, /a → \(not observed\).*peer not observed.*3/s);
});

test('the probe mesh: its matrix and its time series, only when there are mesh rounds; they render', async () => {
  assert.ok(!('mesh-matrix' in allSpecs(REPORT, SERIES)), 'no mesh graph without mesh rounds');
  const dir = (src: string, dst: string, p50: number, reverse: number) => ({ src, dst, oneWayMinNs: p50 - 1000, oneWayP50Ns: p50, boundNs: 2000, reverseP50Ns: reverse, rounds: 3, sent: 60, lost: 3, lossRatio: 0.05 });
  const r: Report = { ...REPORT, mesh: { rounds: 3, settledRounds: 0, edges: 6, unsolved: 0, rejected: 0, clocks: [], directions: [dir('a', 'c', 9_000_000, 40_000), dir('c', 'a', 40_000, 9_000_000), dir('a', 'b', 30_000, 31_000), dir('b', 'a', 31_000, 30_000)], slowest: { src: 'a', dst: 'c', oneWayP50Ns: 9_000_000, reverseP50Ns: 40_000 } } };
  const s: Series = { ...SERIES, mesh: [0, 1, 2].flatMap((k) => [{ src: 'a', dst: 'c', unixMs: 1_764_000_000_000 + k * 10_000, oneWayNs: 9_000_000 + k, boundNs: 2000 }, { src: 'c', dst: 'a', unixMs: 1_764_000_000_000 + k * 10_000, oneWayNs: 40_000, boundNs: 2000 }]) };
  const m = meshMatrixModel(r);
  assert.equal(m.length, 6, 'every ordered pair of a, b, c');
  assert.equal(m.find((x) => x.src === 'a' && x.dst === 'c')!.p50, 9000);
  assert.equal(m.find((x) => x.src === 'b' && x.dst === 'c')!.p50, null, 'not probed: grey');
  const specs = allSpecs(r, s);
  const t = specs['mesh-over-time'] as { data: { values: { direction: string; us: number; lo: number }[] } };
  assert.deepEqual([...new Set(t.data.values.map((v) => v.direction))].sort(), ['a → c', 'c → a']);
  assert.ok(t.data.values.every((v) => v.lo <= v.us));
  for (const name of ['mesh-matrix', 'mesh-over-time']) {
    const svg = await renderSvg(specs[name]!);
    assert.match(svg, /<svg/);
    assert.match(svg, /sender|time \(UTC\)/);
  }
});
