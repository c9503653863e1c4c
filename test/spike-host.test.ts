/**
 * The "why" of a slow packet, end to end on real hooks: the receiving test host runs the
 * host-jitter scheduler module (function_info.yaml jitter), its echo server shares a CPU with a
 * hog for a while, ping-pong messages wait for the server to get the CPU back, the analyzer flags
 * them as spikes, and the report lists, for a spike, the hog that ran on the receiver's CPU while
 * the packet waited: host events joined to the packet on the host's own clock.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { testbedUp, testbedDown, type Testbed } from '../local/testbed.js';
import { Pipeline } from './helpers/pipeline.js';
import { loadReport } from '../analyzer/report.js';
import { projectRoot } from '../lib/paths.js';
import { schemaProblems } from './helpers/schema.js';

const traffic = join(projectRoot, 'dist', 'local', 'traffic.js');
const hostload = join(projectRoot, 'dist', 'test', 'hostload');
const PORT = 7600;
const CPU = cpus().length > 1 ? 1 : 0;

let tb: Testbed | undefined;
after(async () => {
  if (tb) await testbedDown(tb.id);
});

test('a spike on a path to or from a server whose CPU a hog took: its report names the hog, from the host events of that CPU during the packet', async () => {
  tb = await testbedUp({ id: 'tspk', hosts: 2 });
  const [h0, h1] = tb.hosts as [Testbed['hosts'][0], Testbed['hosts'][0]];
  const p = await Pipeline.start(tb, { name: 'spike_host', ports: [PORT], size: 100, jitter: new Map([[1, ['sched']]]) });
  const kids: ChildProcess[] = [];
  try {
    await p.phase(async () => {
      // the echo server on h1, pinned to one CPU; the client on h0 elsewhere
      kids.push(spawn('ip', ['netns', 'exec', h1.netns, 'taskset', '-c', String(CPU), process.execPath, traffic, 'tcp-serve-for', String(PORT), '9'], { stdio: 'ignore' }));
      await new Promise((r) => setTimeout(r, 500));
      const client = spawn('ip', ['netns', 'exec', h0.netns, 'taskset', '-c', String(CPU === 1 ? 0 : 1), process.execPath, traffic, 'tcp-pingpong', h1.address, String(PORT), '7', '2'], { stdio: 'ignore' });
      kids.push(client);
      await new Promise((r) => setTimeout(r, 2500));
      // a hog on the server's CPU for 2 s: the server waits for its CPU after each message arrives
      kids.push(spawn(hostload, ['spin', String(CPU), '2'], { stdio: 'ignore' }));
      await new Promise((r) => client.on('exit', r));
      await new Promise((r) => setTimeout(r, 2500)); // the last host snapshot (every second) reaches MySQL
    });
    const [[ev]] = (await p.pool.query("SELECT COUNT(*) AS n FROM host_events WHERE kind = 'runq' AND other_comm = 'hostload'")) as any;
    assert.ok(Number(ev.n) > 0, 'the receiver\'s host recorded waits behind the hog');
    const [[st]] = (await p.pool.query("SELECT COUNT(*) AS n FROM host_stats WHERE module = 'sched' AND metric = 'runq'")) as any;
    assert.ok(Number(st.n) > 0, 'and its figures');

    const r = await loadReport(p.pool, { top: 50 });
    assert.deepEqual(schemaProblems('report.schema.json', JSON.parse(JSON.stringify(r))), []);
    assert.ok(r.spikes.length > 0, 'spikes while the hog ran');
    const explained = r.spikes.filter((s) => s.hostEvents.some((e) => e.server === `${tb!.id}-${h1.name}` && e.cpu === CPU && (e.otherComm === 'hostload' || e.comm === 'hostload')));
    assert.ok(explained.length > 0, `a spike names the hog: ${JSON.stringify(r.spikes.slice(0, 3).map((s) => s.hostEvents))}`);
    const s = explained[0]!;
    assert.ok([s.src, s.dst].includes(`${tb.id}-${h1.name}`), 'the hog\'s host is an end of the slow path (the server reading the request late, or sending its echo late)');
    const e = s.hostEvents.find((x) => x.otherComm === 'hostload' || x.comm === 'hostload')!;
    assert.ok(e.delayNs >= 100_000, `the wait lasted ${e.delayNs} ns`);
  } finally {
    for (const k of kids) k.kill('SIGKILL');
    await p.stop();
  }
});
