/**
 * `latscope demo`: the main job end to end on the local default. Brings up the testbed and the
 * local servers, writes a conf folder for them, and runs the manager on it: every test host is
 * provisioned over its own sshd, known traffic runs between neighbours, the records flow
 * through Redis into MariaDB, time-sync rounds estimate each host's clock offset, and the
 * results are read back from MySQL. `manager stop` then tears the deployment down, and the
 * testbed and servers are removed unless --keep. Grows with the analyzer and the graphs.
 */
import { Command } from 'commander';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import { testbedUp, testbedDown, type Testbed, type TestbedHost } from '../local/testbed.js';
import { startRedis, startMariaDb, stopRedis, stopMariaDb } from '../local/servers.js';
import { writeTestbedConf } from '../local/conf.js';
import { waitFor } from '../local/exec.js';
import { SshSession } from '../manager/ssh.js';
import { loadDeployment } from '../conf/deployment.js';
import { Manager } from '../manager/manager.js';
import { stopDeployment } from '../manager/teardown.js';
import { LAYER_ORDER } from '../protocol/layers.js';
import { RECORD_STREAM, SERVERS_KEY } from '../protocol/redis.js';
import { median } from '../lib/stats.js';
import { projectRoot, workDir } from '../lib/paths.js';

interface DemoOptions {
  hosts: number;
  seconds: number;
  keep: boolean;
}

const DB = 'latscope_demo';

function ssh(tb: Testbed, h: TestbedHost): Promise<SshSession> {
  return SshSession.connect({ name: h.name, host: h.address, port: h.sshPort, username: 'root', privateKeyPath: tb.sshKeyPath, knownHostsPath: tb.knownHostsPath });
}

/** Request/response exchanges between each host and its neighbour, for about `seconds`. */
async function traffic(tb: Testbed, seconds: number): Promise<void> {
  const node = process.execPath;
  const script = join(projectRoot, 'dist', 'local', 'traffic.js');
  const sessions = await Promise.all(tb.hosts.map((h) => ssh(tb, h)));
  try {
    const until = Date.now() + seconds * 1000;
    do {
      await Promise.all(
        tb.hosts.map(async (h, i) => {
          const peer = (i + 1) % tb.hosts.length;
          const server = sessions[peer]!.exec(`exec ${node} ${script} tcp-server ${7100 + i} 1`);
          await new Promise((r) => setTimeout(r, 300));
          const client = await sessions[i]!.exec(`exec ${node} ${script} tcp-client ${tb.hosts[peer]!.address} ${7100 + i} 200`);
          if (client.code !== 0) throw new Error(`traffic ${h.name} -> ${tb.hosts[peer]!.name}: ${client.stderr.trim()}`);
          await server;
        }),
      );
    } while (Date.now() < until);
  } finally {
    sessions.forEach((s) => s.close());
  }
}

async function runDemo(o: DemoOptions): Promise<boolean> {
  console.log(`1/6 testbed: ${o.hosts} hosts, each a network namespace with its own sshd`);
  const tb = await testbedUp({ id: 'demo', hosts: o.hosts });
  let ok = false;
  try {
    console.log(`2/6 servers: redis on 127.0.0.1 and ${tb.managerAddress}, mariadb on 127.0.0.1`);
    const redisInfo = await startRedis([tb.managerAddress]);
    const db = await startMariaDb();
    const admin = await mysql.createConnection({ host: db.host, port: db.port, user: db.user, password: db.password });
    await admin.query(`DROP DATABASE IF EXISTS ${DB}`); // this run's results only
    await admin.end();
    const r = new Redis({ host: redisInfo.host, port: redisInfo.port, password: redisInfo.password });
    await r.del(RECORD_STREAM, SERVERS_KEY);
    r.disconnect();
    const conf = writeTestbedConf(workDir('demo', 'conf'), tb, redisInfo, db, {
      ports: tb.hosts.map((_, i) => 7100 + i), size: 8192, database: DB, timeSync: true, timeInterval: 2,
    });
    console.log(`3/6 manager: provisioning every host over SSH from ${conf}`);
    const d = loadDeployment(conf);
    const mgr = await Manager.open(d, { log: (l) => console.log(`    ${l}`) });
    try {
      await mgr.prepare();
      await mgr.startWorkers();
      const states = await mgr.provisionAll();
      const running = d.servers.filter((s) => states.get(s.hostname)?.state === 'running').length;
      if (running !== d.servers.length) throw new Error(`only ${running} of ${d.servers.length} hosts were provisioned`);
      await mgr.schedule();

      console.log(`4/6 traffic: 200 request/response exchanges of 100 bytes between each pair of neighbours, for ${o.seconds} s`);
      await traffic(tb, o.seconds);
      const pool = mgr.pool;
      await waitFor('rows from every host in MySQL, and two time-sync rounds', 30_000, async () => {
        const [r] = (await pool.query('SELECT COUNT(DISTINCT server_id) AS n FROM packets')) as any;
        const [c] = (await pool.query('SELECT MIN(k) AS k FROM (SELECT COUNT(*) AS k FROM clock_offsets GROUP BY server) x')) as any;
        return Number(r[0].n) === d.servers.length && Number(c[0].k) >= 2 && (await mgr.redis.xlen(RECORD_STREAM)) === 0 ? true : undefined;
      });

      console.log(`5/6 results from MySQL (${DB}): median delay between layers, microseconds; clock offset to the manager`);
      const [rows] = (await pool.query(
        'SELECT s.name, p.dir, p.sock_ns, p.tcp_ns, p.ip_ns, p.dev_ns FROM packets p JOIN servers s ON s.id = p.server_id WHERE p.flags & 4 AND NOT p.flags & 1',
      )) as any;
      const [offs] = (await pool.query('SELECT server, offset_ns, bound_ns, drift_ppb FROM clock_offsets c WHERE round = (SELECT MAX(round) FROM clock_offsets WHERE server = c.server)')) as any;
      ok = true;
      for (const s of d.servers) {
        const mine = (rows as any[]).filter((r) => r.name === s.hostname);
        const off = (offs as any[]).find((r) => r.server === s.hostname);
        ok &&= mine.some((r) => r.dir === 'tx') && mine.some((r) => r.dir === 'rx') && !!off;
        console.log(`  ${s.hostname} ${s.address}: ${mine.length} packets; clock offset ${off ? `${off.offset_ns} ns ± ${Number(off.bound_ns).toFixed(0)} ns (true offset 0: one clock)` : 'none'}`);
        for (const dir of ['tx', 'rx'] as const) {
          const order = LAYER_ORDER[dir];
          const steps = order.slice(1).map((to, k) => {
            const from = order[k]!;
            const d = mine.filter((r) => r.dir === dir).map((r) => Number(BigInt(r[`${to}_ns`]) - BigInt(r[`${from}_ns`])) / 1000);
            return `${from}->${to} ${median(d).toFixed(1)}`;
          });
          console.log(`    ${dir} (${mine.filter((r) => r.dir === dir).length}): ${steps.join('  ')}`);
        }
      }
    } finally {
      await mgr.close();
    }
    console.log('6/6 manager stop: every observer stopped, nothing left on any host');
    const stopped = await stopDeployment(d, { acceptNewHostKeys: false, log: (l) => console.log(`    ${l}`) });
    ok &&= [...stopped.values()].every((r) => r.ok);
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
    .option('--seconds <s>', 'how long the traffic runs', (v) => Number(v), 4)
    .option('--keep', 'keep the testbed and servers running afterwards', false)
    .action(async (o: DemoOptions) => {
      if (!(await runDemo(o))) process.exitCode = 1;
    });
}
