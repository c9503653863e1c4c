/**
 * The BPF layout check with a real object: a scratch copy of timesync.h with a field moved is
 * compiled with the project's build flags, and opening it with protocol/'s layouts fails before
 * anything loads, naming the struct and the field. Opening an object file needs no root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../lib/paths.js';
import { BpfObject, LayoutError } from '../../native/addon.js';
import { TS_PROBE, TS_SAMPLE } from '../../protocol/timesync.js';
import { LT_SETTINGS } from '../../protocol/latency.js';
import { BLK_KEY, HIST, IRQ_EVENT, MEM_CPU, MEM_EVENT, SCHED_CPU, SCHED_EVENT, SYS_EVENT, SYS_STAT } from '../../protocol/host.js';
import type { StructLayout } from '../../protocol/layout.js';

const vmlinux = join(projectRoot, 'native', 'gen', 'vmlinux.h');

function compile(dir: string): string {
  const out = join(dir, 'prober.bpf.o');
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-mcpu=v3', '-D__TARGET_ARCH_x86', `-I${dir}`, `-I${join(projectRoot, 'native', 'gen')}`, `-I${join(projectRoot, 'native', 'include')}`, '-c', join(dir, 'prober.bpf.c'), '-o', out]);
  return out;
}

test('a field moved in a scratch copy of timesync.h: the object is refused, naming struct ts_sample and the field', { skip: !existsSync(vmlinux) && 'native/gen/vmlinux.h is missing: run npm run build' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'latscope-layout-'));
  try {
    cpSync(join(projectRoot, 'timesync', 'bpf', 'prober.bpf.c'), join(dir, 'prober.bpf.c'));
    cpSync(join(projectRoot, 'timesync', 'bpf', 'siphash.h'), join(dir, 'siphash.h'));
    const h = readFileSync(join(projectRoot, 'timesync', 'bpf', 'timesync.h'), 'utf8');
    writeFileSync(join(dir, 'timesync.h'), h);
    // as built: the layouts agree (the object is only opened, not loaded: no root needed)
    assert.throws(() => BpfObject.open(compile(dir), { layouts: [TS_PROBE, TS_SAMPLE], settings: { no_such: 1 } }), /no setting named no_such/, 'the layout check passes, the next step runs');
    const changed = h.replace('__u32 round, seq;', '__u32 seq, round;');
    assert.notEqual(changed, h, 'the scratch change applies');
    writeFileSync(join(dir, 'timesync.h'), changed);
    const obj = compile(dir);
    assert.throws(
      () => BpfObject.open(obj, { layouts: [TS_PROBE, TS_SAMPLE] }),
      (e: unknown) => e instanceof LayoutError && /struct ts_sample: field round is at offset 36 .*TypeScript expects offset 32/.test(e.message) && e.code === 'ELAYOUT',
    );
    // an object that lost its layout anchor is refused too
    writeFileSync(join(dir, 'prober.bpf.c'), readFileSync(join(dir, 'prober.bpf.c'), 'utf8').replace('LATSCOPE_LAYOUT(ts_sample);', ''));
    writeFileSync(join(dir, 'timesync.h'), h);
    assert.throws(() => BpfObject.open(compile(dir), { layouts: [TS_SAMPLE] }), /struct ts_sample is not in the BTF of prober\.bpf\.o: the program must declare LATSCOPE_LAYOUT\(ts_sample\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the host-jitter modules: every struct shared with TypeScript has the layout protocol/host.ts expects', { skip: !existsSync(join(projectRoot, 'dist', 'bpf', 'sched.bpf.o')) && 'the BPF objects are not built: run npm run build' }, () => {
  const expect: [string, StructLayout[]][] = [
    ['sched', [SCHED_EVENT, SCHED_CPU, HIST]],
    ['irq', [IRQ_EVENT, HIST]],
    ['memory', [MEM_EVENT, MEM_CPU, HIST]],
    ['syscall', [SYS_EVENT, SYS_STAT]],
    ['block', [BLK_KEY, HIST]],
  ];
  for (const [name, layouts] of expect)
    // the layouts are checked first; an unknown setting then stops the open before anything loads (no root needed)
    assert.throws(() => BpfObject.open(name, { layouts, settings: { no_such: 1 } }), /no setting named no_such|finding map \.rodata/, `${name}: the layouts agree`);
});

test("the probe's settings are checked against the object: a setting of another size is refused, naming it", { skip: !existsSync(join(projectRoot, 'dist', 'bpf', 'latency.bpf.o')) && 'dist/bpf/latency.bpf.o is missing: run npm run build' }, () => {
  const obj = join(projectRoot, 'dist', 'bpf', 'latency.bpf.o');
  assert.throws(
    () => BpfObject.open(obj, { settingsLayout: { ...LT_SETTINGS, sample_size: 'u64' }, settings: { sample_size: 1 } }),
    (e: unknown) => e instanceof LayoutError && /setting sample_size is 4 bytes in latency\.bpf\.o, TypeScript declares 8/.test(e.message),
  );
  assert.throws(() => BpfObject.open(obj, { settingsLayout: LT_SETTINGS, settings: { no_such: 1 } }), /setting no_such is not declared in the TypeScript settings layout/);
  // as declared: the check passes, the next step runs
  assert.throws(() => BpfObject.open(obj, { settingsLayout: LT_SETTINGS, layouts: [TS_PROBE] }), /struct ts_probe is not in the BTF of latency\.bpf\.o/);
});
