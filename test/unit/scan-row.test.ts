/**
 * scanRow (the stream stage's one-pass row reader) accepts exactly the lines the row format's
 * regex accepts (validRows), over real encoded records and thousands of mutations of them, and
 * reads the same values a split would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRow, scanRow, scannedRow, validRows, ROW, type PacketRecord } from '../../protocol/records.js';

let seed = 7;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);

function record(i: number): PacketRecord {
  const t = 9_000_000_000_000_000n + BigInt(i) * 1000n;
  const big = i % 5 === 0 ? 10_000_000_000_000_000n : 0n; // past 2^53: kept as digits
  return {
    node: 'n', observerSeq: 1_700_000_000_000_000 + i, dir: i % 2 ? 'rx' : 'tx',
    flow: i % 3 ? { family: 4, src: '10.0.0.1', sport: 40000 + i, dst: '10.0.0.2', dport: 5201 } : { family: 6, src: 'fd00::1', sport: 1, dst: 'fd00:0:0:0:0:0:0:2', dport: 65535 },
    sampleSeq: (i * 2654435761) >>> 0, streamOffset: i * 1000, segStart: 1, segEnd: 2, attempt: i % 4 === 0 ? 1 : 0, retrans: i % 4 === 0, interval: false, complete: i % 2 === 0,
    layers: { sock: i % 7 ? { tsNs: t + big, cpu: 1, tid: 100 } : undefined, tcp: { tsNs: t + 10n, cpu: 0, tid: 7 }, ip: { tsNs: t + 20n, cpu: 0, tid: 7 }, dev: { tsNs: t + 30n, cpu: 1, tid: 0 } },
    devices: i % 3 === 0 ? [] : i % 3 === 1 ? [{ ifindex: 2, netns: 4026531840, rx: false, tsNs: t + 30n }] : [{ ifindex: 2, netns: 4026531840, rx: true, tsNs: t + 30n }, { ifindex: 5, netns: 4026531841, rx: true, tsNs: t + 99n + big }],
  };
}

const regexOk = (line: string) => validRows(`${line}\n`, 1);

test('scanRow reads what a split reads, exact past 2^53', () => {
  const r = scannedRow();
  for (let i = 0; i < 300; i++) {
    const line = encodeRow(record(i));
    assert.ok(scanRow(line, r), line);
    const f = line.split('\t');
    assert.equal(r.seq, Number(f[ROW.seq]));
    assert.equal(r.tx, f[ROW.dir] === 'tx');
    assert.equal(r.flow, Number(f[ROW.flow]));
    assert.equal(r.sampleSeq, Number(f[ROW.sampleSeq]));
    assert.equal(r.offset, Number(f[ROW.offset]));
    assert.equal(r.attempt, Number(f[ROW.attempt]));
    assert.equal(r.flags, Number(f[ROW.flags]));
    for (const k of ['sock', 'tcp', 'ip', 'dev'] as const) {
      const v = f[ROW[k]]!;
      assert.equal(String(r[k] ?? '\\N'), v, `${k} of ${line}`);
    }
    const hops = f[ROW.hops]!;
    assert.equal(r.last === null ? '' : String(r.last), hops === '' ? '' : hops.slice(hops.lastIndexOf(':') + 1));
    assert.equal(r.hops, hops.includes(',') ? hops : null);
  }
});

test('scanRow accepts exactly the lines the row regex accepts, over mutations of real rows', () => {
  const r = scannedRow();
  const alphabet = '0123456789\t\\N:,.-abcxtr46 \n\u010a';
  let accepted = 0, rejected = 0;
  for (let i = 0; i < 20_000; i++) {
    let line = encodeRow(record(i % 300));
    const edits = 1 + Math.floor(rnd() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rnd() * (line.length + 1));
      const ch = alphabet[Math.floor(rnd() * alphabet.length)]!;
      const kind = rnd();
      line = kind < 0.4 ? line.slice(0, at) + ch + line.slice(at + 1) : kind < 0.7 ? line.slice(0, at) + line.slice(at + 1) : line.slice(0, at) + ch + line.slice(at);
    }
    if (line.includes('\n')) continue; // a newline splits an entry's lines before a line is read
    const want = regexOk(line);
    assert.equal(scanRow(line, r), want, JSON.stringify(line));
    // read in place within an entry's rows, between other lines: the same verdict and fields
    const before = encodeRow(record((i + 1) % 300)), after = encodeRow(record((i + 2) % 300));
    const body = `${before}\n${line}\n${after}\n`;
    const alone = { ...r };
    assert.equal(scanRow(body, r, before.length + 1, before.length + 1 + line.length), want, `in place: ${JSON.stringify(line)}`);
    if (want) assert.deepEqual({ ...r }, alone);
    if (want) accepted++;
    else rejected++;
  }
  assert.ok(accepted > 1000 && rejected > 5000, `both kinds met: ${accepted} accepted, ${rejected} rejected`);
});
