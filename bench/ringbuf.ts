/**
 * bench/ringbuf: how many 64-byte records per second the addon delivers from a BPF ring buffer
 * to JavaScript on one core, and what each record costs the BPF side.
 *
 * Side by side in one run:
 *   - JS hand-off: batched drain (one native call per batch, what latscope uses) vs one native
 *     call per record (the reference), each consuming the same producer for the same time;
 *   - BPF side: BPF_RB_NO_WAKEUP (what latscope uses) vs the default wake-up per record,
 *     ns per record from bpf_stats.
 * A producer process on the other core calls getppid() in a loop; each call emits a burst of
 * records. Every record is read in JavaScript (sequence numbers checked), not just counted.
 * Run: npm run bench:ringbuf [-- --seconds 4]. Needs root. SIGTERM and Ctrl-C end it after the
 * phase in progress, its programs closed; its producer also ends when it sees its parent gone.
 */
import { spawn, execFileSync } from 'node:child_process';
import { BpfObject, enableBpfStats, forEachRecord } from '../native/addon.js';
import { benchObject, checkStop, median, numberArg, pause, stopOnSignals } from './common.js';

const seconds = numberArg('seconds', 4);
const RECORD = 64;
const BURST = 256;

interface Phase {
  delivered: number;
  recordsPerSec: number;
  consumerCpuSec: number;
  produced: number;
  droppedInKernel: number;
  bpfNsPerRecord: number;
  outOfOrder: number;
}

function pinSelf(cpu: number): void {
  try {
    execFileSync('taskset', ['-pc', String(cpu), String(process.pid)], { stdio: 'ignore' });
  } catch {
    /* no taskset: unpinned */
  }
}

async function phase(mode: 'batched' | 'per-record', submitFlags: bigint, durationSec: number, burst = BURST): Promise<Phase> {
  // a phase drains in one synchronous loop: between phases the event loop turns, so that a
  // SIGTERM or Ctrl-C is seen, and the run ends there
  await pause(1);
  checkStop();
  // getppid() in a loop, until its parent is gone: it never outlives the benchmark (SIGTERM, Ctrl-C, a crash)
  const producer = spawn('taskset', ['-c', '1', process.execPath, '-e', 'const p=process.ppid;while(process.ppid===p);'], { stdio: 'ignore' });
  await new Promise((r) => producer.once('spawn', r));
  const obj = BpfObject.open(benchObject('ringbuf_bench'), { settings: { target_tgid: producer.pid!, burst, submit_flags: submitFlags } });
  const stopStats = enableBpfStats();
  try {
    const ring = obj.ring('events');
    obj.attach('produce');
    const batch = Buffer.alloc(4 << 20);
    let delivered = 0;
    let outOfOrder = 0;
    let lastSeq = -1n;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const end = t0 + BigInt(Math.round(durationSec * 1e9));
    let now = t0;
    const onRecord = (off: number) => {
      const seq = batch.readBigUInt64LE(off);
      if (seq <= lastSeq) outOfOrder++;
      lastSeq = seq;
      delivered++;
    };
    while (now < end) {
      if (mode === 'batched') {
        const [n, used] = ring.drainInto(batch);
        if (n) forEachRecord(batch, used, onRecord);
      } else {
        for (let i = 0; i < 4096; i++) {
          const [n] = ring.drainInto(batch, 1);
          if (!n) break;
          onRecord(8);
        }
      }
      now = process.hrtime.bigint();
    }
    const elapsed = Number(now - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    producer.kill('SIGKILL');
    const st = obj.programStats('produce');
    const stats = obj.map('stats');
    const produced = Number(stats.u64At(0));
    return {
      delivered,
      recordsPerSec: delivered / elapsed,
      consumerCpuSec: (cpu.user + cpu.system) / 1e6,
      produced,
      droppedInKernel: Number(stats.u64At(1)),
      bpfNsPerRecord: st.runCount ? Number(st.runTimeNs) / Number(st.runCount) / burst : 0,
      outOfOrder,
    };
  } finally {
    producer.kill('SIGKILL');
    stopStats();
    obj.close();
  }
}

async function main(): Promise<void> {
  stopOnSignals();
  pinSelf(0);
  const NO_WAKEUP = 1n;
  const rounds = 3;
  const batched: Phase[] = [];
  const perRecord: Phase[] = [];
  // The wake-up costs only when the consumer has caught up with the record being committed,
  // so that pair runs with one record per syscall and a consumer that keeps up, as in the
  // observer: the default wake-up then fires for nearly every record.
  const single: Phase[] = [];
  const wakeup: Phase[] = [];
  for (let i = 0; i < rounds; i++) {
    batched.push(await phase('batched', NO_WAKEUP, seconds / rounds));
    perRecord.push(await phase('per-record', NO_WAKEUP, seconds / rounds));
    single.push(await phase('batched', NO_WAKEUP, Math.min(1, seconds / rounds), 1));
    wakeup.push(await phase('batched', 0n, Math.min(1, seconds / rounds), 1));
  }
  const m = (ps: Phase[], k: keyof Phase) => median(ps.map((p) => p[k] as number));
  const result = {
    bench: 'ringbuf',
    recordBytes: RECORD,
    secondsPerMode: seconds,
    rounds,
    batched: { recordsPerSec: m(batched, 'recordsPerSec'), droppedInKernel: batched.reduce((s, p) => s + p.droppedInKernel, 0), outOfOrder: batched.reduce((s, p) => s + p.outOfOrder, 0) },
    perRecordReference: { recordsPerSec: m(perRecord, 'recordsPerSec') },
    batchedOverPerRecord: m(batched, 'recordsPerSec') / m(perRecord, 'recordsPerSec'),
    bpfNsPerRecordInBursts: m(batched, 'bpfNsPerRecord'),
    bpfNsPerRecord: { noWakeup: m(single, 'bpfNsPerRecord'), defaultWakeup: m(wakeup, 'bpfNsPerRecord') },
    wakeupOverNoWakeup: m(wakeup, 'bpfNsPerRecord') / m(single, 'bpfNsPerRecord'),
    targetRecordsPerSec: 2_000_000,
    meetsTarget: m(batched, 'recordsPerSec') >= 2_000_000,
  };
  console.log(JSON.stringify(result));
  console.log(
    `ringbuf: ${(result.batched.recordsPerSec / 1e6).toFixed(2)} M records/s to JS batched vs ${(result.perRecordReference.recordsPerSec / 1e6).toFixed(2)} M/s one call per record ` +
      `(x${result.batchedOverPerRecord.toFixed(1)}); BPF ${result.bpfNsPerRecordInBursts.toFixed(0)} ns/record in bursts; one per event: ${result.bpfNsPerRecord.noWakeup.toFixed(0)} ns with BPF_RB_NO_WAKEUP vs ` +
      `${result.bpfNsPerRecord.defaultWakeup.toFixed(0)} ns with wake-up (x${result.wakeupOverNoWakeup.toFixed(1)}); target 2 M/s: ${result.meetsTarget ? 'met' : 'NOT met'}`,
  );
}

main().catch((e) => {
  console.error(`bench ringbuf: ${(e as Error).message}`);
  process.exitCode = 1;
});
