/**
 * The example Kubernetes DaemonSet parses and has what an observer needs to run on a node: the
 * host's PID and network namespaces, privileges for BPF, the BPF, tracing and cgroup mounts, the
 * conf and the secret it reads, and a command line the observer accepts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { projectRoot } from '../../lib/paths.js';
import { observerCommand } from '../../cli/observer.js';
import { redisInfo, samplingInfo } from '../../conf/schema.js';
import { parse as parseYaml } from 'yaml';

test('deploy/kubernetes/observer-daemonset.yaml: a privileged host-namespace DaemonSet with the BPF mounts and a valid observer command', () => {
  const docs = parseAllDocuments(readFileSync(join(projectRoot, 'deploy', 'kubernetes', 'observer-daemonset.yaml'), 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors, [], 'valid YAML');
  const objs = docs.map((d) => d.toJS()) as any[];
  const ds = objs.find((o) => o.kind === 'DaemonSet');
  assert.equal(ds.apiVersion, 'apps/v1');
  assert.deepEqual(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels, 'the selector matches the pods');
  const pod = ds.spec.template.spec;
  assert.equal(pod.hostPID, true);
  assert.equal(pod.hostNetwork, true);
  const c = pod.containers[0];
  assert.equal(c.securityContext.privileged, true);
  const mounts = new Map<string, string>(c.volumeMounts.map((m: any) => [m.mountPath, m.name]));
  for (const path of ['/sys/fs/bpf', '/sys/kernel/tracing', '/sys/kernel/debug', '/sys/fs/cgroup', '/etc/latscope', '/run/netns'])
    assert.ok(mounts.has(path), `mounts ${path}`);
  const volumes = new Map<string, any>(pod.volumes.map((v: any) => [v.name, v]));
  for (const [path, name] of mounts) assert.ok(volumes.has(name), `volume ${name} for ${path}`);
  for (const path of ['/sys/fs/bpf', '/sys/kernel/tracing', '/sys/fs/cgroup']) assert.equal(volumes.get(mounts.get(path)!).hostPath.path, path, `${path} is the host's`);

  // the command line is one the observer accepts, and the conf it points at validates
  assert.deepEqual(c.command.slice(0, 2), ['node', '--max-old-space-size=192']);
  const cmd = observerCommand().exitOverride();
  cmd.action(() => {});
  cmd.parse(c.args.map((a: string) => a.replace('$(NODE_NAME)', 'node1')), { from: 'user' });
  assert.equal(cmd.opts().conf, '/etc/latscope');
  assert.ok(cmd.opts().allNetns);
  assert.match(cmd.opts().jitter, /^(sched|irq|memory|syscall|block)(,(sched|irq|memory|syscall|block))*$/);
  const cm = objs.find((o) => o.kind === 'ConfigMap');
  samplingInfo.parse(parseYaml(cm.data['sampling_info.yaml']));
  redisInfo.parse(parseYaml(cm.data['redis_info.yaml']));
  const secret = objs.find((o) => o.kind === 'Secret');
  assert.ok(secret.stringData['redis.password']);
  assert.equal(volumes.get('secret').secret.secretName, secret.metadata.name);
});
