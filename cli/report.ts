/**
 * `latscope report --conf DIR [--since 15m] [--pair A,B] [--flow TEXT] [--json]`: where the time
 * went, from the analyzer's tables: per pair of servers the one-way and end-to-end percentiles
 * with their clock bound and the segment that holds the tail; per host its own layers beside
 * the kernel's histograms; the worst flows; unmatched samples, clock faults and spikes.
 * `--json` prints analyzer/report.ts's Report (version 1; see docs/report.schema.json).
 * Exit codes: 0 printed (also when the range is empty, which it says), 1 bad input or database unreachable.
 */
import { confOption, durationMs, durationText, orUsageError, rangeOf, timeMs, numberIn } from './options.js';
import { watching } from './watch.js';
import { forTerminal } from '../lib/terminal.js';
import { Command } from 'commander';
import { loadReport, type PairReport, type Report, type SegmentStats } from '../analyzer/report.js';
import { SEGMENTS } from '../protocol/layers.js';
import { loadConf, openDb } from './db.js';

/** Names of segments as a person reads them. */
export const SEGMENT_LABEL: Record<string, string> = {
  tx_sock_tcp: 'tx sock→tcp', tx_tcp_ip: 'tx tcp→ip', tx_ip_dev: 'tx ip→dev', tx_hops: 'tx hops', wire: 'wire',
  rx_hops: 'rx hops', rx_dev_ip: 'rx dev→ip', rx_ip_tcp: 'rx ip→tcp', rx_tcp_sock: 'rx tcp→sock', one_way: 'one-way', end_to_end: 'end-to-end',
};

const us = (ns: number | undefined | null, digits = 1): string => (ns === undefined || ns === null || Number.isNaN(ns) ? '-' : (ns / 1000).toFixed(digits));
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const when = (ms: number | null) => (ms === null ? '?' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'));
const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

/** Below this many samples a p99.9 is no more than their largest: marked so (*). */
const P999_SAMPLES = 1000;
const p999 = (s: { samples: number; p999: number } | undefined) => (s ? `${us(s.p999)}${s.samples < P999_SAMPLES ? '*' : ''}` : us(undefined));

function pairLine(p: PairReport): string {
  const ow = p.segments.one_way, e2e = p.segments.end_to_end;
  const tail = p.tail ? `${SEGMENT_LABEL[p.tail.holder]} ${pct(p.tail.shares[p.tail.holder]!)}` : '-';
  const grows = p.tail ? `${SEGMENT_LABEL[p.tail.growsMost.segment]} +${us(p.tail.growsMost.growthNs)}` : '-';
  return (
    `  ${pad(`${p.src} → ${p.dst}`, 22)}${lpad(String(p.paths), 7)}` +
    `${lpad(us(ow?.p50), 9)}${lpad(us(ow?.p99), 9)}${lpad(p999(ow), 9)}` +
    `${lpad(us(e2e?.p50), 9)}${lpad(us(e2e?.p99), 9)}${lpad(p999(e2e), 9)}` +
    `${lpad(`±${us(p.boundNs, 2)}`, 9)}  ${pad(tail, 20)} ${grows}`
  );
}

const p50p99 = (s: SegmentStats | undefined) => (s ? `${us(s.p50)}/${us(s.p99)}` : '-');

/** A host event as a person reads it: what, how long, who. */
function hostEventText(e: Report['spikes'][number]['hostEvents'][number]): string {
  const d = `${us(e.delayNs)} µs`;
  switch (e.kind) {
    case 'preempt':
      return `${e.otherComm}/${e.otherPid} preempted ${e.comm}/${e.pid} (off the CPU ${d})`;
    case 'runq':
      return `${e.comm}/${e.pid} waited ${d} to run (after ${e.otherComm}/${e.otherPid})`;
    case 'hardirq':
    case 'softirq':
      return `${e.detail} ran ${d}, interrupting ${e.comm}/${e.pid}`;
    case 'syscall':
      return `${e.comm}/${e.pid} spent ${d} in ${e.detail}`;
    default:
      return `${e.kind} of ${e.comm}/${e.pid} for ${d}${e.detail ? ` (${e.detail})` : ''}`;
  }
}

/** The spikes, each with its segments and what its hosts were doing meanwhile. */
function formatSpikes(r: Report): string {
  if (!r.spikes.length) return 'No spike in the range (a path above analysis_info spike_factor times its window\'s median).';
  const out = [`Spikes, largest first (end-to-end above spike_factor × the window's median)`];
  for (const s of r.spikes) {
    out.push('');
    out.push(`${s.atUnixMs === null ? '' : `${new Date(s.atUnixMs).toISOString().replace('T', ' ').replace('Z', ' UTC')}  `}${s.src} → ${s.dst}${s.flow ? ` (${s.flow})` : ''}: ${us(s.endToEndNs)} µs end to end, ${s.timesMedian.toFixed(0)}× the median of ${us(s.medianNs)} µs; mostly ${SEGMENT_LABEL[s.topSegment] ?? s.topSegment}`);
    out.push(`  ${Object.entries(s.segments).filter(([, v]) => v !== null).map(([k, v]) => `${SEGMENT_LABEL[k] ?? k} ${us(v)}`).join(' · ')} µs`);
    out.push(`  sender cpu ${s.txCpu ?? '?'} thread ${s.txTid ?? '?'}, receiver cpu ${s.rxCpu ?? '?'} thread ${s.rxTid ?? '?'}`);
    if (s.hostEvents.length) for (const e of s.hostEvents) out.push(`  meanwhile on ${e.server} cpu ${e.cpu}, ${us(e.offsetNs)} µs after it arrived: ${hostEventText(e)}`);
    else out.push('  no host event on its CPUs while it was there (or no host-jitter module running: function_info.yaml jitter)');
  }
  return out.join('\n');
}

/** The probe mesh's section: every direction measured, slowest first, and the slowest named. */
function formatMesh(r: Report): string[] {
  const m = r.mesh;
  if (!m.edges) return [];
  const out = ['', `Probe mesh: one-way delay between servers without application traffic, µs (${m.rounds} rounds; ± the clocks' bound)`];
  out.push(`  ${pad('direction', 30)}${lpad('min', 9)}${lpad('p50', 9)}${lpad('reverse', 9)}${lpad('bound', 9)}${lpad('loss', 8)}`);
  for (const d of m.directions)
    out.push(`  ${pad(`${d.src} → ${d.dst}`, 30)}${lpad(us(d.oneWayMinNs), 9)}${lpad(us(d.oneWayP50Ns), 9)}${lpad(d.reverseP50Ns === null ? '-' : us(d.reverseP50Ns), 9)}${lpad(`±${us(d.boundNs)}`, 9)}${lpad(`${(100 * d.lossRatio).toFixed(1)}%`, 8)}`);
  if (m.slowest)
    out.push(`  slowest direction: ${m.slowest.src} → ${m.slowest.dst}, ${us(m.slowest.oneWayP50Ns)} µs one way${m.slowest.reverseP50Ns === null ? '' : ` (${m.slowest.dst} → ${m.slowest.src}: ${us(m.slowest.reverseP50Ns)} µs)`}`);
  if (m.unsolved) out.push(`  ${m.unsolved} edges had no clock tie to the manager (no anchor reached in their round): left out`);
  if (m.rejected) out.push(`  ${m.rejected} edges set aside by loop consistency (their offsets disagree with the rest of the mesh)`);
  if (m.clocks.length) out.push(`  clocks as the last round solved them, minus the manager's, µs: ${m.clocks.map((c) => `${c.server} ${us(Number(c.offsetNs))} ±${us(c.boundNs)}`).join(', ')}`);
  return out;
}

export function formatReport(r: Report, o: { sinceText?: string; spikesOnly?: boolean } = {}): string {
  if (o.spikesOnly) return formatSpikes(r);
  const out: string[] = [];
  const paths = r.pairs.reduce((n, p) => n + p.paths, 0);
  out.push(`latscope report: ${when(r.range.fromUnixMs)} to ${when(r.range.toUnixMs)}${o.sinceText ? ` (last ${o.sinceText})` : ''}, ${r.range.windows} windows of ${(r.range.windowNs ?? 0) / 1e9} s; ${r.pairs.length} server pairs, ${paths} paths`);
  if (!r.range.windows) {
    out.push('  no analyzed traffic in this range: is the manager running (its analysis job), or run latscope analyze; widen --since');
    out.push(...formatMesh(r));
    return out.join('\n');
  }
  out.push('');
  out.push('Server pairs, µs (one-way: sender\'s device → receiver\'s device; end-to-end: socket → socket; ± the clock bound)');
  out.push(`  ${pad('pair', 22)}${lpad('paths', 7)}${lpad('1way p50', 9)}${lpad('p99', 9)}${lpad('p99.9', 9)}${lpad('e2e p50', 9)}${lpad('p99', 9)}${lpad('p99.9', 9)}${lpad('bound', 9)}  ${pad('tail held by', 20)} grows most`);
  for (const p of r.pairs) out.push(pairLine(p));
  if (r.pairs.some((p) => [p.segments.one_way, p.segments.end_to_end].some((x) => x && x.samples < P999_SAMPLES)))
    out.push(`  * from fewer than ${P999_SAMPLES.toLocaleString('en-US')} samples: the p99.9 is their largest, not a percentile to compare`);
  const worst = r.pairs.find((p) => p.tail);
  if (worst?.tail) {
    out.push('');
    out.push(`Worst pair ${worst.src} → ${worst.dst}: its slowest 1% of paths (end-to-end ≥ p99, ${worst.tail.paths} paths, mean ${us(worst.tail.meanNs)} µs) spent:`);
    out.push(`  ${SEGMENTS.map((s) => `${SEGMENT_LABEL[s]} ${pct(worst.tail!.shares[s]!)}`).join(' · ')}`);
    out.push(`  → ${SEGMENT_LABEL[worst.tail.holder]} holds the tail; ${SEGMENT_LABEL[worst.tail.growsMost.segment]} grows most from its median (+${us(worst.tail.growsMost.growthNs)} µs)`);
  }
  out.push('');
  out.push('Layers per host, µs p50/p99 (sampled records; kernel: every segment, the log2 bucket holding the p99)');
  for (const h of r.hosts) {
    const s = h.segments;
    out.push(`  ${pad(h.server, 14)} tx: sock→tcp ${p50p99(s.tx_sock_tcp)}  tcp→ip ${p50p99(s.tx_tcp_ip)}  ip→dev ${p50p99(s.tx_ip_dev)}  hops ${p50p99(s.tx_hops)}`);
    out.push(`  ${pad('', 14)} rx: hops ${p50p99(s.rx_hops)}  dev→ip ${p50p99(s.rx_dev_ip)}  ip→tcp ${p50p99(s.rx_ip_tcp)}  tcp→sock ${p50p99(s.rx_tcp_sock)}`);
    const k = Object.entries(h.kernel);
    if (k.length) out.push(`  ${pad('', 14)} kernel: ${k.slice(0, 8).map(([label, q]) => `${label} [${us(q.p99.low, 0)}, ${us(q.p99.high, 0)})`).join('  ')}`);
  }
  if (r.flows.length) {
    out.push('');
    out.push('Flows with the worst end-to-end p99');
    for (const f of r.flows)
      out.push(
        `  ${pad(`${f.src}:${f.sport} → ${f.dst}:${f.dport}`, 40)} e2e p99 ${lpad(us(f.endToEnd?.p99), 8)} µs  ${lpad(f.throughputBytesPerS === null ? '-' : `${((f.throughputBytesPerS * 8) / 1e6).toFixed(1)} Mbit/s`, 14)}  retrans ${pct(f.retransmissionRate)} of ${f.samples}`,
      );
  }
  out.push('');
  out.push(r.unmatched.length ? `Unmatched samples: ${r.unmatched.map((u) => `${u.src} → ${u.dst} ${u.reason.replace(/_/g, ' ')}: ${u.samples}`).join('; ')}` : 'Unmatched samples: none');
  out.push(`Clock faults (one-way below zero by more than its bound): ${r.faults}`);
  out.push(...formatMesh(r));
  out.push(`Graphs and a self-contained HTML report of the same: latscope graph --conf DIR --out DIR${o.sinceText ? ` --since ${o.sinceText}` : ''}`);
  if (r.spikes.length) {
    out.push('');
    out.push(`Spikes (end-to-end above the analysis spike_factor times its window's median), largest first`);
    for (const s of r.spikes) {
      out.push(`  ${pad(`${s.src} → ${s.dst}`, 22)} ${lpad(us(s.endToEndNs), 9)} µs = ${s.timesMedian.toFixed(0)}× median, mostly ${SEGMENT_LABEL[s.topSegment] ?? s.topSegment}; receiver cpu ${s.rxCpu ?? '?'} thread ${s.rxTid ?? '?'}`);
      for (const e of s.hostEvents.slice(0, 3))
        out.push(`      meanwhile on ${e.server} cpu ${e.cpu}: ${hostEventText(e)}`);
    }
  }
  return out.join('\n');
}

export function reportCommand(): Command {
  return new Command('report')
    .description('where the time went: per server pair, per host layer, per flow; tail attribution, unmatched samples, clock faults and spikes')
    .addOption(confOption('database_info.yaml'))
    .option('--since <duration>', 'only the last 90s, 15m, 2h, 1d of windows (default: everything analyzed)', durationText('--since'))
    .option('--from <time>', 'only windows from this RFC 3339 time on (e.g. 2026-12-02T14:05:00Z), instead of --since', timeMs('--from'))
    .option('--to <time>', 'only windows that start before this RFC 3339 time', timeMs('--to'))
    .option('--pair <a,b>', 'only the pair from server A to server B (connect_info hostnames)')
    .option('--flow <text>', 'only flows whose id or "src:sport>dst:dport" contains TEXT')
    .option('--top <n>', 'flows and spikes listed', numberIn('--top', 1, 10_000), 10)
    .option('--spikes', 'only the spikes, each with what its hosts were doing meanwhile (function_info.yaml jitter)', false)
    .option('--json', 'print the report as JSON (stable: version 1; with --watch one document per line)', false)
    .option('--watch <duration>', 'print it again every 5s, 1m, … (--since moves with it) until Ctrl-C', durationMs('--watch', 1000, 86_400_000))
    .addHelpText('after', '\nExamples:\n  latscope report --conf conf/ --since 15m\n  latscope report --conf conf/ --from 2026-12-02T14:00:00Z --to 2026-12-02T14:30:00Z\n  latscope report --conf conf/ --pair node1,node2 --json\n  latscope report --conf conf/ --spikes --top 20\n  latscope report --conf conf/ --since 5m --watch 10s\n\nExit codes: 0 printed, 1 the conf or database cannot be used or a --pair is not a server, 64 a usage error (e.g. a malformed --since).\n')
    .action(async (o: { conf: string; since?: string; from?: number; to?: number; pair?: string; flow?: string; top: number; json: boolean; spikes: boolean; watch?: number }, cmd: Command) => {
      orUsageError(cmd, () => rangeOf(o));
      const pair = o.pair?.split(',');
      if (pair && (pair.length !== 2 || !pair[0] || !pair[1])) throw new Error(`--pair ${o.pair}: expected two server names separated by a comma, e.g. --pair node1,node2`);
      const d = loadConf(o.conf);
      const pool = await openDb(d);
      try {
        if (pair) {
          // the servers the results know (the database, not connect_info: an analyst may have only database_info)
          const [known] = (await pool.query('SELECT name FROM servers ORDER BY name')) as any;
          const names = (known as { name: string }[]).map((r) => r.name);
          for (const n of pair) if (!names.includes(n)) throw new Error(`--pair: ${n} is not a server in the results (servers: ${names.join(', ') || 'none yet'})`);
        }
        await watching(o.watch, o.json, async () => {
          const r = await loadReport(pool, { ...rangeOf(o), pair: pair as [string, string] | undefined, flow: o.flow, top: o.top });
          const doc = o.spikes ? { version: r.version, generatedAtUnixMs: r.generatedAtUnixMs, range: r.range, spikes: r.spikes } : r;
          return o.json ? JSON.stringify(doc, null, o.watch ? undefined : 2) : forTerminal(formatReport(r, { sinceText: o.since, spikesOnly: o.spikes }));
        });
      } finally {
        await pool.end();
      }
    });
}
