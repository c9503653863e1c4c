/**
 * Tearing a deployment down: running managers are told to exit, every job scheduler is removed,
 * and every server's observer is stopped over SSH; returns what each server still had left.
 */
import type { Deployment, Server } from '../conf/deployment.js';
import { CONTROL_CHANNEL } from '../protocol/redis.js';
import { connectRedis, redisConnection } from './redis.js';
import { connectServer, RemoteServer } from './remote.js';
import { removeSchedules } from './queues.js';
import { ServerStates } from './state.js';
import { removeObserverUsers } from './observer-users.js';

export async function stopDeployment(d: Deployment, o: { acceptNewHostKeys: boolean; log: (l: string) => void }): Promise<Map<string, { ok: boolean; detail: string }>> {
  const redis = await connectRedis(d).catch((e: Error) => {
    o.log(`warning: ${e.message}: stopping the servers without telling running managers`);
    return undefined;
  });
  if (redis) {
    await redis.publish(CONTROL_CHANNEL, 'stop');
    await removeSchedules(redisConnection(d)).catch((e: Error) => o.log(`warning: removing the job schedulers: ${e.message}`));
  }
  const states = new ServerStates(redis, o.log);
  const results = new Map<string, { ok: boolean; detail: string }>();
  await Promise.all(
    d.servers.map(async (s: Server) => {
      let remote: RemoteServer | undefined;
      try {
        await states.set(s.hostname, 'stopping');
        remote = new RemoteServer(await connectServer(d, s, o.acceptNewHostKeys), s);
        const left = await remote.stop(d.ping?.eth);
        if (left.length) throw new Error(`still there after stopping: ${left.join('; ')}`);
        await states.set(s.hostname, 'stopped', 'no observer process, no XDP attachment left');
        results.set(s.hostname, { ok: true, detail: 'stopped' });
      } catch (e) {
        const msg = (e as Error).message.replace(new RegExp(`^${s.hostname}: `), '');
        await states.set(s.hostname, 'failed', `stop: ${msg}`);
        results.set(s.hostname, { ok: false, detail: msg });
      } finally {
        remote?.close();
      }
    }),
  );
  // the observers are gone: so are their Redis users (where every server stopped; a server still
  // running keeps its user until a later stop reaches it)
  if (redis && d.redis.observer_users && [...results.values()].every((r) => r.ok))
    await removeObserverUsers(redis, d).catch((e: Error) => o.log(`warning: removing the observers' Redis users: ${e.message}`));
  redis?.disconnect();
  return results;
}
