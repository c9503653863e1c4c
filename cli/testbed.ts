/** `latscope testbed up|down|status`: the local testbed of network namespaces. */
import { numberIn } from './options.js';
import { Command, Option } from 'commander';
import { testbedUp, testbedDown, testbedStatus } from '../local/testbed.js';

export function testbedCommand(): Command {
  const cmd = new Command('testbed').description('create, inspect and remove the local testbed: hosts as network namespaces, each with its own sshd');
  const id = () => new Option('--id <id>', 'testbed id: 1 to 5 lowercase letters or digits').default('demo');
  cmd
    .command('up')
    .description('create N hosts on a bridge (or two subnets joined by a router namespace)')
    .addOption(id())
    .option('--hosts <n>', 'number of hosts', numberIn('--hosts', 1, 64), 3)
    .option('--router', 'put the hosts on two subnets joined by a router namespace', false)
    .action(async (o: { id: string; hosts: number; router: boolean }) => {
      const tb = await testbedUp({ id: o.id, hosts: o.hosts, router: o.router });
      console.log(`testbed ${tb.id} up: manager at ${tb.managerAddress}`);
      for (const h of tb.hosts) console.log(`  ${h.name}  ${h.address}  netns ${h.netns}  ssh root@${h.address} -i ${tb.sshKeyPath}`);
    });
  cmd
    .command('down')
    .description('remove every namespace, link, process and BPF leftover of the testbed (also after a crash)')
    .addOption(id())
    .action(async (o: { id: string }) => {
      const removed = await testbedDown(o.id);
      console.log(removed.length ? `removed: ${removed.join(', ')}` : `testbed ${o.id}: nothing to remove`);
    });
  cmd
    .command('status')
    .description('show each host, its namespace and its sshd')
    .addOption(id())
    .option('--json', 'print JSON', false)
    .action((o: { id: string; json: boolean }) => {
      const s = testbedStatus(o.id);
      if (o.json) return console.log(JSON.stringify(s, null, 2));
      console.log(`testbed ${s.id}: ${s.up ? 'up' : 'down'}`);
      for (const h of s.hosts) console.log(`  ${h.name}  ${h.address}  netns ${h.netnsPresent ? 'present' : 'MISSING'}  sshd ${h.sshdPid ?? 'NOT RUNNING'}`);
      if (s.strays.length) console.log(`  stray namespaces (run "latscope testbed down --id ${s.id}"): ${s.strays.join(', ')}`);
      if (!s.up) process.exitCode = 3;
    });
  return cmd;
}
