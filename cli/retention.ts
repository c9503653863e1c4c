/**
 * `latscope retention --conf DIR`: applies database_info.yaml's retention now, as the manager's
 * hourly job does: old days of packets, paths and histograms dropped whole, old results deleted.
 * Exit codes: 0 done, 1 bad conf or database unreachable.
 */
import { confOption } from './options.js';
import { Command } from 'commander';
import { applyRetention } from '../db/retention.js';
import { loadConf, openDb } from './db.js';

export function retentionCommand(): Command {
  return new Command('retention')
    .description("apply database_info.yaml's retention now: days older than it are dropped whole (packets, paths, layer_histograms), old results deleted")
    .addOption(confOption('database_info.yaml'))
    .option('--json', 'print what was dropped and deleted as JSON (db/retention.ts RetentionResult)', false)
    .addHelpText('after', '\nExamples:\n  latscope retention --conf conf/\n  latscope retention --conf conf/ --json\n')
    .action(async (o: { conf: string; json: boolean }) => {
      const d = loadConf(o.conf);
      const pool = await openDb(d, true);
      try {
        const r = await applyRetention(pool, d.database.retention);
        if (o.json) return console.log(JSON.stringify(r));
        const { packets, histograms, results } = d.database.retention;
        const deleted = Object.entries(r.deletedRows);
        console.log(
          `retention (packets ${packets || '∞'} days, histograms ${histograms || '∞'}, results ${results || '∞'}): ` +
            `${r.droppedPartitions.length ? `dropped ${r.droppedPartitions.join(', ')}` : 'no day old enough to drop'}; ` +
            `${deleted.length ? `deleted ${deleted.map(([t, n]) => `${n} rows of ${t}`).join(', ')}` : 'no row deleted'}` +
            (r.createdPartitions.length ? `; made partitions ${r.createdPartitions.join(', ')}` : ''),
        );
      } finally {
        await pool.end();
      }
    });
}
