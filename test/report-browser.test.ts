/**
 * report.html in a real headless Chromium (Debian's, driven by playwright-core; nothing is
 * downloaded): made from analyzed synthetic traffic by the project's own graph writer, opened
 * from disk with every network request recorded, each graph checked for an SVG with marks and
 * axis labels, and a screenshot saved under .work/test-output/.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { chromium } from 'playwright-core';
import { startMariaDb, stopMariaDb, mariadbRunning } from '../local/servers.js';
import { openPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { writeSynthetic } from '../local/synthetic.js';
import { analyze } from '../analyzer/analyze.js';
import { loadReport, loadSeries } from '../analyzer/report.js';
import { writeGraphs, READING } from '../graph/write.js';
import { workDir } from '../lib/paths.js';

const CHROMIUM = '/usr/bin/chromium';
let pool: Pool;
let startedDb = false;

before(async () => {
  startedDb = !mariadbRunning();
  const db = await startMariaDb();
  const admin = openPool({ ...db, database: 'latscope' });
  await admin.query('DROP DATABASE IF EXISTS latscope_test_browser');
  await admin.query('CREATE DATABASE latscope_test_browser');
  await admin.end();
  pool = openPool({ ...db, database: 'latscope_test_browser' });
  await migrate(pool);
});
after(async () => {
  await pool?.end();
  if (startedDb) await stopMariaDb();
});

test('report.html in headless Chromium: every graph drawn with marks and axis labels, no network request, a screenshot', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is missing: bash scripts/setup.sh installs Debian's chromium` }, async () => {
  await writeSynthetic(pool, { servers: 4, flowsPerPair: 2, samples: 6000, startNs: 7_000_000_000_000n, spanNs: 60e9, retransRate: 0.01, seed: 5, slowLink: { from: 0, to: 2, extraNs: 3e6, share: 0.05 } });
  await analyze(pool, { windowNs: 10e9, graceMs: 0, spikeFactor: 10, filterRetrans: true, sampleSize: 65536 });
  // kernel histograms: 16 panels (4 servers x 4 ports), three snapshots each; syn3's port 5003 is
  // the slow one (4 ms bucket), the others sit at 1 us; 12 panels are shown
  const snaps: unknown[][] = [];
  for (let sid = 1; sid <= 4; sid++)
    for (let port = 5000; port <= 5003; port++)
      for (const [i, at] of [1700000000, 1700000010, 1700000020].entries()) {
        const slow = sid === 3 && port === 5003;
        snaps.push([sid, at, port, 'rx', 'dev', 'ip', slow ? 22 : 10, 100 * (i + 1)], [sid, at, port, 'rx', 'dev', 'ip', slow ? 18 : 12, 5 * i]);
      }
  await pool.query('INSERT INTO layer_histograms (server_id, taken_at, port, dir, from_layer, to_layer, bucket, count) VALUES ' + snaps.map(() => '(?, FROM_UNIXTIME(?), ?, ?, ?, ?, ?, ?)').join(', '), snaps.flat());
  const report = await loadReport(pool);
  const out = workDir('test-output', 'report');
  const { html, files } = await writeGraphs(report, await loadSeries(pool, report), out, { records: 12000, dropped: 0 });
  // every graph written (the probe mesh's only with mesh rounds: none here)
  const written = files.map((f) => basename(f, '.svg'));
  assert.deepEqual(written, Object.keys(READING).filter((n) => !n.startsWith('mesh-')));

  // the browser in New York: axes that followed the machine's zone would not show the UTC times
  const browser = await chromium.launch({ executablePath: CHROMIUM, env: { ...process.env, TZ: 'America/New_York' }, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`file://${html}`);
    await page.waitForLoadState('load');
    assert.deepEqual(requests.filter((u) => !u.startsWith('file://')), [], 'the page asks the network for nothing');
    for (const name of written) {
      const figure = page.locator(`figure#${name}`);
      assert.equal(await figure.count(), 1, `${name}: in the page`);
      const box = await figure.locator('svg').first().boundingBox();
      assert.ok(box && box.width > 100 && box.height > 50, `${name}: drawn (${JSON.stringify(box)})`);
      const marks = await figure.locator('svg .role-mark path, svg .role-mark rect, svg .role-mark line').count();
      assert.ok(marks > 0, `${name}: ${marks} marks`);
      assert.ok((await figure.locator('svg .role-mark title').count()) > 0, `${name}: hover titles on its marks`);
      assert.doesNotMatch(await figure.innerHTML(), /0\.000000%/, `${name}: percentages as people write them`);
      const axisTitles = await figure.locator('svg .role-axis-title text').allTextContents();
      assert.ok(axisTitles.length >= 1 && axisTitles.some((t) => t.length > 2), `${name}: axis titles ${JSON.stringify(axisTitles)}`);
    }
    assert.match(await page.locator('table').first().innerText(), /syn1\s*→\s*syn3[\s\S]*wire/, 'the worst pair and its tail holder');
    assert.equal(await page.evaluate(() => new Date(0).getTimezoneOffset()), 300, 'the page runs in New York time');
    // time axes are UTC and say so: the heatmap's snapshots are at 22:13:20-22:13:40 UTC (17:13 in New York)
    const heat = page.locator('figure#kernel-heatmap svg');
    const heatText = (await heat.locator('text').allTextContents()).join(' | ');
    assert.match(heatText, /snapshot time \(UTC\)/);
    assert.match(heatText, /22:13:[234]0/, `UTC tick labels: ${heatText.slice(0, 400)}`);
    assert.doesNotMatch(heatText, /17:13:[234]0/, 'no local-time labels');
    assert.match((await page.locator('figure#one-way-over-time svg text').allTextContents()).join(' '), /time \(UTC, manager clock\)/);
    // the slowest panel first, and what was left out said
    const panels = heatText.split(' | ').filter((t) => /^syn\d · \d+ /.test(t));
    assert.equal(panels.length, 12, `12 panels: ${panels.join(', ')}`);
    assert.match(panels[0]!, /^syn3 · 5003 /, `the slowed receiver's panel first: ${panels.join(', ')}`);
    assert.match(heatText, /the 12 slowest of 16 panels \(by p99 bucket\), left out: /);
    const shot = join(out, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 50_000, `a screenshot at ${shot}`);
    console.log(`screenshot: ${shot}`);
  } finally {
    await browser.close();
  }
});
