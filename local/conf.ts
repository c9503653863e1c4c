/**
 * A complete conf/ folder for a local testbed: every host as a server reached over its own
 * sshd with the testbed's key and known_hosts, the local Redis (on the testbed bridge) and
 * MariaDB, time sync probed from the root namespace over the hosts' outer veths. Each host
 * installs into its own directory, since the namespaces share one file system. Secrets go into
 * 0600 files beside the YAML, referenced by *_file.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { installDirOf, type Testbed } from './testbed.js';
import type { MariaDbInfo, RedisInfo } from './servers.js';
import { keyToHex, newKey } from '../protocol/timesync.js';
import type { AnalysisInfo } from '../conf/schema.js';

export interface TestbedConfOptions {
  ports: number[];
  /** Bytes between samples. */
  size?: number;
  /** Seconds after which a flow without a sample gets one (0: off). */
  interval?: number;
  /** MySQL database (default: the MariaDB info's). */
  database?: string;
  timeSync?: boolean;
  timeInterval?: number;
  /** analysis_info.yaml values (default: the analyzer's defaults). */
  analysis?: Partial<AnalysisInfo>;
}

export function writeTestbedConf(dir: string, tb: Testbed, redis: RedisInfo, db: MariaDbInfo, o: TestbedConfOptions): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const put = (name: string, v: unknown) => writeFileSync(join(dir, name), typeof v === 'string' ? v : stringify(v), { mode: 0o600 });
  put('connect_info.yaml', {
    known_hosts: tb.knownHostsPath,
    defaults: { username: 'root', key_file: tb.sshKeyPath },
    servers: tb.hosts.map((h, i) => ({
      hostname: `${tb.id}-${h.name}`,
      address: h.address,
      port: h.sshPort,
      metadata_key: i + 1,
      eth: [h.iface],
      install_dir: installDirOf(tb, h.name),
    })),
  });
  put('sampling_info.yaml', { size: o.size ?? 8192, interval: o.interval ?? 1, ports: o.ports, filter_retrans: 1, histogram_interval: 1 });
  put('redis_info.yaml', { address: tb.managerAddress, port: redis.port, password_file: 'redis.password' });
  put('redis.password', redis.password + '\n');
  put('database_info.yaml', { host: db.host, port: db.port, user: db.user, passwd_file: 'db.password', db: o.database ?? db.database });
  put('db.password', db.password + '\n');
  // the manager's probes leave through the hosts' veths (at most 64 listed: a larger testbed without time sync names its bridge)
  const eth = [...tb.hosts.map((h) => h.outerIface), ...(tb.router ? [`v${tb.id}ra`] : [])];
  put('management_server_info.yaml', { address: tb.managerAddress, hostname: 'manager', eth: eth.length <= 64 || o.timeSync ? eth : tb.bridges });
  if (o.analysis) put('analysis_info.yaml', o.analysis);
  if (o.timeSync) {
    put('ping_info.yaml', { port: 5005, eth: tb.hosts[0]!.iface, key_file: 'ping.key' });
    put('ping.key', keyToHex(newKey()) + '\n');
    put('time_sync.yaml', { time_interval: o.timeInterval ?? 5, probes: 200 });
  }
  return dir;
}
