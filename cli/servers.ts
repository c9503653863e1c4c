/** `latscope servers up|down|status`: the local Redis and MariaDB, as latscope's own processes. */
import { Command } from 'commander';
import { startRedis, stopRedis, startMariaDb, stopMariaDb, redisRunning, mariadbRunning, stopRedisCluster, redisClusterRunning, stopRedisTls, redisTlsRunning } from '../local/servers.js';

export function serversCommand(): Command {
  const cmd = new Command('servers').description('start, stop and inspect the local Redis and MariaDB (data and generated passwords in the work directory)');
  cmd
    .command('up')
    .description('start both, wait until they answer')
    .option('--redis-bind <addr...>', 'extra addresses for Redis to listen on (e.g. the testbed bridge)', [])
    .action(async (o: { redisBind: string[] }) => {
      const r = await startRedis(o.redisBind);
      const m = await startMariaDb();
      console.log(`redis   ${r.host}:${r.port} (password in the work directory: secrets/redis.password)`);
      console.log(`mariadb ${m.host}:${m.port} user ${m.user} database ${m.database} (password: secrets/mariadb.password)`);
    });
  cmd
    .command('down')
    .description('stop both')
    .action(async () => {
      console.log(`redis ${(await stopRedis()) ? 'stopped' : 'was not running'}; mariadb ${(await stopMariaDb()) ? 'stopped' : 'was not running'}`);
      // the tests' Redis Cluster, when one runs
      if (redisClusterRunning()) console.log(`redis cluster ${(await stopRedisCluster()) ? 'stopped' : 'was not running'}`);
      if (redisTlsRunning()) console.log(`redis (tls) ${(await stopRedisTls()) ? 'stopped' : 'was not running'}`);
    });
  cmd
    .command('status')
    .description('are they running')
    .action(() => {
      console.log(`redis ${redisRunning() ? 'running' : 'stopped'}; mariadb ${mariadbRunning() ? 'running' : 'stopped'}`);
      if (!redisRunning() || !mariadbRunning()) process.exitCode = 3;
    });
  return cmd;
}
