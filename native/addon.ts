/**
 * The typed facade over the latscope_bpf addon, the one import of everything BPF for the rest of
 * latscope; each concern has its module:
 * - binding.ts: the only loader of the .node file, and the shapes it returns;
 * - errors.ts: BpfError with the verifier log cut out of libbpf's output, MissingFeatureError
 *   when the kernel lacks something, LayoutError;
 * - object.ts: BpfObject (settings by name, layouts checked against BTF, XDP and tc attach
 *   modes; attachments are kernel links, released even on SIGKILL), closed on exit and signals;
 * - map.ts: BpfMap; ring.ts: RingReader; system.ts: CPUs, interfaces, namespaces, mounts.
 */
export { bpfObjectDir } from './binding.js';
export * from './errors.js';
export * from './object.js';
export * from './map.js';
export * from './ring.js';
export * from './system.js';
