/**
 * The latscope_bpf addon as the native/ modules reach it: the only loader of the .node file,
 * and the shapes of what it returns. Policy stays in TypeScript (object.ts, map.ts, ...).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';
import type { FieldLayout } from '../protocol/layout.js';

/** Where `make -C native bpf` puts the compiled BPF objects that ship to servers. */
export const bpfObjectDir = join(projectRoot, 'dist', 'bpf');

export interface NativeProgram { name: string; section: string; type: string; autoload: boolean; fd: number }
export interface NativeMap { name: string; type: string; keySize: number; valueSize: number; maxEntries: number; fd: number }
export interface NativeObject {
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
export interface NativeAddon {
  BpfObject: new (path: string) => NativeObject;
  ifIndex(name: string): number;
  setNetns(fd: number): void;
  enableStats(): number;
  closeFd(fd: number): void;
  numPossibleCpus(): number;
  libbpfVersion(): string;
}

let addon: NativeAddon | undefined;
export function native(): NativeAddon {
  if (!addon) {
    const path = join(projectRoot, 'native', 'build', 'Release', 'latscope_bpf.node');
    if (!existsSync(path))
      throw new Error(`loading the BPF addon: ${path} is missing: build it with "sh native/install.sh" in ${projectRoot} (a checkout: bash scripts/build.sh; npm builds it at install when latscope's install script may run: npm install-scripts approve latscope)`);
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  }
  return addon;
}
