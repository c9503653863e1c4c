/**
 * `latscope timesync respond`: the time-sync responder on its own (the observer runs the same).
 * `latscope timesync probe`: one round of probes from this host, with the estimated offsets.
 */
import { confOption, numberIn } from './options.js';
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { pingKey, responderSettings } from '../conf/load.js';
import { loadConfFile } from '../conf/load.js';
import { pingInfo } from '../conf/schema.js';
import { startResponder } from '../timesync/responder.js';
import { Prober, unixMsAt } from '../timesync/prober.js';
import { estimateRound } from '../timesync/estimator.js';
import type { TestClock } from '../protocol/timesync.js';

const testClock = (v: string): TestClock => {
  const m = /^(-?\d+):(-?\d+)(?::(\d+))?$/.exec(v);
  if (!m) throw new Error('--test-clock: expected OFFSET_NS:DRIFT_PPB[:EPOCH_NS], e.g. 5000000:20000');
  return { offsetNs: BigInt(m[1]!), driftPpb: BigInt(m[2]!), epochNs: m[3] === undefined ? undefined : BigInt(m[3]) };
};

export function timesyncCommand(): Command {
  const cmd = new Command('timesync').description('clock offsets between this manager and the servers');
  cmd
    .command('respond')
    .description('answer time-sync probes on this server (XDP; user-space echo where XDP cannot attach) until SIGINT/SIGTERM')
    .addOption(confOption('ping_info.yaml'))
    .option('--eth <iface>', 'interface (default: ping_info eth)')
    .addOption(new Option('--test-clock <offset:drift[:epoch]>', 'test only: report t + OFFSET_NS + (t - EPOCH_NS) * DRIFT_PPB / 1e9').hideHelp())
    .action(async (o: { conf: string; eth?: string; testClock?: string }) => {
      const conf = resolve(o.conf);
      const p = loadConfFile(conf, 'ping_info.yaml', pingInfo);

      const r = await startResponder({ ...responderSettings(conf, p, o.eth), test: o.testClock ? testClock(o.testClock) : undefined });
      console.log(JSON.stringify({ responder: { mode: r.mode, iface: o.eth ?? p.eth, port: p.port, fallbackReason: r.fallbackReason } }));
      const alive = setInterval(() => {}, 1 << 30); // the XDP link is no event-loop handle
      await new Promise<void>((res) => {
        process.once('SIGINT', res);
        process.once('SIGTERM', res);
      });
      clearInterval(alive);
      const c = r.counters();
      await r.close();
      console.log(JSON.stringify({ counters: Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Number(v)])) }));
    });
  cmd
    .command('probe')
    .description('send one round of probes to each address and print the estimated offsets')
    .addOption(confOption('ping_info.yaml'))
    .requiredOption('--eth <list>', "this host's interfaces towards the servers, comma-separated")
    .option('--count <n>', 'probes per server', numberIn('--count', 1, 1_000_000), 1000)
    .option('--json', 'one JSON line: {"estimates":[{address, offsetNs, boundNs, minDelayNs, replies, sent, atUnixMs}]} (offsetNs a decimal string; atUnixMs when the estimate holds, on the wall clock; an address without a reply has offsetNs null)')
    .addOption(new Option('--test-clock <offset:drift[:epoch]>', "test only: this host's t1 and t4 as t + OFFSET_NS + (t - EPOCH_NS) * DRIFT_PPB / 1e9 (as respond's)").hideHelp())
    .argument('<address...>', 'servers to probe')
    .action(async (addresses: string[], o: { conf: string; eth: string; count: number; json?: boolean; testClock?: string }) => {
      const conf = resolve(o.conf);
      const p = loadConfFile(conf, 'ping_info.yaml', pingInfo);
      const test = o.testClock ? testClock(o.testClock) : undefined;
      const prober = await Prober.open({ ifaces: o.eth.split(',').filter(Boolean), port: p.port, key: pingKey(conf, p), test });
      try {
        const res = await prober.round(addresses, o.count, 1);
        if (o.json) {
          const estimates = addresses.map((a) => {
            const s = res.samples.get(a)!;
            if (!s.length) return { address: a, offsetNs: null, boundNs: null, minDelayNs: null, replies: 0, sent: o.count };
            const e = estimateRound(s);
            // the estimate's moment on the wall clock (a test clock's offset taken back out: it is this host's own clock)
            const atUnixMs = Math.round(unixMsAt(test ? e.atNs - test.offsetNs : e.atNs));
            return { address: a, offsetNs: e.offsetNs.toString(), boundNs: e.boundNs, minDelayNs: e.minDelayNs, replies: s.length, sent: o.count, atUnixMs };
          });
          console.log(JSON.stringify({ estimates }));
          return;
        }
        for (const a of addresses) {
          const s = res.samples.get(a)!;
          if (s.length === 0) {
            console.log(`${a}: no reply to ${o.count} probes (is the responder running with this key and port, and does its ping_info.yaml list this host's address under probers?)`);
            continue;
          }
          const e = estimateRound(s);
          console.log(`${a}: offset ${e.offsetNs} ns ± ${e.boundNs.toFixed(0)} ns (server − this host), min round trip ${e.minDelayNs} ns, ${s.length}/${o.count} replies`);
        }
      } finally {
        await prober.close();
      }
    });
  return cmd;
}
