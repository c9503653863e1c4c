/**
 * Debian's Prometheus as latscope's own process on loopback, for the test that scrapes a
 * manager: a config with one scrape job (every second) and latscope's alert rules, its data in
 * the work directory (fresh each start), stopped by stopPrometheus.
 */
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { livePid, waitFor } from './exec.js';
import { spawnDaemon, stopByPidFile } from './servers.js';
import { workDir } from '../lib/paths.js';

export const PROMETHEUS_PORT = Number(process.env.LATSCOPE_PROMETHEUS_PORT ?? 9099);

export interface PrometheusInfo {
  url: string;
}

export async function startPrometheus(o: { targets: string[]; ruleFiles: string[] }): Promise<PrometheusInfo> {
  const dir = workDir('prometheus');
  await stopPrometheus();
  rmSync(join(dir, 'data'), { recursive: true, force: true });
  mkdirSync(join(dir, 'data'), { recursive: true });
  const conf = join(dir, 'prometheus.yml');
  writeFileSync(conf, stringify({
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: o.ruleFiles,
    scrape_configs: [{ job_name: 'latscope', static_configs: [{ targets: o.targets }] }],
  }));
  const url = `http://127.0.0.1:${PROMETHEUS_PORT}`;
  spawnDaemon(['prometheus', `--config.file=${conf}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT}`], join(dir, 'prometheus.log'), join(dir, 'prometheus.pid'));
  await waitFor(`prometheus on ${url}`, 30_000, async () => ((await fetch(`${url}/-/ready`).catch(() => undefined))?.ok ? true : undefined));
  return { url };
}

export async function stopPrometheus(): Promise<boolean> {
  return stopByPidFile(join(workDir('prometheus'), 'prometheus.pid'), 'prometheus');
}

export const prometheusRunning = (): boolean => livePid(join(workDir('prometheus'), 'prometheus.pid')) !== undefined;
