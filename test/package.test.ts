/**
 * The npm package as a user gets it: packed from this checkout, installed into an empty folder
 * (dependencies from npm's cache or registry; the BPF addon built by the package's own install
 * step from the local node's headers), then `latscope --help` and `import { HostMonitor } from
 * 'latscope'` run from there, outside the checkout, so its node_modules cannot hide a missing
 * file or package. The observer bundle its manager would ship is built there too, and runs
 * unpacked on its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';

test('the package packs only what runs, installs into an empty folder with its addon built, and runs: latscope --help, import { HostMonitor }', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'latscope-pack-'));
  try {
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--pack-destination', dir, '--json', '--loglevel=error'], { cwd: projectRoot, encoding: 'utf8' })) as { filename: string; files: { path: string }[] }[];
    const files = packed!.files.map((f) => f.path);
    for (const want of ['dist/cli.js', 'dist/index.js', 'dist/index.d.ts', 'dist/bpf/latency.bpf.o', 'dist/bpf/responder.bpf.o', 'dist/observer-bundle.json', 'native/src/addon.cc', 'native/binding.gyp', 'native/install.sh', 'conf/examples/redis_info.yaml', 'docs/schema/redis_info.schema.json'])
      assert.ok(files.includes(want), `the package holds ${want}`);
    assert.deepEqual(files.filter((f) => /^(test|bench|dist\/test|dist\/bench|\.ci|scripts)\//.test(f) || /\.ts$/.test(f) && !f.endsWith('.d.ts')), [], 'no tests, benchmarks, CI or sources');
    const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8'));
    assert.deepEqual(pkg.os, ['linux']);

    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    const install = spawnSync('npm', ['install', join(dir, packed!.filename), '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, encoding: 'utf8', timeout: 200_000 });
    assert.equal(install.status, 0, `npm install: ${install.stderr}`);
    assert.ok(existsSync(join(app, 'node_modules', 'latscope', 'native', 'build', 'Release', 'latscope_bpf.node')), 'the install step built the addon');

    const help = spawnSync(join(app, 'node_modules', '.bin', 'latscope'), ['--help'], { cwd: app, encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: latscope/);
    assert.match(help.stdout, /Exit codes:/);

    // the library: HostMonitor from the main entry and from latscope/host, without the manager's
    // libraries (MySQL, BullMQ, Redis, SSH) loaded
    const lib = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { HostMonitor } from 'latscope';
      import * as host from 'latscope/host';
      import { createRequire } from 'node:module';
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((p) => /node_modules\\/(mysql2|bullmq|ioredis|ssh2)\\//.test(p));
      console.log(JSON.stringify({ monitor: typeof HostMonitor, same: host.HostMonitor === HostMonitor, loaded }));`], { cwd: app, encoding: 'utf8' });
    assert.equal(lib.status, 0, lib.stderr);
    assert.deepEqual(JSON.parse(lib.stdout), { monitor: 'function', same: true, loaded: [] });

    // the manager of an installed latscope builds the observer bundle from the packages npm
    // hoisted beside it, and that bundle runs on its own, unpacked into an empty folder
    const made = spawnSync(process.execPath, ['--input-type=module', '-e', `
      const { buildBundle } = await import(${JSON.stringify(join(app, 'node_modules', 'latscope', 'dist', 'manager', 'bundle.js'))});
      console.log(JSON.stringify(buildBundle()));`], { cwd: app, encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const bundle = JSON.parse(made.stdout) as { path: string };
    const server = join(dir, 'server');
    mkdirSync(server);
    execFileSync('tar', ['-xzf', bundle.path, '-C', server]);
    for (const want of ['node_modules/ioredis/package.json', 'dist/bpf/latency.bpf.o', 'native/build/Release/latscope_bpf.node'])
      assert.ok(existsSync(join(server, want)), `the bundle holds ${want}`);
    const observer = spawnSync(process.execPath, [join(server, 'dist', 'observer-cli.js'), 'observer', '--help'], { cwd: server, encoding: 'utf8' });
    assert.equal(observer.status, 0, observer.stderr);
    assert.match(observer.stdout, /Usage: .*observer/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
