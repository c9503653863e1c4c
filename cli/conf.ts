/** `latscope conf check DIR`: validate a conf folder without touching any server or database. */
import { Command } from 'commander';
import { checkDeployment } from '../conf/deployment.js';

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
  return conf;
}
