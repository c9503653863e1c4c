/** `latscope observer`: run the observer on this server until SIGINT/SIGTERM or --duration. */
import { Command } from 'commander';
import { Observer } from '../observer/observer.js';
import { readFileSync } from 'node:fs';

function hostPort(v: string): { host: string; port: number } {
  const m = /^([^:]+):(\d+)$/.exec(v);
  if (!m) throw new Error(`--redis ${v}: expected HOST:PORT`);
  return { host: m[1]!, port: Number(m[2]) };
}

export function observerCommand(): Command {
  return new Command('observer')
    .description('run the observer on this server: load the probes, publish to Redis; SIGINT/SIGTERM detach everything')
    .requiredOption('--node <name>', "this server's name")
    .requiredOption('--redis <host:port>', 'Redis to publish to')
    .option('--redis-password-stdin', 'read the Redis password from the first line of standard input (keeps it out of ps and logs)', false)
    .option('--redis-password-file <path>', 'read the Redis password from a file')
    .option('--heartbeat-ms <ms>', 'milliseconds between heartbeats', (v) => Number(v), 1000)
    .option('--duration <s>', 'stop after this many seconds (default: run until stopped)', (v) => Number(v))
    .action(async (o: { node: string; redis: string; redisPasswordStdin: boolean; redisPasswordFile?: string; heartbeatMs: number; duration?: number }) => {
      let password: string | undefined;
      if (o.redisPasswordFile) password = readFileSync(o.redisPasswordFile, 'utf8').trim();
      if (o.redisPasswordStdin) password = readFileSync(0, 'utf8').split('\n')[0]!.trim();
      const observer = new Observer({ node: o.node, redis: { ...hostPort(o.redis), password }, heartbeatMs: o.heartbeatMs });
      await observer.start();
      console.log(`observer ${o.node}: running (pid ${process.pid})`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        if (o.duration) setTimeout(resolve, o.duration * 1000);
      });
      await observer.stop();
      console.log(`observer ${o.node}: stopped, probes detached`);
    });
}
