/**
 * Kernel baseline checks before profiling: settings that make latency worse whatever the
 * application does. Each is pass, warn or info (cannot tell here) with the value found and the
 * fix. Read from sysfs and procfs only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseCpuList } from './probe.js';

export interface BaselineCheck {
  check: 'cpu_governor' | 'transparent_hugepages' | 'irqbalance' | 'isolcpus' | 'nohz_full' | 'rcu_nocbs' | 'timer_migration';
  status: 'pass' | 'warn' | 'info';
  /** What was found. */
  value: string;
  /** What to do about a warning. */
  fix?: string;
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** The bracketed choice of a sysfs selector ("always [madvise] never" → madvise). */
const chosen = (s: string | undefined) => /\[(\w+)\]/.exec(s ?? '')?.[1] ?? s;

const list = (cpus: number[]) => compactCpus(cpus);

/** 0,1,2,3,8 → "0-3,8". */
export function compactCpus(cpus: number[]): string {
  const s = [...new Set(cpus)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(j > i ? `${s[i]}-${s[j]}` : `${s[i]}`);
    i = j + 1;
  }
  return out.join(',');
}

function running(comm: string): boolean {
  try {
    return readdirSync('/proc').some((d) => /^\d+$/.test(d) && read(`/proc/${d}/comm`) === comm);
  } catch {
    return false;
  }
}

/** The checks for a host whose `cpus` should be isolated (none: every CPU is shared). */
export function baselineChecks(cpus: number[]): BaselineCheck[] {
  const out: BaselineCheck[] = [];
  const governors = new Set<string>();
  try {
    for (const d of readdirSync('/sys/devices/system/cpu').filter((x) => /^cpu\d+$/.test(x))) {
      const g = read(`/sys/devices/system/cpu/${d}/cpufreq/scaling_governor`);
      if (g) governors.add(g);
    }
  } catch {
    /* no CPU directory: leave it out */
  }
  if (!governors.size) out.push({ check: 'cpu_governor', status: 'info', value: 'no cpufreq (a virtual machine, or a fixed frequency)' });
  else if ([...governors].every((g) => g === 'performance')) out.push({ check: 'cpu_governor', status: 'pass', value: 'performance' });
  else out.push({ check: 'cpu_governor', status: 'warn', value: [...governors].join(', '), fix: 'cpupower frequency-set -g performance' });

  const thp = chosen(read('/sys/kernel/mm/transparent_hugepage/enabled'));
  if (thp === undefined) out.push({ check: 'transparent_hugepages', status: 'info', value: 'not available' });
  else if (thp === 'always') out.push({ check: 'transparent_hugepages', status: 'warn', value: thp, fix: 'echo madvise > /sys/kernel/mm/transparent_hugepage/enabled' });
  else out.push({ check: 'transparent_hugepages', status: 'pass', value: thp });

  const irqbalance = running('irqbalance');
  out.push(
    irqbalance && cpus.length
      ? { check: 'irqbalance', status: 'warn', value: 'running', fix: `systemctl stop irqbalance (or set IRQBALANCE_BANNED_CPULIST=${list(cpus)})` }
      : { check: 'irqbalance', status: 'pass', value: irqbalance ? 'running (no CPU to isolate)' : 'not running' },
  );

  const cmdline = read('/proc/cmdline') ?? '';
  const param = (name: string) => new RegExp(`(?:^|\\s)${name}=([^\\s]+)`).exec(cmdline)?.[1];
  const cpusOf = (text: string | undefined) => {
    try {
      return text ? parseCpuList(text.replace(/^(?:[a-z_]+,)+/, '')) : [];
    } catch {
      return [];
    }
  };
  const isolated = cpusOf(read('/sys/devices/system/cpu/isolated') || param('isolcpus'));
  const nohz = cpusOf(read('/sys/devices/system/cpu/nohz_full') || param('nohz_full'));
  const rcu = cpusOf(param('rcu_nocbs'));
  for (const [check, have, arg] of [['isolcpus', isolated, 'isolcpus'], ['nohz_full', nohz, 'nohz_full'], ['rcu_nocbs', rcu, 'rcu_nocbs']] as const) {
    const missing = cpus.filter((c) => !have.includes(c));
    if (!cpus.length) out.push({ check, status: 'info', value: have.length ? list(have) : 'none (no CPU to isolate was given)' });
    else if (!missing.length) out.push({ check, status: 'pass', value: list(have) });
    else out.push({ check, status: 'warn', value: have.length ? list(have) : 'none', fix: `add ${arg}=${list(cpus)} to the kernel command line (GRUB_CMDLINE_LINUX) and reboot` });
  }

  const tm = read('/proc/sys/kernel/timer_migration');
  if (tm === undefined) out.push({ check: 'timer_migration', status: 'info', value: 'not available' });
  else if (tm === '1' && cpus.length) out.push({ check: 'timer_migration', status: 'warn', value: '1', fix: 'sysctl -w kernel.timer_migration=0' });
  else out.push({ check: 'timer_migration', status: 'pass', value: tm });
  return out;
}
