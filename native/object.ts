/**
 * A BPF object file opened, configured (const volatile settings by name, map sizes), checked
 * (the layouts TypeScript shares with it, against its BTF), loaded and attached (XDP and tc modes
 * chosen, interfaces resolved); every open object is closed on exit, SIGINT and SIGTERM.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fieldBytes, layoutDifferences, type FieldSpec, type StructLayout } from '../protocol/layout.js';
import { bpfObjectDir, native, type NativeMap, type NativeObject, type NativeProgram } from './binding.js';
import { BpfError, LayoutError, call } from './errors.js';
import { BpfMap } from './map.js';
import { RingReader } from './ring.js';
import { ensureTracefs, ifIndexOf, netnsInode } from './system.js';
import { forgetLegacy, recordLegacy, LEGACY_TC_PRIORITY, type LegacyAttachment } from './leftovers.js';

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
  /** The settings' C types by name (protocol/): each must be in .rodata with that size, and `settings` may name no other. */
  settingsLayout?: FieldSpec;
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
      if (opts.settingsLayout) checkSettingsLayout(obj, name, path, opts.settingsLayout, Object.keys(opts.settings ?? {}));
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

function checkSettingsLayout(obj: NativeObject, name: string, path: string, layout: FieldSpec, given: string[]): void {
  const vars = new Map(obj.datasecVars('.rodata').map((v) => [v.name, v]));
  const problems: string[] = [];
  for (const [key, type] of Object.entries(layout)) {
    const v = vars.get(key);
    if (!v) problems.push(`setting ${key} is not in ${name}.bpf.o`);
    else if (v.size !== fieldBytes(type)) problems.push(`setting ${key} is ${v.size} bytes in ${name}.bpf.o, TypeScript declares ${fieldBytes(type)}`);
  }
  for (const key of given) if (!(key in layout)) problems.push(`setting ${key} is not declared in the TypeScript settings layout`);
  if (problems.length)
    throw new LayoutError(`${name}: the settings TypeScript gives ${path} differ: ${problems.join('; ')}; rebuild (npm run build) after changing the program, and change protocol/ to match`, 'ELAYOUT', 22, `checking settings of ${name}`);
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
    // first in line: when it runs, an application's `once` handler has not been taken off yet
    // and still counts (after it, it would be gone, and the signal taken for an unhandled one)
    process.prependListener(sig, onSignal);
  }
}
