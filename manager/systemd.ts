/**
 * The observer as a systemd service, for servers where systemd is PID 1: systemd restarts it
 * (Restart=always), bounds its memory (MemoryMax) and keeps its log in the journal (bounded by
 * journald). Elsewhere the manager starts `observer-cli.js supervise` instead. Pure text: the
 * unit is checked with `systemd-analyze verify` by the tests.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_INSTALL_DIR } from '../conf/deployment.js';

/** Memory the observer's cgroup may use: its heap bound plus maps, buffers and the addon. */
export const OBSERVER_MEMORY_MAX_MB = 384;

/** One unit per install dir, so two installs on one server do not collide. */
export function unitName(installDir: string): string {
  return installDir === DEFAULT_INSTALL_DIR ? 'latscope-observer.service' : `latscope-observer-${createHash('sha256').update(installDir).digest('hex').slice(0, 8)}.service`;
}

/** An argument quoted for a unit's Exec line (systemd.service(5) "Command lines"). */
const arg = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$')}"`;

export function observerUnit(o: { installDir: string; node: string; observerArgv: string[] }): string {
  const cli = `${o.installDir}/current/dist/observer-cli.js`;
  return [
    '[Unit]',
    `Description=latscope observer (${o.installDir.replace(/%/g, '%%')})`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `WorkingDirectory=${`${o.installDir}/current`.replace(/%/g, '%%')}`, // a path, not a command line: no quotes
    `ExecStart=${[o.node, ...o.observerArgv].map(arg).join(' ')}`,
    // BPF attachments of a process that died are swept, as the supervisor does
    `ExecStopPost=-${[o.node, cli, 'cleanup'].map(arg).join(' ')}`,
    'Restart=always',
    'RestartSec=1',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=20',
    `MemoryMax=${OBSERVER_MEMORY_MAX_MB}M`,
    'LimitMEMLOCK=infinity',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
