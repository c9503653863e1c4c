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
import { RECORD_STREAM } from '../observer/publisher.js';
import { decodeEntry } from '../observer/wire.js';
import type { PacketRecord } from '../observer/records.js';
import { projectRoot, workDir } from '../lib/paths.js';
import { writeFileSync } from 'node:fs';

interface DemoOptions {
  hosts: number;
  seconds: number;
  keep: boolean;
}

/** The records in the stream since a stream id. */
async function readRecords(redis: Redis, sinceId: string): Promise<PacketRecord[]> {
  const out: PacketRecord[] = [];
  for (const [, f] of await redis.xrange(RECORD_STREAM, sinceId, '+')) out.push(...decodeEntry(f));
  return out;
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
      const conf = workDir('demo', 'conf');
      const ports = tb.hosts.map((_, i) => 7100 + i);
      writeFileSync(join(conf, 'sampling_info.yaml'), `size: 8192\ninterval: 1\nports: [${ports.join(', ')}]\nfilter_retrans: 1\n`);
      writeFileSync(join(conf, 'redis_info.yaml'), `address: ${tb.managerAddress}\nport: ${redisInfo.port}\n`);
      console.log(`3/5 observers: starting one on every host over ssh (conf: ${conf})`);
      const sessions = await Promise.all(tb.hosts.map((h) => ssh(tb, h)));
      const runs = tb.hosts.map((h, i) =>
        sessions[i]!.exec(
          `cd ${projectRoot} && exec ${node} ${cli} observer --conf ${conf} --node ${h.name} --redis-password-stdin --heartbeat-ms 500 --metrics-port 0 --duration ${o.seconds}`,
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
      console.log('5/5 results (records and heartbeats from redis): median delay between layers, microseconds');
      const all = await beats();
      const records = await readRecords(redis, since);
      ok = true;
      for (const [i, h] of tb.hosts.entries()) {
        const last = all.filter((b) => b.node === h.name).pop();
        const r = results[i]!;
        const mine = records.filter((x) => x.node === h.name && x.complete && !x.retrans);
        const fine = r.code === 0 && last?.state === 'stopped' && mine.some((x) => x.dir === 'tx') && mine.some((x) => x.dir === 'rx');
        ok &&= fine;
        console.log(
          `  ${h.name} ${h.address}: observer exit ${r.code}, ${last?.records ?? 0} records (${last?.published ?? 0} published, ${last?.dropped ?? '?'} dropped)` +
            (fine ? '' : `  PROBLEM: ${r.stderr.trim() || 'no stopped heartbeat, or no records both ways'}`),
        );
        for (const dir of ['tx', 'rx'] as const) {
          const order = dir === 'tx' ? (['sock', 'tcp', 'ip', 'dev'] as const) : (['dev', 'ip', 'tcp', 'sock'] as const);
          const steps = order.slice(1).map((to, k) => {
            const from = order[k]!;
            const d = mine.filter((x) => x.dir === dir).map((x) => Number(BigInt(x.layers[to]!.tsNs) - BigInt(x.layers[from]!.tsNs)) / 1000).sort((a, b) => a - b);
            return `${from}->${to} ${d.length ? d[d.length >> 1]!.toFixed(1) : '-'}`;
          });
          console.log(`    ${dir} (${mine.filter((x) => x.dir === dir).length} records): ${steps.join('  ')}`);
        }
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
