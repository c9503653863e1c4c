/** The block I/O module (bpf/block.bpf.c): request latency from issue to completion, per device and direction. */
import { readdirSync, readFileSync } from 'node:fs';
import { decodeHist, type Histogram } from './hist.js';
import { HostProbe } from './probe.js';

export interface BlockDevice {
  /** The disk's name (/sys/block), or major:minor. */
  device: string;
  write: boolean;
  hist: Histogram;
}

/** major:minor → disk name, from /sys/block/NAME/dev. */
function diskNames(): Map<string, string> {
  const out = new Map<string, string>();
  try {
    for (const d of readdirSync('/sys/block')) out.set(readFileSync(`/sys/block/${d}/dev`, 'utf8').trim(), d);
  } catch {
    /* numbers only */
  }
  return out;
}

export class BlockProbe extends HostProbe {
  private constructor(bpf: ReturnType<typeof HostProbe['load']>) {
    super('block', bpf);
  }

  static open(): BlockProbe {
    return new BlockProbe(HostProbe.load('block', {}));
  }

  snapshot(): BlockDevice[] {
    const names = diskNames();
    const m = this.bpf.map('lat');
    return m.keys().flatMap((k) => {
      const v = m.lookup(k);
      if (!v) return [];
      const dev = k.readUInt32LE(0);
      const mm = `${dev >>> 20}:${dev & 0xfffff}`;
      return [{ device: names.get(mm) ?? mm, write: k.readUInt32LE(4) === 1, hist: decodeHist(v) }];
    });
  }
}
