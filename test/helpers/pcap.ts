/**
 * A capture by tcpdump (a tool the project did not write) inside a test namespace, read back:
 * per TCP data packet its capture time (ns, nanosecond pcap), sequence number and payload length.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Captured {
  tNs: bigint;
  seq: number;
  len: number;
  sport: number;
  dport: number;
}

export class Capture {
  private constructor(
    private readonly child: ChildProcess,
    private readonly file: string,
  ) {}

  /** Starts tcpdump on an interface of a namespace ('' for this one) with a capture filter; resolves once it listens. */
  static async start(netns: string, iface: string, filter: string, file: string): Promise<Capture> {
    const args = ['tcpdump', '-i', iface, '-n', '-U', '-s', '128', '--time-stamp-precision=nano', '-w', file, filter];
    const child = netns ? spawn('ip', ['netns', 'exec', netns, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/listening on/.test(err)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`tcpdump on ${netns}/${iface} exited (${code}): ${err.trim()}`)));
    });
    return new Capture(child, file);
  }

  /** Stops the capture and reads its TCP data packets. */
  async stop(): Promise<Captured[]> {
    return readPcap(await this.stopRaw());
  }

  /** Stops the capture and reads its UDP datagrams. */
  async stopUdp(): Promise<{ sport: number; dport: number; payload: Buffer }[]> {
    return readUdp(await this.stopRaw());
  }

  private async stopRaw(): Promise<Buffer> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGINT');
    await exited;
    return readFileSync(this.file);
  }
}

/** The UDP datagrams (IPv4 over Ethernet) of a capture. */
export function readUdp(buf: Buffer): { sport: number; dport: number; payload: Buffer }[] {
  const out: { sport: number; dport: number; payload: Buffer }[] = [];
  for (let o = 24; o + 16 <= buf.length; ) {
    const incl = buf.readUInt32LE(o + 8);
    const p = o + 16;
    o = p + incl;
    if (buf.readUInt16BE(p + 12) !== 0x0800) continue;
    const ip = p + 14;
    if (buf[ip + 9] !== 17) continue;
    const u = ip + (buf[ip]! & 15) * 4;
    out.push({ sport: buf.readUInt16BE(u), dport: buf.readUInt16BE(u + 2), payload: buf.subarray(u + 8, p + incl) });
  }
  return out;
}

export function readPcap(buf: Buffer): Captured[] {
  const magic = buf.readUInt32LE(0);
  const nano = magic === 0xa1b23c4d;
  if (!nano && magic !== 0xa1b2c3d4) throw new Error(`not a little-endian pcap file (magic ${magic.toString(16)})`);
  const link = buf.readUInt32LE(20);
  const out: Captured[] = [];
  for (let o = 24; o + 16 <= buf.length; ) {
    const sec = buf.readUInt32LE(o), frac = buf.readUInt32LE(o + 4), incl = buf.readUInt32LE(o + 8), orig = buf.readUInt32LE(o + 12);
    const p = o + 16;
    o = p + incl;
    const l3 = link === 1 ? 14 : 0; // Ethernet, or raw IP
    if (link === 1 && buf.readUInt16BE(p + 12) !== 0x0800) continue;
    const ip = p + l3;
    if (buf[ip]! >> 4 !== 4 || buf[ip + 9] !== 6) continue;
    const ihl = (buf[ip]! & 15) * 4;
    const total = buf.readUInt16BE(ip + 2);
    const th = ip + ihl;
    const doff = (buf[th + 12]! >> 4) * 4;
    const len = total - ihl - doff;
    if (len <= 0) continue;
    void orig;
    out.push({ tNs: BigInt(sec) * 1_000_000_000n + BigInt(nano ? frac : frac * 1000), seq: buf.readUInt32BE(th + 4), len, sport: buf.readUInt16BE(th), dport: buf.readUInt16BE(th + 2) });
  }
  return out;
}
