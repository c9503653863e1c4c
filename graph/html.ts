/**
 * The HTML report: one self-contained file (inline SVG and CSS, nothing fetched), with the
 * summary (servers, pairs, time range, clock bounds, records and drops), the worst pairs and the
 * segment that holds their tail, every graph, spikes, unmatched samples and clock faults.
 */
import type { Report } from '../analyzer/report.js';
import { SEGMENT_TITLES } from './specs.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const us = (ns: number | undefined | null) => (ns === undefined || ns === null || Number.isNaN(ns) ? '–' : (ns / 1000).toFixed(1));
const when = (ms: number | null) => (ms === null ? '?' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'));

export interface GraphFile {
  name: string;
  title: string;
  svg: string;
  /** How to read it. */
  reading: string;
}

export interface Collection {
  records?: number;
  dropped?: number;
}

export function reportHtml(r: Report, graphs: GraphFile[], c: Collection = {}): string {
  const paths = r.pairs.reduce((n, p) => n + p.paths, 0);
  const maxBound = Math.max(0, ...r.pairs.map((p) => p.boundNs));
  const unmatched = r.unmatched.reduce((n, u) => n + u.samples, 0);
  const worst = r.pairs
    .slice(0, 10)
    .map(
      (p) =>
        `<tr><td>${esc(p.src)} → ${esc(p.dst)}</td><td>${p.paths}</td><td>${us(p.segments.one_way?.p50)}</td><td>${us(p.segments.one_way?.p99)}</td><td>${us(p.segments.end_to_end?.p50)}</td><td>${us(p.segments.end_to_end?.p99)}</td><td>±${us(p.boundNs)}</td>` +
        `<td class="holder">${p.tail ? `${esc(SEGMENT_TITLES[p.tail.holder]!)} ${(100 * p.tail.shares[p.tail.holder]!).toFixed(0)}%` : '–'}</td><td>${p.tail ? `${esc(SEGMENT_TITLES[p.tail.growsMost.segment]!)} +${us(p.tail.growsMost.growthNs)}` : '–'}</td><td>${p.faults}</td></tr>`,
    )
    .join('\n');
  const spikes = r.spikes
    .map((s) => `<tr><td>${s.atUnixMs === null ? '–' : esc(new Date(s.atUnixMs).toISOString().slice(11, 23))}</td><td>${esc(s.src)} → ${esc(s.dst)}</td><td>${s.flow ? esc(s.flow) : '–'}</td><td>${us(s.endToEndNs)}</td><td>${s.timesMedian.toFixed(0)}×</td><td>${esc(SEGMENT_TITLES[s.topSegment] ?? s.topSegment)}</td><td>${s.rxCpu ?? '?'} / ${s.rxTid ?? '?'}</td></tr>`)
    .join('\n');
  const um = r.unmatched.map((u) => `<tr><td>${esc(u.src)} → ${esc(u.dst)}</td><td>${esc(u.reason.replace(/_/g, ' '))}</td><td>${u.samples}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>latscope report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: .6em; }
.summary div { background: #f5f5f5; padding: .5em .8em; border-radius: 4px; } .summary b { display: block; font-size: 1.3em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: .25em .7em; border-bottom: 1px solid #eee; text-align: right; }
td:first-child, th:first-child { text-align: left; } .holder { font-weight: bold; }
figure { margin: 1.5em 0; } figcaption { color: #555; max-width: 800px; } svg { max-width: 100%; height: auto; }
</style></head>
<body>
<h1>latscope report</h1>
<p>${when(r.range.fromUnixMs)} to ${when(r.range.toUnixMs)} · ${r.range.windows} windows of ${(r.range.windowNs ?? 0) / 1e9} s · generated ${when(r.generatedAtUnixMs)}</p>
<div class="summary">
<div><b>${r.servers.length}</b>servers</div><div><b>${r.pairs.length}</b>server pairs</div><div><b>${paths}</b>joined paths</div>
<div><b>±${us(maxBound)} µs</b>largest clock bound</div><div><b>${c.records ?? '–'}</b>records</div><div><b>${c.dropped ?? '–'}</b>dropped (observers)</div>
<div><b>${unmatched}</b>unmatched samples</div><div><b>${r.faults}</b>clock faults</div>
</div>
<h2>Worst pairs</h2>
<table><tr><th>sender → receiver</th><th>paths</th><th>one-way p50 µs</th><th>p99</th><th>end-to-end p50 µs</th><th>p99</th><th>bound</th><th>tail held by</th><th>grows most (µs)</th><th>clock faults</th></tr>
${worst}</table>
${graphs.map((g) => `<figure id="${esc(g.name)}"><h2>${esc(g.title)}</h2>${g.svg}<figcaption>${esc(g.reading)}</figcaption></figure>`).join('\n')}
<h2>Spikes</h2>
${spikes ? `<table><tr><th>time (UTC)</th><th>pair</th><th>flow</th><th>end-to-end µs</th><th>× median</th><th>mostly</th><th>receiver cpu / thread</th></tr>${spikes}</table>` : '<p>none</p>'}
<h2>Unmatched samples</h2>
${um ? `<table><tr><th>pair</th><th>reason</th><th>samples</th></tr>${um}</table>` : '<p>none: every sample of the range joined into a path</p>'}
<p>Clock faults (a one-way delay below zero by more than its bound): ${r.faults}</p>
</body></html>
`;
}
