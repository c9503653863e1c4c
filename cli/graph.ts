/**
 * `latscope graph --conf DIR --out DIR [--since 15m] [--pair A,B]`: the analyzer's results as
 * SVG graphs and one self-contained report.html (open it in any browser, offline).
 * Exit codes: 0 written, 1 bad input or database unreachable.
 */
import { confOption, durationText, orUsageError, rangeOf, timeMs } from './options.js';
import { Command } from 'commander';
import { resolve } from 'node:path';
import { loadReport, loadSeries } from '../analyzer/report.js';
import { writeGraphs } from '../graph/write.js';
import { loadConf, openDb } from './db.js';

export function graphCommand(): Command {
  return new Command('graph')
    .description('write the graphs (SVG) and report.html: per-pair breakdown, tail shares, server matrix, one-way over time, layer CDFs, kernel heatmaps, flows')
    .addOption(confOption('database_info.yaml'))
    .requiredOption('--out <dir>', 'folder for the SVG files and report.html (created if missing)')
    .option('--since <duration>', 'only the last 90s, 15m, 2h, 1d of windows (default: everything analyzed)', durationText('--since'))
    .option('--from <time>', 'only windows from this RFC 3339 time on (e.g. 2026-12-02T14:05:00Z), instead of --since', timeMs('--from'))
    .option('--to <time>', 'only windows that start before this RFC 3339 time', timeMs('--to'))
    .option('--pair <a,b>', 'only the pair from server A to server B')
    .addHelpText('after', '\nExamples:\n  latscope graph --conf conf/ --out graphs/ --since 1h\n  latscope graph --conf conf/ --out incident/ --from 2026-12-02T14:00:00Z --to 2026-12-02T14:30:00Z\n  xdg-open graphs/report.html\n\nExit codes: 0 written, 1 bad input or database unreachable, 64 a usage error (a malformed --since, --from or --to).\n')
    .action(async (o: { conf: string; out: string; since?: string; from?: number; to?: number; pair?: string }, cmd: Command) => {
      const range = orUsageError(cmd, () => rangeOf(o));
      const pair = o.pair?.split(',') as [string, string] | undefined;
      if (pair && (pair.length !== 2 || !pair[0] || !pair[1])) throw new Error(`--pair ${o.pair}: expected two server names separated by a comma`);
      const d = loadConf(o.conf);
      const pool = await openDb(d);
      try {
        const opts = { ...range, pair };
        const report = await loadReport(pool, opts);
        const series = await loadSeries(pool, report, opts);
        const [[c]] = (await pool.query('SELECT COUNT(*) AS n FROM packets')) as any;
        const out = await writeGraphs(report, series, resolve(o.out), { records: Number(c.n) });
        console.log(`wrote ${out.files.length} graphs and ${out.html} (${report.pairs.length} pairs, ${report.range.windows} windows)`);
      } finally {
        await pool.end();
      }
    });
}
