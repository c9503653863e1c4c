/**
 * Kernel tests of the BPF addon: every program type it attaches fires on real traffic between
 * two testbed hosts, its counts reach TypeScript, and close() (or a SIGKILL followed by a sweep)
 * leaves nothing in the kernel. Error paths: verifier rejection, missing interface, no privilege.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { BpfObject, BpfError, inNetns, netnsInode, cgroupV2Root, libbpfVersion, forEachRecord } from '../native/addon.js';
import { sweepLeftovers } from '../native/leftovers.js';
import { testbedUp, testbedDown, type Testbed } from '../local/testbed.js';
import { runIn, startIn, makeCgroup, progExists, linkHasXdp, tcFilters, until, helper, testObject } from './helpers/fixtures.js';
import { benchObject } from '../bench/common.js';

const HK = { tracepoint: 0, raw_tp: 1, tp_btf: 2, xdp: 3, tc_ingress: 4, tc_egress: 5, cg_ingress: 6, cg_egress: 7, sockops: 8 };
const PORT = 7070;
let tb: Testbed;

before(async () => {
  tb = await testbedUp({ id: 'tnat', hosts: 2 });
});
after(async () => {
  await testbedDown('tnat');
});

const h = (i: number) => tb.hosts[i]!;

function openCounting(): BpfObject {
  return BpfObject.open(testObject('hook_kinds'), { settings: { netns_ino: netnsInode(h(0).netns), port: PORT } });
}

test('libbpf version is reported', () => {
  assert.match(libbpfVersion(), /^v\d+\.\d+/);
});

for (const [prog, kind] of [
  ['tp_dev_queue', 'tracepoint'],
  ['raw_dev_queue', 'raw_tp'],
  ['btf_dev_queue', 'tp_btf'],
] as const) {
  test(`${kind} program counts only the watched namespace's packets, and is gone after close()`, async () => {
    const obj = openCounting();
    let id = 0;
    try {
      obj.attach(prog);
      id = obj.programStats(prog).id;
      // 20 packets of another host (to the root namespace) must not count; the watched host's
      // own IPv6 neighbour chatter may add a few.
      const start = obj.map('counts').u64At(HK[kind]);
      await runIn(h(1), 'traffic', ['udp', tb.managerAddress, PORT, 20]);
      const before = obj.map('counts').u64At(HK[kind]);
      await runIn(h(0), 'traffic', ['udp', h(1).address, PORT, 50]);
      const after = obj.map('counts').u64At(HK[kind]);
      assert.ok(before - start < 5n, `${before - start} packets counted while only an unwatched namespace sent 20`);
      assert.ok(after - before >= 50n, `expected >= 50 net_dev_queue events, got ${after - before}`);
    } finally {
      obj.close();
    }
    // The kernel frees a program after its links, an RCU grace period later: poll briefly.
    await until(`program ${id} unloaded after close()`, 5000, () => !progExists(id));
  });
}

for (const mode of ['native', 'generic'] as const) {
  test(`xdp (${mode}) counts datagrams arriving on a host, and leaves no XDP after close()`, async () => {
    const obj = openCounting();
    let id = 0;
    try {
      inNetns(h(1).netns, () => obj.attachXdp('xdp_count', h(1).iface, mode));
      id = obj.programStats('xdp_count').id;
      assert.equal(linkHasXdp(h(1).netns, h(1).iface), true);
      await runIn(h(0), 'traffic', ['udp', h(1).address, PORT, 40]);
      await until('xdp counted 40 datagrams', 5000, () => obj.map('counts').u64At(HK.xdp) >= 40n);
      assert.equal(obj.map('counts').u64At(HK.xdp), 40n);
    } finally {
      obj.close();
    }
    assert.equal(linkHasXdp(h(1).netns, h(1).iface), false, 'XDP still attached after close()');
    await until('program unloaded', 5000, () => !progExists(id));
  });
}

for (const legacy of [false, true]) {
  test(`tc ingress and egress (${legacy ? 'netlink clsact' : 'tcx link'}) count both directions, and are removed by close()`, async () => {
    const obj = openCounting();
    const ids: number[] = [];
    try {
      inNetns(h(1).netns, () => obj.attachTc('tc_ingress_count', h(1).iface, 'ingress', { legacy }));
      inNetns(h(0).netns, () => obj.attachTc('tc_egress_count', h(0).iface, 'egress', { legacy }));
      ids.push(obj.programStats('tc_ingress_count').id, obj.programStats('tc_egress_count').id);
      if (legacy) assert.match(tcFilters(h(1).netns, h(1).iface, 'ingress'), /tc_ingress_coun/);
      await runIn(h(0), 'traffic', ['udp', h(1).address, PORT, 30]);
      await until('tc counted', 5000, () => obj.map('counts').u64At(HK.tc_ingress) >= 30n);
      assert.equal(obj.map('counts').u64At(HK.tc_ingress), 30n);
      assert.equal(obj.map('counts').u64At(HK.tc_egress), 30n);
    } finally {
      obj.close();
    }
    assert.doesNotMatch(tcFilters(h(1).netns, h(1).iface, 'ingress'), /tc_ingress_coun/);
    assert.doesNotMatch(tcFilters(h(0).netns, h(0).iface, 'egress'), /tc_egress_coun/);
    for (const id of ids) await until(`program ${id} unloaded`, 5000, () => !progExists(id));
  });
}

test('cgroup_skb ingress/egress and sockops fire for TCP between processes of a cgroup', async () => {
  const cg = makeCgroup(cgroupV2Root(), `latscope-test-${process.pid}`);
  const obj = BpfObject.open(testObject('hook_kinds'), { settings: { port: PORT } });
  const ids: number[] = [];
  try {
    for (const p of ['cg_ingress_count', 'cg_egress_count', 'sockops_count']) {
      obj.attachCgroup(p, cg.path);
      ids.push(obj.programStats(p).id);
    }
    const server = await startIn(h(1), 'traffic', ['tcp-server', PORT, 1], cg.path);
    const client = await runIn(h(0), 'traffic', ['tcp-client', h(1).address, PORT, 20], cg.path);
    assert.equal(client.echoed, 2000);
    await server.done;
    const c = obj.map('counts');
    // Each of 20 messages crosses twice (request, echo): >= 40 data segments each way, plus
    // handshake and ACKs; both ends are in the cgroup.
    assert.ok(c.u64At(HK.cg_egress) >= 40n, `cgroup egress ${c.u64At(HK.cg_egress)}`);
    assert.ok(c.u64At(HK.cg_ingress) >= 40n, `cgroup ingress ${c.u64At(HK.cg_ingress)}`);
    assert.equal(c.u64At(HK.sockops), 2n, 'one active and one passive established callback');
  } finally {
    obj.close();
    cg.remove();
  }
  for (const id of ids) await until(`program ${id} unloaded`, 5000, () => !progExists(id));
});

test('exit cleanup on SIGTERM: without a handler of its own the process closes its objects and dies by the signal; an application\'s once handler, even one registered first, decides alone', async () => {
  for (const mode of ['none', 'once'] as const) {
    const child = spawn(process.execPath, [helper('signal-holder'), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const ready = await new Promise<any>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
      });
      child.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
    });
    const exit = new Promise<[number | null, string | null]>((r) => child.once('exit', (c, sig) => r([c, sig])));
    child.kill('SIGTERM');
    const [code, sig] = await exit;
    if (mode === 'none') assert.deepEqual([code, sig], [null, 'SIGTERM'], 'no handler: ends by the signal');
    else {
      assert.deepEqual([code, sig], [0, null], `its own handler ran to its end: ${out}`);
      assert.match(out, /"handled":true/);
    }
    await until(`${mode}: program ${ready.progId} unloaded`, 5000, () => !progExists(ready.progId));
  }
});

test('after SIGKILL, links vanish with the process and the sweep removes netlink leftovers', async () => {
  // The holder enters the host's namespace itself (inNetns), so it starts in the root one.
  const child = spawn(process.execPath, [helper('attach-holder'), h(1).netns, h(1).iface], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise<any>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(JSON.parse(d.toString())));
    child.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
  });
  assert.equal(ready.ready, true);
  assert.equal(linkHasXdp(h(1).netns, h(1).iface), true);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));

  // The tcx link died with the process; the netlink XDP program and tc filter did not.
  await until('tcx program released', 5000, () => !progExists(ready.progIds.tc_egress_count));
  assert.equal(linkHasXdp(h(1).netns, h(1).iface), true, 'netlink XDP should survive SIGKILL');
  assert.match(tcFilters(h(1).netns, h(1).iface, 'ingress'), /tc_ingress_coun/);

  const removed = sweepLeftovers();
  assert.equal(removed.length, 2, `sweep removed: ${removed.join('; ')}`);
  assert.equal(linkHasXdp(h(1).netns, h(1).iface), false);
  assert.doesNotMatch(tcFilters(h(1).netns, h(1).iface, 'ingress'), /tc_ingress_coun/);
  await until('leftover programs unloaded', 5000, () => !progExists(ready.progIds.xdp_count) && !progExists(ready.progIds.tc_ingress_count));
  assert.deepEqual(sweepLeftovers(), [], 'a second sweep finds nothing');
});

test('ring buffer: records drained on a timer reach JavaScript exactly once and in order', async () => {
  const producer = spawn(process.execPath, ['-e', 'setTimeout(()=>{for(let i=0;i<2000;i++)process.ppid},300)'], { stdio: 'ignore' });
  const obj = BpfObject.open(benchObject('ringbuf_bench'), { settings: { target_tgid: producer.pid!, burst: 16 } });
  try {
    const seqs: bigint[] = [];
    const poller = obj.ring('events').poll(5, (batch, n, used) => forEachRecord(batch, used, (off) => seqs.push(batch.readBigUInt64LE(off))));
    obj.attach('produce');
    await new Promise((r) => producer.once('exit', r));
    const stats = obj.map('stats');
    await until('all records drained', 5000, () => BigInt(seqs.length) >= stats.u64At(0));
    poller.stop();
    assert.equal(stats.u64At(1), 0n, 'no record dropped in the kernel');
    assert.ok(seqs.length >= 32_000, `${seqs.length} records`); // 2000 getppid calls x 16
    assert.equal(BigInt(seqs.length), stats.u64At(0));
    assert.ok(seqs.every((s, i) => s === BigInt(i)), 'sequence numbers contiguous from 0');
  } finally {
    producer.kill('SIGKILL');
    obj.close();
  }
});

test('a program the verifier rejects gives BpfError with code and verifier log', () => {
  assert.throws(
    () => BpfObject.open(testObject('rejected')),
    (e: unknown) => {
      assert.ok(e instanceof BpfError);
      assert.equal(e.code, 'EACCES');
      assert.equal(typeof e.errno, 'number');
      assert.match(e.step, /loading rejected/);
      assert.match(e.verifierLog, /invalid mem access 'map_value_or_null'|map_value_or_null/);
      assert.match(e.message, /verifier refused/);
      return true;
    },
  );
});

test('attaching to a missing interface names the interface', () => {
  const obj = openCounting();
  try {
    assert.throws(
      () => obj.attachXdp('xdp_count', 'nosuch0', 'generic'),
      (e: unknown) => e instanceof BpfError && e.code === 'ENODEV' && /"nosuch0"/.test(e.message),
    );
  } finally {
    obj.close();
  }
});

test('an unknown setting is refused before anything loads', () => {
  assert.throws(() => BpfObject.open(testObject('hook_kinds'), { settings: { no_such_knob: 1 } }), /no setting named no_such_knob; known: netns_ino, port/);
  assert.throws(() => BpfObject.open(testObject('hook_kinds'), { settings: { port: 70000 } }), /does not fit in 2 bytes/);
});

test('without privileges, loading says that root or capabilities are needed', () => {
  const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, helper('open-unprivileged')], {
    encoding: 'utf8',
  });
  const r = JSON.parse(out.trim());
  assert.equal(r.loaded, false);
  assert.equal(r.code, 'EPERM');
  assert.match(r.message, /needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN/);
});
