/**
 * bench/provision: how long one `latscope manager` command takes to provision 10 testbed hosts
 * over SSH, each with its own sshd: connect, check, install the observer bundle, write the
 * conf, start the observer under its supervisor and wait for its first heartbeat in Redis.
 * Side by side in one run: fresh hosts (the bundle uploaded and unpacked on each) and hosts
 * that already have this bundle (nothing uploaded), interleaved round by round, with `manager
 * stop` in between. The time is the whole command, from start to exit, as an operator sees it.
 * Medians; JSON (keys hosts, freshS, warmS) and one line. Targets: 10 fresh hosts in at most
 * 20 s; 100 in at most 30 s. On one machine at most 64 observers can run at once: each attaches
 * its cgroup programs to the root cgroup, and the kernel holds at most 64 programs per cgroup
 * attach point (BPF_CGROUP_MAX_PROGS), so --hosts above 64 is refused with that reason.
 * SIGTERM or Ctrl-C stops the observers and removes the testbed.
 *
 *   node dist/bench/provision.js [--hosts 10] [--rounds 3]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localServers, numberArg, median } from './common.js';
import { testbedUp, testbedDown } from '../local/testbed.js';
import { startMariaDb, startRedis } from '../local/servers.js';
import { writeTestbedConf } from '../local/conf.js';
import { projectRoot } from '../lib/paths.js';

const hosts = numberArg('hosts', 10);
const rounds = numberArg('rounds', 3);
const cli = join(projectRoot, 'dist', 'cli.js');

function latscope(args: string[]): { code: number | null; out: string; s: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout + r.stderr, s: (performance.now() - t0) / 1000 };
}

/** One kernel's limit on programs per cgroup attach point: every testbed observer attaches to the same root cgroup. */
const MAX_OBSERVERS_PER_KERNEL = 64;

async function main(): Promise<void> {
  if (hosts > MAX_OBSERVERS_PER_KERNEL)
    throw new Error(`--hosts ${hosts}: at most ${MAX_OBSERVERS_PER_KERNEL} observers can run on one kernel (each attaches cgroup programs to the root cgroup, and the kernel holds at most 64 per attach point); the testbed's hosts share this machine's kernel`);
  const conf = mkdtempSync(join(tmpdir(), 'latscope-bench-provision-'));
  const servers = localServers();
  const cleanup = async () => {
    latscope(['manager', 'stop', '--conf', conf]);
    rmSync(conf, { recursive: true, force: true });
    await testbedDown('bpv');
  };
  for (const sig of ['SIGTERM', 'SIGINT'] as const)
    process.once(sig, () => {
      process.stderr.write(`bench provision: ${sig}: stopping the observers and removing the testbed\n`);
      void cleanup().finally(() => process.exit(130));
    });
  const tb = await testbedUp({ id: 'bpv', hosts });
  const fresh: number[] = [];
  const warm: number[] = [];
  let bundleMb = 0;
  try {
    const redis = await startRedis([tb.managerAddress]);
    const db = await startMariaDb();
    writeTestbedConf(conf, tb, redis, db, { ports: [7500], database: 'latscope_bench_provision' });
    for (let r = 1; r <= rounds; r++) {
      for (const kind of ['fresh', 'warm'] as const) {
        if (kind === 'fresh') rmSync(join(tb.serverRoot, 'install'), { recursive: true, force: true });
        const run = latscope(['manager', '--conf', conf, '--no-wait']);
        if (run.code !== 0 || !new RegExp(`provisioned ${hosts} of ${hosts} servers`).test(run.out)) throw new Error(`manager (${kind}) failed:\n${run.out}`);
        const uploaded = [...run.out.matchAll(/uploaded, ([\d.]+) MB/g)].length;
        if (kind === 'fresh' && uploaded !== hosts) throw new Error(`fresh round uploaded to ${uploaded} hosts, expected ${hosts}`);
        if (kind === 'warm' && uploaded !== 0) throw new Error(`warm round uploaded to ${uploaded} hosts, expected none`);
        bundleMb = Number(/uploaded, ([\d.]+) MB/.exec(run.out)?.[1] ?? bundleMb);
        (kind === 'fresh' ? fresh : warm).push(run.s);
        process.stderr.write(`round ${r} ${kind}: ${run.s.toFixed(1)} s\n`);
        const stop = latscope(['manager', 'stop', '--conf', conf]);
        if (stop.code !== 0) throw new Error(`manager stop failed:\n${stop.out}`);
      }
    }
    const result = {
      bench: 'provision',
      hosts,
      rounds,
      bundleMb,
      freshS: median(fresh),
      warmS: median(warm),
      ratio: median(fresh) / median(warm),
      runs: { fresh, warm },
      target: { freshSMax: hosts <= 10 ? 20 : 30 },
    };
    console.log(JSON.stringify(result));
    console.log(
      `provision: ${hosts} hosts over SSH, observers running and heartbeating: ${result.freshS.toFixed(1)} s fresh (${bundleMb} MB bundle to each), ` +
        `${result.warmS.toFixed(1)} s with the bundle already there (x${result.ratio.toFixed(2)}); median of ${rounds}; target <= ${result.target.freshSMax} s fresh`,
    );
  } finally {
    await cleanup();
    await servers.stop();
  }
}

main().catch((e) => {
  console.error(`bench provision: ${(e as Error).message}`);
  process.exitCode = 1;
});
