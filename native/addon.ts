/**
 * The typed facade over the latscope_bpf addon: the only module that loads the .node file.
 *
 * It owns policy the addon leaves out: setting `const volatile` values by name, checking the
 * layouts TypeScript shares with the object against its BTF (LayoutError), choosing XDP and tc
 * attach modes, resolving interface names, explaining errors (BpfError, with the verifier log
 * cut out of libbpf's output; MissingFeatureError when the kernel lacks something), and closing
 * every open object on exit, SIGINT and SIGTERM. Attachments are kernel links by default, which
 * the kernel releases when the process dies, even by SIGKILL.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { projectRoot } from '../lib/paths.js';
import { execFileSync } from 'node:child_process';
import { layoutDifferences, type FieldLayout, type StructLayout } from '../protocol/layout.js';
import { forgetLegacy, recordLegacy, LEGACY_TC_PRIORITY, type LegacyAttachment } from './leftovers.js';

/** Where `make -C native bpf` puts the compiled BPF objects that ship to servers. */
export const bpfObjectDir = join(projectRoot, 'dist', 'bpf');

interface NativeProgram { name: string; section: string; type: string; autoload: boolean; fd: number }
interface NativeMap { name: string; type: string; keySize: number; valueSize: number; maxEntries: number; fd: number }
interface NativeObject {
  datasecVars(section: string): { name: string; offset: number; size: number }[];
  structLayout(name: string): { size: number; fields: FieldLayout[] } | null;
  initialValue(map: string): Buffer | null;
  setInitialValue(map: string, value: Buffer): void;
  programs(): NativeProgram[];
  maps(): NativeMap[];
  setAutoload(prog: string, on: boolean): void;
  resizeMap(map: string, maxEntries: number): void;
  load(): string;
  attach(prog: string, kind: string, opts?: object): number;
  detach(id: number): void;
  progInfo(prog: string): { id: number; runCount: bigint; runTimeNs: bigint; verifiedInsns: number };
  mapLookup(map: string, key: Buffer, value: Buffer): boolean;
  mapLookupAll(map: string, keys: Buffer, values: Buffer, valueBytes: number, start?: number): number;
  mapUpdate(map: string, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(map: string, key: Buffer): boolean;
  mapKeys(map: string): Buffer;
  ringOpen(map: string): number;
  ringDrain(ring: number, batch: Buffer, maxRecords?: number): [number, number];
  ringPending(ring: number): number;
  close(): void;
}
interface NativeAddon {
  BpfObject: new (path: string) => NativeObject;
  ifIndex(name: string): number;
  setNetns(fd: number): void;
  enableStats(): number;
  closeFd(fd: number): void;
  numPossibleCpus(): number;
  libbpfVersion(): string;
}

let addon: NativeAddon | undefined;
function native(): NativeAddon {
  if (!addon) {
    const path = join(projectRoot, 'native', 'build', 'Release', 'latscope_bpf.node');
    if (!existsSync(path))
      throw new Error(`loading the BPF addon: ${path} is missing: run "npm run build" first`);
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  }
  return addon;
}

/** Errors from the kernel or libbpf: "doing what: detail", with errno code and verifier log. */
export class BpfError extends Error {
  override readonly name: string = 'BpfError';
  constructor(
    message: string,
    /** errno name, e.g. "EPERM", "ENODEV". */
    readonly code: string,
    readonly errno: number,
    /** What was being done, e.g. "loading hook_kinds". */
    readonly step: string,
    /** The verifier's log when the kernel refused a program, else "". */
    readonly verifierLog = '',
    /** Everything libbpf printed during the failed step. */
    readonly libbpfLog = '',
  ) {
    super(message);
  }
}

/** The kernel lacks a feature latscope needs (a program type, attach type or helper). */
export class MissingFeatureError extends BpfError {
  override readonly name = 'MissingFeatureError';
}

/** A struct shared with the kernel is laid out differently in the object than TypeScript expects. */
export class LayoutError extends BpfError {
  override readonly name = 'LayoutError';
}

const FEATURE_CODES = new Set(['EOPNOTSUPP', 'ENOTSUP', 'ENOTSUPP', 'ENOSYS']);

function explain(e: unknown, context?: string): never {
  const err = e as { message?: string; code?: string; errno?: number; step?: string; libbpfLog?: string };
  if (typeof err?.code !== 'string' || typeof err.errno !== 'number') throw e;
  const log = err.libbpfLog ?? '';
  const verifierLog = /-- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/.exec(log)?.[1] ?? '';
  let message = context ? `${context}: ${err.message}` : err.message ?? 'BPF error';
  message += ` (${err.code})`;
  if ((err.code === 'EPERM' || err.code === 'EACCES') && process.geteuid?.() !== 0)
    message += ': latscope needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; run it with sudo';
  else if (verifierLog) message += ': the verifier refused the program; see verifierLog';
  const Cls = FEATURE_CODES.has(err.code) ? MissingFeatureError : BpfError;
  throw new Cls(message, err.code, err.errno, err.step ?? context ?? '', verifierLog, log);
}

function call<T>(fn: () => T, context?: string): T {
  try {
    return fn();
  } catch (e) {
    explain(e, context);
  }
}

/** A value for a `const volatile` setting: integers of 1, 2, 4 or 8 bytes, booleans, raw bytes. */
export type Setting = number | bigint | boolean | Buffer;

export interface OpenOptions {
  /** `const volatile` variables by name, written into .rodata before load. */
  settings?: Record<string, Setting>;
  /** Programs not to load (all load by default). */
  skip?: string[];
  /** Map sizes to change before load (e.g. ring buffer bytes, a power of two times the page). */
  maxEntries?: Record<string, number>;
  /** Structs shared with user space: checked against the object's BTF before anything loads. */
  layouts?: StructLayout[];
}

export type XdpMode = 'native' | 'generic';
const XDP_FLAGS_SKB_MODE = 1 << 1;
const XDP_FLAGS_DRV_MODE = 1 << 2;

export interface AttachOptions {
  /**
   * Use the old netlink attachment instead of a kernel link (for kernels without XDP links
   * (< 5.9) or tcx (< 6.6)). It survives the process: close() removes it, a SIGKILL does not,
   * and sweepLeftovers() does.
   */
  legacy?: boolean;
}

const live = new Set<BpfObject>();

/** An opened and loaded BPF object file with its programs, maps and attachments. */
export class BpfObject {
  private closed = false;
  private readonly attachments = new Map<number, string>();
  private readonly legacy = new Map<number, LegacyAttachment>();

  private constructor(
    private readonly obj: NativeObject,
    readonly name: string,
  ) {
    live.add(this);
    installExitCleanup();
  }

  /**
   * Opens NAME (a file in dist/bpf, without ".bpf.o") or a path, applies the options, loads it
   * into the kernel. Throws BpfError (with verifierLog) when the kernel refuses.
   */
  static open(nameOrPath: string, opts: OpenOptions = {}): BpfObject {
    const path = nameOrPath.endsWith('.o')
      ? (isAbsolute(nameOrPath) ? nameOrPath : resolve(nameOrPath))
      : join(bpfObjectDir, `${nameOrPath}.bpf.o`);
    const name = nameOrPath.replace(/^.*\//, '').replace(/\.bpf\.o$|\.o$/, '');
    if (!existsSync(path))
      throw new BpfError(`opening ${path}: no such file: build the BPF programs with "npm run build"`, 'ENOENT', 2, `opening ${name}`);
    const obj = call(() => new (native().BpfObject)(path));
    try {
      for (const l of opts.layouts ?? []) checkLayout(obj, name, path, l);
      if (opts.settings) applySettings(obj, name, opts.settings);
      for (const prog of opts.skip ?? []) call(() => obj.setAutoload(prog, false), `${name}: skipping ${prog}`);
      for (const [map, n] of Object.entries(opts.maxEntries ?? {})) call(() => obj.resizeMap(map, n));
      call(() => obj.load(), `loading ${name}`);
    } catch (e) {
      obj.close();
      throw e;
    }
    return new BpfObject(obj, name);
  }

  programs(): NativeProgram[] {
    return this.obj.programs();
  }

  maps(): NativeMap[] {
    return this.obj.maps();
  }

  /** Attaches where the program's section says (tp/, raw_tp/, tp_btf/, uprobe/...). */
  attach(prog: string): number {
    if (this.programs().find((p) => p.name === prog)?.section.startsWith('tp/')) ensureTracefs();
    return this.track(call(() => this.obj.attach(prog, 'auto'), `${this.name}`), `${prog}`);
  }

  attachXdp(prog: string, iface: string, mode: XdpMode, opts: AttachOptions = {}): number {
    const ifindex = ifIndexOf(iface, `attaching ${prog} (xdp) to ${iface}`);
    const flags = mode === 'native' ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
    const record: LegacyAttachment | undefined = opts.legacy ? { kind: 'xdp', iface, mode, netnsIno: netnsInode() } : undefined;
    const id = this.withRecord(record, () =>
      call(() => this.obj.attach(prog, 'xdp', { ifindex, flags, legacy: !!opts.legacy }), `${this.name}: xdp ${mode} on ${iface}`),
    );
    return this.track(id, `${prog} xdp ${mode} ${iface}`);
  }

  attachTc(prog: string, iface: string, direction: 'ingress' | 'egress', opts: AttachOptions = {}): number {
    const ifindex = ifIndexOf(iface, `attaching ${prog} (tc ${direction}) to ${iface}`);
    const record: LegacyAttachment | undefined = opts.legacy
      ? { kind: 'tc', iface, direction, priority: LEGACY_TC_PRIORITY, netnsIno: netnsInode() }
      : undefined;
    const id = this.withRecord(record, () =>
      call(
        () => this.obj.attach(prog, 'tc', { ifindex, ingress: direction === 'ingress', legacy: !!opts.legacy, priority: LEGACY_TC_PRIORITY }),
        `${this.name}: tc ${direction} on ${iface}`,
      ),
    );
    return this.track(id, `${prog} tc ${direction} ${iface}`);
  }

  /** For cgroup_skb and sockops programs; the cgroup must be a cgroup v2 directory. */
  attachCgroup(prog: string, cgroupPath: string): number {
    return this.track(call(() => this.obj.attach(prog, 'cgroup', { path: cgroupPath }), `${this.name}`), `${prog} ${cgroupPath}`);
  }

  detach(id: number): void {
    this.obj.detach(id);
    this.attachments.delete(id);
    const rec = this.legacy.get(id);
    if (rec) forgetLegacy(rec);
    this.legacy.delete(id);
  }

  /** Detaches every program and keeps the object loaded, so its maps stay readable. */
  detachAll(): void {
    for (const id of [...this.attachments.keys()]) this.detach(id);
  }

  /** Legacy attachments outlive a killed process: record them before they exist. */
  private withRecord(record: LegacyAttachment | undefined, attach: () => number): number {
    if (!record) return attach();
    recordLegacy(record);
    try {
      const id = attach();
      this.legacy.set(id, record);
      return id;
    } catch (e) {
      forgetLegacy(record);
      throw e;
    }
  }

  /** What is attached now, for status output. */
  attached(): string[] {
    return [...this.attachments.values()];
  }

  /** The program's kernel id and, while bpf_stats is on, its run count and total run time. */
  programStats(prog: string) {
    return call(() => this.obj.progInfo(prog));
  }

  map(name: string): BpfMap {
    const m = this.maps().find((x) => x.name === name);
    if (!m) throw new BpfError(`${this.name}: no map named ${name}`, 'ENOENT', 2, `finding map ${name}`);
    return new BpfMap(this.obj, m);
  }

  ring(name: string): RingReader {
    const m = this.map(name);
    if (m.info.type !== 'ringbuf') throw new TypeError(`${this.name}: map ${name} is a ${m.info.type}, not a ringbuf`);
    return new RingReader(this.obj, call(() => this.obj.ringOpen(name), `${this.name}: opening ring ${name}`));
  }

  /** Detaches everything and unloads. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    this.obj.close();
    this.attachments.clear();
    for (const rec of this.legacy.values()) forgetLegacy(rec);
    this.legacy.clear();
  }

  private track(id: number, what: string): number {
    this.attachments.set(id, what);
    return id;
  }
}

function checkLayout(obj: NativeObject, name: string, path: string, l: StructLayout): void {
  const actual = obj.structLayout(l.name);
  const problems = actual
    ? layoutDifferences(l, actual, `${name}.bpf.o`)
    : [`struct ${l.name} is not in the BTF of ${name}.bpf.o: the program must declare LATSCOPE_LAYOUT(${l.name})`];
  if (problems.length)
    throw new LayoutError(
      `${name}: the layout TypeScript shares with ${path} differs: ${problems.join('; ')}; rebuild (npm run build) after changing the header, and change protocol/ to match`,
      'ELAYOUT', 22, `checking layouts of ${name}`);
}

function applySettings(obj: NativeObject, name: string, settings: Record<string, Setting>): void {
  const vars = obj.datasecVars('.rodata');
  const image = obj.initialValue('.rodata');
  if (!image) throw new TypeError(`${name}: has no const volatile settings, but ${Object.keys(settings).join(', ')} were given`);
  for (const [key, value] of Object.entries(settings)) {
    const v = vars.find((x) => x.name === key);
    if (!v) throw new TypeError(`${name}: no setting named ${key}; known: ${vars.map((x) => x.name).join(', ') || 'none'}`);
    writeSetting(image, v.offset, v.size, value, `${name}.${key}`);
  }
  call(() => obj.setInitialValue('.rodata', image), `${name}: applying settings`);
}

function writeSetting(buf: Buffer, offset: number, size: number, value: Setting, what: string): void {
  if (Buffer.isBuffer(value)) {
    if (value.length !== size) throw new RangeError(`${what}: needs ${size} bytes, got ${value.length}`);
    value.copy(buf, offset);
    return;
  }
  const n = typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value);
  const bits = BigInt(size * 8);
  if (n < -(1n << (bits - 1n)) || n >= 1n << bits) throw new RangeError(`${what}: ${value} does not fit in ${size} bytes`);
  const u = BigInt.asUintN(size * 8, n);
  if (size === 1) buf.writeUInt8(Number(u), offset);
  else if (size === 2) buf.writeUInt16LE(Number(u), offset);
  else if (size === 4) buf.writeUInt32LE(Number(u), offset);
  else if (size === 8) buf.writeBigUInt64LE(u, offset);
  else throw new RangeError(`${what}: ${size}-byte settings need a Buffer`);
}

/** A BPF map: keys and values are Buffers in the C layout. */
export class BpfMap {
  /** Bytes per value as the kernel hands it over (per-CPU maps: one slot per possible CPU). */
  readonly valueBytes: number;
  readonly perCpu: boolean;

  constructor(
    private readonly obj: NativeObject,
    readonly info: NativeMap,
  ) {
    this.perCpu = info.type.startsWith('percpu_') || info.type.includes('percpu');
    this.valueBytes = this.perCpu ? Math.ceil(info.valueSize / 8) * 8 * possibleCpus() : info.valueSize;
  }

  lookup(key: Buffer): Buffer | undefined {
    const value = Buffer.alloc(this.valueBytes);
    return call(() => this.obj.mapLookup(this.info.name, key, value)) ? value : undefined;
  }

  update(key: Buffer, value: Buffer): void {
    call(() => this.obj.mapUpdate(this.info.name, key, value));
  }

  delete(key: Buffer): boolean {
    return call(() => this.obj.mapDelete(this.info.name, key));
  }

  keys(): Buffer[] {
    const all = call(() => this.obj.mapKeys(this.info.name));
    const out: Buffer[] = [];
    for (let o = 0; o < all.length; o += this.info.keySize) out.push(all.subarray(o, o + this.info.keySize));
    return out;
  }

  /** For per-CPU maps: the value of each CPU's slot, as Buffers of valueSize bytes. */
  perCpuValues(value: Buffer): Buffer[] {
    const stride = Math.ceil(this.info.valueSize / 8) * 8;
    const out: Buffer[] = [];
    for (let o = 0; o < value.length; o += stride) out.push(value.subarray(o, o + this.info.valueSize));
    return out;
  }

  /**
   * Entries in a few syscalls instead of one per entry (an observer's scrape reads thousands of
   * histogram buckets): up to `limit` of them (an array map's, from index `start`), as [keys,
   * values, count], each Buffer in the C layout, entry i at i * keySize and i * valueBytes.
   */
  lookupAll(limit = this.info.maxEntries, start = 0): [keys: Buffer, values: Buffer, count: number] {
    const n = Math.max(0, Math.min(limit, this.info.maxEntries - start));
    // fresh ArrayBuffers (Buffer.alloc never pools): word-aligned for the typed views of u64Array
    const keys = Buffer.alloc(this.info.keySize * n);
    const values = Buffer.alloc(this.valueBytes * n);
    return [keys, values, n ? call(() => this.obj.mapLookupAll(this.info.name, keys, values, this.valueBytes, start)) : 0];
  }

  /** An array map of u64 counters (plain or per-CPU, summed over CPUs): `limit` indexes from `start` read at once, value per index - start. */
  u64Array(limit = this.info.maxEntries, start = 0): bigint[] {
    if (this.info.keySize !== 4) throw new RangeError(`map ${this.info.name}: u64Array reads array maps (u32 keys)`);
    const [keys, values, n] = this.lookupAll(limit, start);
    const out: bigint[] = new Array(Math.max(0, Math.min(limit, this.info.maxEntries - start))).fill(0n);
    // summed as 32-bit halves in plain numbers (exact below 2^53, far above any count), one
    // BigInt per entry at the end: BigInt arithmetic per CPU slot made a 64-port scrape 10 ms
    const words = new Uint32Array(values.buffer, values.byteOffset, values.length >> 2);
    const keyWords = new Uint32Array(keys.buffer, keys.byteOffset, keys.length >> 2);
    const stride = this.valueBytes >> 2, slot = this.perCpu ? Math.ceil(this.info.valueSize / 8) * 2 : stride;
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let w = i * stride, end = w + stride; w < end; w += slot) sum += words[w + 1]! * 4294967296 + words[w]!;
      if (sum) out[keyWords[i]! - start] = BigInt(sum);
    }
    return out;
  }

  /** Array of u64 counters (plain or per-CPU, summed over CPUs) at a u32 index. */
  u64At(index: number): bigint {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(index);
    const v = this.lookup(key);
    if (!v) return 0n;
    if (!this.perCpu) return v.readBigUInt64LE(0);
    return this.perCpuValues(v).reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
  }
}

/**
 * Reads a BPF ring buffer into a reusable batch Buffer. Producers should submit with
 * BPF_RB_NO_WAKEUP; call drain() on a timer. Each record in the batch is laid out as
 * [u32 length][u32 reserved][data padded to 8 bytes].
 */
export class RingReader {
  constructor(
    private readonly obj: NativeObject,
    private readonly id: number,
  ) {}

  /** Moves up to batch.length bytes of records into batch; returns [records, bytes used]. */
  drainInto(batch: Buffer, maxRecords?: number): [number, number] {
    return maxRecords === undefined ? this.obj.ringDrain(this.id, batch) : this.obj.ringDrain(this.id, batch, maxRecords);
  }

  /** Bytes waiting in the ring. */
  pending(): number {
    return this.obj.ringPending(this.id);
  }

  /**
   * Drains on a timer: every intervalMs, hands batches to onBatch until the ring is empty or
   * budgetMs of work is done. The budget bounds the CPU the reader takes (budgetMs/intervalMs of
   * one core) and keeps the event loop free for timers; what is left waits in the ring, and when
   * the ring is full the kernel drops and counts. The batch Buffer is reused: decode it inside
   * onBatch. No wake-up per record is ever needed.
   */
  poll(intervalMs: number, onBatch: (batch: Buffer, records: number, bytes: number) => void, o: { batchBytes?: number; budgetMs?: number; recordsPerBatch?: number } = {}): RingPoll {
    const batch = Buffer.alloc(o.batchBytes ?? 1 << 20);
    const budgetMs = o.budgetMs ?? Infinity;
    // small batches under a budget: one batch's work must not overrun it by much
    const per = o.recordsPerBatch ?? (budgetMs === Infinity ? undefined : 32);
    const poll: RingPoll = { stop: () => 0, overBudget: 0 };
    const tick = (budget: number): boolean => {
      const start = performance.now();
      for (;;) {
        const [n, used] = this.drainInto(batch, per);
        if (n === 0) return true;
        onBatch(batch, n, used);
        if (performance.now() - start >= budget) return this.pending() === 0;
      }
    };
    const timer = setInterval(() => {
      if (!tick(budgetMs)) poll.overBudget++;
    }, intervalMs);
    let stopped = false;
    poll.stop = (stopBudgetMs = Infinity) => {
      clearInterval(timer);
      if (stopped) return 0;
      stopped = true;
      if (tick(stopBudgetMs)) return 0;
      let discarded = 0; // what the budget did not reach: out of the ring, counted
      for (let n; (n = this.drainInto(batch)[0]) > 0; ) discarded += n;
      return discarded;
    };
    return poll;
  }
}

export interface RingPoll {
  /** Stops the timer and drains what is left within budgetMs; returns the records discarded beyond it. */
  stop(budgetMs?: number): number;
  /** Ticks that ended with records still in the ring (the reader was at its CPU budget). */
  overBudget: number;
}

/** Calls fn(offset, length) for each record of a drained batch. */
export function forEachRecord(batch: Buffer, used: number, fn: (offset: number, length: number) => void): void {
  let o = 0;
  while (o < used) {
    const len = batch.readUInt32LE(o);
    fn(o + 8, len);
    o += 8 + ((len + 7) & ~7);
  }
}

let cpuCount: number | undefined;
export function possibleCpus(): number {
  return (cpuCount ??= native().numPossibleCpus());
}

export function libbpfVersion(): string {
  return native().libbpfVersion();
}

/** Interface index in the current network namespace; a clear error naming it if absent. */
export function ifIndexOf(iface: string, doing = `looking up interface ${iface}`): number {
  const idx = native().ifIndex(iface);
  if (!idx) throw new BpfError(`${doing}: no interface named "${iface}" in this network namespace (ENODEV)`, 'ENODEV', 19, doing);
  return idx;
}

/** Runs fn inside the named network namespace (/run/netns/NAME), then returns to this one. */
export function inNetns<T>(name: string, fn: () => T): T {
  const target = openSync(join('/run/netns', name), 'r');
  const home = openSync('/proc/thread-self/ns/net', 'r');
  try {
    call(() => native().setNetns(target), `entering network namespace ${name}`);
    try {
      return fn();
    } finally {
      native().setNetns(home);
    }
  } finally {
    closeSync(target);
    closeSync(home);
  }
}

/** Inode of a network namespace as BPF programs see it (dev->nd_net.net->ns.inum). */
export function netnsInode(name?: string): number {
  return statSync(name ? join('/run/netns', name) : '/proc/thread-self/ns/net').ino;
}

/** Turns on kernel-wide BPF run-time statistics until the returned function is called. */
export function enableBpfStats(): () => void {
  const fd = call(() => native().enableStats(), 'enabling bpf_stats');
  return () => native().closeFd(fd);
}

/** libbpf finds tracepoint ids in tracefs, which `ip netns exec` and fresh hosts may lack. */
export function ensureTracefs(): void {
  if (existsSync('/sys/kernel/tracing/events') || existsSync('/sys/kernel/debug/tracing/events')) return;
  mkdirSync('/sys/kernel/tracing', { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: 'pipe' });
  } catch (e) {
    throw new MissingFeatureError(
      `mounting tracefs at /sys/kernel/tracing: ${(e as Error).message.trim()}: tracepoint programs need it; mount it by hand or run as root`,
      'ENOENT', 2, 'mounting tracefs');
  }
}

/** The cgroup v2 mount (cgroup_skb and sockops programs attach to a v2 cgroup). */
export function cgroupV2Root(): string {
  // The cgroup2 mount this process sees (mountinfo field 5 is the mount point; the type follows " - ").
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ') && pre!.split(' ')[3] === '/') return pre!.split(' ')[4]!;
  }
  // None here, e.g. under `ip netns exec`, which mounts a fresh /sys: mount the (one, shared)
  // cgroup2 hierarchy privately, in this mount namespace only.
  const at = '/run/latscope/cgroup2';
  mkdirSync(at, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'cgroup2', 'none', at], { stdio: 'pipe' });
  } catch (e) {
    throw new MissingFeatureError(`finding the cgroup v2 mount: none mounted, and mounting it at ${at} failed: ${(e as Error).message.trim()}; mount cgroup2 first (cgroup_skb and sockops programs need it)`, 'ENOENT', 2, 'finding cgroup v2');
  }
  return at;
}

/** Closes every open BPF object. */
export function closeAll(): void {
  for (const o of [...live]) o.close();
}

let cleanupInstalled = false;
/**
 * SIGINT/SIGTERM/SIGHUP with no handler of the application's: close every object, then let the
 * signal do what it would have done. With the application's own handler, it decides when to
 * stop; whatever is still open is closed on exit.
 */
function installExitCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', closeAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      if (process.listenerCount(sig) > 1) return;
      closeAll();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}
