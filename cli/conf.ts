/**
 * `latscope conf check DIR`: validate a conf folder without touching any server or database.
 * `latscope conf init DIR`: write a commented conf folder to start from (conf/examples), with a
 * fresh time-sync key; the Redis and database passwords are the operator's to put in.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { checkDeployment } from '../conf/deployment.js';
import { projectRoot } from '../lib/paths.js';

export function confCommand(): Command {
  const conf = new Command('conf').description('work with a conf/ folder');
  conf
    .command('check')
    .description('validate every file of a conf folder (schemas, cross-file rules, secret files); touches nothing')
    .argument('<dir>', 'the conf folder')
    .action((dir: string) => {
      const { deployment: d, errors } = checkDeployment(dir);
      for (const w of d?.warnings ?? []) console.error(`warning: ${w}`);
      if (errors.length) {
        for (const e of errors) console.error(e.message);
        throw new Error(`${errors.length} problem${errors.length > 1 ? 's' : ''} in ${dir}; nothing was changed`);
      }
      const kinds = d!.servers.map((s) => s.kind);
      console.log(
        `${d!.dir}: good: ${d!.servers.length} servers (${['bare-metal', 'vm', 'container'].map((k) => `${kinds.filter((x) => x === k).length} ${k}`).join(', ')}), ` +
          `ports ${d!.sampling.ports.join(',')}, time sync ${d!.ping ? `every ${d!.timeSync.time_interval} s on port ${d!.ping.port}` : 'off (no ping_info.yaml)'}`,
      );
    });
  conf
    .command('init')
    .description('write a commented conf folder to start from: every file with its options explained, and a fresh time-sync key')
    .argument('<dir>', 'a folder that does not exist yet, or is empty')
    .addHelpText('after', '\nExamples:\n  latscope conf init /etc/latscope && $EDITOR /etc/latscope/connect_info.yaml\n  latscope conf check /etc/latscope\n\nExit codes: 0 written, 1 the folder is not empty (nothing is written), 64 a usage error.\n')
    .action((dir: string) => {
      const to = resolve(dir);
      if (existsSync(to) && readdirSync(to).length) throw new Error(`${to} is not empty: conf init writes only into a new or empty folder; nothing was written`);
      const examples = join(projectRoot, 'conf', 'examples');
      mkdirSync(join(to, 'secrets'), { recursive: true, mode: 0o700 });
      const files = readdirSync(examples).filter((f) => f.endsWith('.yaml')).sort();
      for (const f of files) copyFileSync(join(examples, f), join(to, f));
      // the deployment's own secret; the others belong to the operator's Redis and database
      writeFileSync(join(to, 'secrets', 'timesync.key'), `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
      console.log(
        [
          `${to}: wrote ${files.join(', ')} and secrets/timesync.key (a fresh time-sync key).`,
          'Next:',
          `  1. put the Redis password in ${join(to, 'secrets', 'redis.password')} and the database's in ${join(to, 'secrets', 'db.password')} (mode 600);`,
          `  2. list your servers in ${join(to, 'connect_info.yaml')}, and set the manager's address in management_server_info.yaml;`,
          `  3. latscope conf check ${to}   (names every file and key still to fix)`,
        ].join('\n'),
      );
    });
  return conf;
}
