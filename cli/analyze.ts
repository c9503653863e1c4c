/**
 * `latscope analyze --conf DIR`: one analysis run now, as the manager's analysis job does it:
 * what the ingest added since the last run becomes paths, statistics, unmatched counts and spikes.
 * Exit codes: 0 done, 1 bad conf or database unreachable.
 */
import { confOption } from './options.js';
import { Command } from 'commander';
import { analyze } from '../analyzer/analyze.js';
import { analysisOptions } from '../analyzer/jobs.js';
import { loadConf, openDb } from './db.js';

export function analyzeCommand(): Command {
  return new Command('analyze')
    .description('run the analysis once: join what was ingested since the last run into paths between servers, statistics per window, tail attribution and spikes')
    .addOption(confOption('database_info.yaml, sampling_info.yaml, analysis_info.yaml'))
    .option('--final', 'do not wait for records whose other end has not arrived: count them as unmatched now', false)
    .option('--json', 'print the run summary as JSON', false)
    .addHelpText('after', '\nExamples:\n  latscope analyze --conf conf/\n  latscope analyze --conf conf/ --final --json\n')
    .action(async (o: { conf: string; final: boolean; json: boolean }) => {
      const d = loadConf(o.conf);
      const pool = await openDb(d, true);
      try {
        const opts = analysisOptions(d.analysis, d.sampling);
        const r = await analyze(pool, { ...opts, graceMs: o.final ? 0 : opts.graceMs, log: o.json ? undefined : (l) => console.error(l) });
        if (o.json) return console.log(JSON.stringify(r));
        const um = Object.entries(r.unmatched).filter(([, n]) => n).map(([k, n]) => `${n} ${k.replace(/_/g, ' ')}`);
        console.log(
          `analyzed ${r.records} records of ${r.batches} batches in ${(r.elapsedMs / 1000).toFixed(1)} s: ${r.paths} paths, ` +
            `${um.length ? um.join(', ') : 'none unmatched'}, ${r.pending} waiting for their other end, ${r.faults} clock faults, ${r.spikes} spikes, ${r.windows} windows` +
            (r.unusable ? `; ${r.unusable} records without a time at any layer, left out (unusable)` : ''),
        );
      } finally {
        await pool.end();
      }
    });
}
