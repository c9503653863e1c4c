/**
 * sockperf's TCP ping-pong with a configuration's hooks turned on and off in windows of one
 * session ("toggled"), so that each side's round trips are measured within half a second of the
 * other's. Separate runs per configuration, seconds apart, measure the VM's drift as much as the
 * hooks: its speed moves by tenths of a microsecond between runs (more in the tail), and a p99
 * from one run rests on its few worst milliseconds.
 *
 * How the times meet: sockperf's full log (--full-log) gives every round trip's send time on its
 * own clock (the TSC since it started). A marker ties that clock to ours: the client is stopped
 * (SIGSTOP) for `pauseMs` once its measured time has begun, and the one round trip that spans the
 * pause was sent when it began. Each hook change is timed on our clock (start and end, the
 * attachments take tens of milliseconds), and round trips from its start to `guardMs` after its
 * end belong to no side: attaching and detaching (text patching, RCU) stalls the CPU briefly.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { median, quantiles } from '../lib/stats.js';
import { checkStop, onStop, pause, stopRequested } from './common.js';

/** Turns a configuration's hooks on or off (synchronous: the addon's attach calls). */
export interface Hooks {
  on(): void;
  off(): void;
}

/** One change of the hooks, in ms on performance.now()'s clock. */
export interface Toggle {
  start: number;
  end: number;
  on: boolean;
}

/** One round trip of sockperf's full log: send time (s, sockperf's clock) and round trip (µs). */
export interface RoundTrip {
  tx: number;
  rtt: number;
}

export interface Percentiles {
  p50: number;
  p99: number;
}

export interface ToggledFigures {
  /** Round trip with the hooks on and off (µs, sockperf's percentiles: nearest rank), all windows pooled. */
  on: Percentiles;
  off: Percentiles;
  /** on - off, all windows pooled. */
  pooled: Percentiles;
  /** on - off in each group of consecutive windows (up to GROUPS), in order. */
  groups: Percentiles[];
  /** The median of the groups' (p50 and p99 each): the figure. A burst of the VM lands in one group and moves the pooled p99 by microseconds, not this. */
  added: Percentiles;
  /** Windows with round trips in them, and the round trips counted on each side. */
  windows: number;
  samples: { on: number; off: number };
}

/** The round trips of a sockperf --full-log file ("packet, txTime(sec), rxTime(sec), rtt(usec)" rows). */
export function parseFullLog(text: string): RoundTrip[] {
  const rows: RoundTrip[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+, ([0-9.]+), [0-9.]+, ([0-9.]+)\s*$/.exec(line);
    if (m) rows.push({ tx: Number(m[1]), rtt: Number(m[2]) });
  }
  return rows;
}

/**
 * Our clock minus sockperf's (ms): the longest round trip is the one that spans the pause begun
 * at `pausedAt`, and it was sent then. Throws when no round trip is as long as most of the pause
 * (it fell outside the measured time).
 */
export function clockOffset(rows: RoundTrip[], pausedAt: number, pauseMs: number): number {
  let longest: RoundTrip | undefined;
  for (const r of rows) if (!longest || r.rtt > longest.rtt) longest = r;
  if (!longest || longest.rtt < pauseMs * 1000 * 0.8)
    throw new Error(
      `sockperf's full log has no round trip spanning the ${pauseMs} ms pause (the longest is ${longest ? `${longest.rtt} µs` : 'none'}): ` +
        `the pause fell outside its measured time; give it more seconds`,
    );
  return pausedAt - longest.tx * 1000;
}

/**
 * The round trips of each window (one per toggle: from its end + guardMs to the next toggle's
 * start); those before the first toggle, during a toggle and within the guard belong to none.
 * `rows` in send order, as sockperf logs them.
 */
export function windowsOf(rows: RoundTrip[], offsetMs: number, toggles: Toggle[], guardMs: number): { on: boolean; rtts: number[] }[] {
  const windows = toggles.map((t) => ({ on: t.on, rtts: [] as number[] }));
  let i = -1;
  for (const r of rows) {
    const t = r.tx * 1000 + offsetMs;
    while (i + 1 < toggles.length && toggles[i + 1]!.start <= t) i++;
    if (i < 0 || t < toggles[i]!.end + guardMs) continue;
    windows[i]!.rtts.push(r.rtt);
  }
  return windows.filter((w) => w.rtts.length > 0);
}

/** Groups of consecutive windows that a session's figure is the median of (an odd count up to this, two windows at least each). */
export const GROUPS = 5;

/** Both sides' percentiles, pooled over the windows and per group of them (toggledFigures' fields). */
export function toggledFigures(windows: { on: boolean; rtts: number[] }[]): ToggledFigures {
  const side = (ws: typeof windows, on: boolean) => ws.filter((w) => w.on === on).flatMap((w) => w.rtts);
  const pct = (xs: number[]): Percentiles => {
    const [p50, p99] = quantiles(xs, [0.5, 0.99]);
    return { p50: p50!, p99: p99! };
  };
  const added = (ws: typeof windows): Percentiles => {
    const on = pct(side(ws, true)), off = pct(side(ws, false));
    return { p50: on.p50 - off.p50, p99: on.p99 - off.p99 };
  };
  const on = side(windows, true), off = side(windows, false);
  if (!on.length || !off.length) throw new Error(`sockperf: no round trip with the hooks ${on.length ? 'off' : 'on'}: give it more seconds`);
  // groups of whole pairs of windows (an on and an off, next to each other); an odd count, so
  // that the median is a group's figure, not the lower of two
  const pairs = Math.floor(windows.length / 2);
  let n = Math.max(1, Math.min(GROUPS, pairs));
  if (n % 2 === 0) n--;
  const groups: Percentiles[] = [];
  for (let g = 0; g < n; g++) {
    const ws = windows.slice(2 * Math.round((g * pairs) / n), g === n - 1 ? windows.length : 2 * Math.round(((g + 1) * pairs) / n));
    if (ws.some((w) => w.on) && ws.some((w) => !w.on)) groups.push(added(ws));
  }
  return {
    on: pct(on),
    off: pct(off),
    pooled: added(windows),
    groups,
    added: { p50: median(groups.map((x) => x.p50)), p99: median(groups.map((x) => x.p99)) },
    windows: windows.length,
    samples: { on: on.length, off: off.length },
  };
}

export interface ToggledRun {
  /** The client's namespace, the CPU it runs on, the server's address and port. */
  netns: string;
  cpu: number;
  address: string;
  port: number;
  /** sockperf's -t: its first 400 ms are its warm-up, then the marker, then the windows. */
  seconds: number;
  hooks: Hooks;
  /** Where sockperf writes its full log (removed after). */
  logPath: string;
  windowMs?: number;
  guardMs?: number;
  pauseMs?: number;
}

/**
 * One sockperf session (100-byte messages) with the hooks toggled every windowMs, starting off.
 * A stop (SIGTERM, Ctrl-C) ends the client and throws, as checkStop() does.
 */
export async function sockperfToggled(o: ToggledRun): Promise<ToggledFigures> {
  const windowMs = o.windowMs ?? 500, guardMs = o.guardMs ?? 100, pauseMs = o.pauseMs ?? 40;
  o.hooks.off();
  const child = spawn(
    'taskset',
    ['-c', String(o.cpu), 'ip', 'netns', 'exec', o.netns, 'sockperf', 'ping-pong', '--tcp', '-i', o.address, '-p', String(o.port), '-m', '100', '-t', String(o.seconds), '--full-rtt', '--full-log', o.logPath],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let started: () => void = () => {};
  const testStarted = new Promise<void>((r) => (started = r));
  child.stdout!.on('data', (d) => {
    out += d;
    if (out.includes('Starting test')) started();
  });
  child.stderr!.on('data', (d) => (out += d));
  let exited = false;
  const exit = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      exited = true;
      started();
      r(code);
    }),
  );
  const offStop = onStop(() => child.kill('SIGTERM'));
  // (a client that never starts, e.g. no server: killed, and its exit status says so below)
  const limit = setTimeout(() => child.kill('SIGKILL'), (o.seconds + 30) * 1000);
  const toggles: Toggle[] = [];
  let pausedAt = 0;
  try {
    await testStarted;
    await Promise.race([exit, pause(600)]); // its 400 ms of warm-up are not in the log
    if (!exited) {
      pausedAt = performance.now();
      process.kill(child.pid!, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, pauseMs));
      process.kill(child.pid!, 'SIGCONT');
      await Promise.race([exit, pause(guardMs)]);
    }
    let on = false;
    while (!exited && !stopRequested()) {
      on = !on;
      const start = performance.now();
      if (on) o.hooks.on();
      else o.hooks.off();
      toggles.push({ start, end: performance.now(), on });
      await Promise.race([exit, pause(windowMs)]);
    }
    const code = await exit;
    checkStop();
    if (code !== 0) throw new Error(`sockperf ping-pong exited with ${code ?? 'a signal'}: ${out.slice(-300)}`);
    const rows = parseFullLog(readFileSync(o.logPath, 'utf8'));
    return toggledFigures(windowsOf(rows, clockOffset(rows, pausedAt, pauseMs), toggles, guardMs));
  } finally {
    offStop();
    clearTimeout(limit);
    if (!exited) child.kill('SIGKILL');
    o.hooks.off();
    rmSync(o.logPath, { force: true });
  }
}
