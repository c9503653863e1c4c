/**
 * `latscope demo`: the main job end to end on the local default. Brings up the testbed and the
 * local servers, starts an observer on every test host over SSH, sends known traffic between
 * the hosts, and reports what each observer saw through Redis. Removes the testbed afterwards
 * unless --keep. Grows with the manager, time sync and analyzer.
 */
import { Command } from 'commander';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { testbedUp, testbedDown, type Testbed, type TestbedHost } from '../local/testbed.js';
import { startRedis, startMariaDb, stopRedis, stopMariaDb } from '../local/servers.js';
import { waitFor } from '../local/exec.js';
import { SshSession } from '../manager/ssh.js';
import { readHeartbeats } from '../observer/observer.js';
import { projectRoot } from '../lib/paths.js';

interface DemoOptions {
  hosts: number;
  seconds: number;
  keep: boolean;
}

function ssh(tb: Testbed, h: TestbedHost): Promise<SshSession> {
  return SshSession.connect({ name: h.name, host: h.address, port: h.sshPort, username: 'root', privateKeyPath: tb.sshKeyPath, knownHostsPath: tb.knownHostsPath });
}

async function runDemo(o: DemoOptions): Promise<boolean> {
  const node = process.execPath;
  const cli = join(projectRoot, 'dist', 'cli.js');
  console.log(`1/5 testbed: ${o.hosts} hosts`);
  const tb = await testbedUp({ id: 'demo', hosts: o.hosts });
  let ok = false;
  try {
    console.log(`2/5 servers: redis on 127.0.0.1 and ${tb.managerAddress}, mariadb on 127.0.0.1`);
    const redisInfo = await startRedis([tb.managerAddress]);
    await startMariaDb();
    const redis = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
    try {
      const since = `${Date.now()}-0`;
      console.log('3/5 observers: starting one on every host over ssh');
      const sessions = await Promise.all(tb.hosts.map((h) => ssh(tb, h)));
      const runs = tb.hosts.map((h, i) =>
        sessions[i]!.exec(
          `cd ${projectRoot} && exec ${node} ${cli} observer --node ${h.name} --redis ${tb.managerAddress}:${redisInfo.port} --redis-password-stdin --heartbeat-ms 500 --duration ${o.seconds}`,
          `${redisInfo.password}\n`,
        ),
      );
      const beats = () => readHeartbeats(redis, since);
      await waitFor('a heartbeat from every observer', 20_000, async () => {
        const seen = new Set((await beats()).map((b) => b.node));
        return tb.hosts.every((h) => seen.has(h.name)) ? true : undefined;
      });

      console.log('4/5 traffic: 200 request/response exchanges of 100 bytes between each pair of neighbours');
      const traffic = join(projectRoot, 'dist', 'local', 'traffic.js');
      await Promise.all(
        tb.hosts.map(async (h, i) => {
          const peer = tb.hosts[(i + 1) % tb.hosts.length]!;
          const server = sessions[(i + 1) % tb.hosts.length]!.exec(`exec ${node} ${traffic} tcp-server ${7100 + i} 1`);
          await new Promise((r) => setTimeout(r, 300));
          const client = await sessions[i]!.exec(`exec ${node} ${traffic} tcp-client ${peer.address} ${7100 + i} 200`);
          if (client.code !== 0) throw new Error(`traffic ${h.name} -> ${peer.name}: ${client.stderr.trim()}`);
          await server;
        }),
      );

      const results = await Promise.all(runs);
      sessions.forEach((s) => s.close());
      console.log('5/5 results (from the observers\' heartbeats in redis):');
      const all = await beats();
      ok = true;
      for (const [i, h] of tb.hosts.entries()) {
        const last = all.filter((b) => b.node === h.name).pop();
        const r = results[i]!;
        const fine = r.code === 0 && last?.state === 'stopped' && Number(last.txPackets) > 200 && Number(last.rxPackets) > 200;
        ok &&= fine;
        console.log(
          `  ${h.name} ${h.address}: observer exit ${r.code}, ${all.filter((b) => b.node === h.name).length} heartbeats, ` +
            `tx ${last?.txPackets ?? '?'} packets / ${last?.txBytes ?? '?'} bytes, rx ${last?.rxPackets ?? '?'} packets / ${last?.rxBytes ?? '?'} bytes` +
            (fine ? '' : `  PROBLEM: ${r.stderr.trim() || 'no stopped heartbeat or too few packets'}`),
        );
      }
    } finally {
      redis.disconnect();
    }
  } finally {
    if (!o.keep) {
      await testbedDown('demo');
      await stopRedis();
      await stopMariaDb();
      console.log('cleaned up: testbed removed, servers stopped (use --keep to keep them)');
    }
  }
  console.log(ok ? 'demo: OK' : 'demo: FAILED');
  return ok;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('run latscope end to end on a local testbed of network namespaces with local Redis and MariaDB')
    .option('--hosts <n>', 'number of test hosts', (v) => Number(v), 3)
    .option('--seconds <s>', 'how long the observers run', (v) => Number(v), 6)
    .option('--keep', 'keep the testbed and servers running afterwards', false)
    .action(async (o: DemoOptions) => {
      if (!(await runDemo(o))) process.exitCode = 1;
    });
}
