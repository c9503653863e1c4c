/** The stream stage's pure parts: stream ids in order, and the raw-row sample (a share, both ends alike). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_COMMIT_STEPS, DEFAULT_MAX_WAITING, DEFAULT_STEP_RECORDS, idAfter, keepRaw } from '../../analyzer/stream/stage.js';
import { analysisInfo } from '../../conf/schema.js';

test('stream ids compare as (milliseconds, sequence), not as text', () => {
  assert.ok(idAfter('10-0', '9-5'));
  assert.ok(idAfter('5-10', '5-9'));
  assert.ok(!idAfter('5-9', '5-9'));
  assert.ok(!idAfter('0-0', '1-0'));
  assert.ok(idAfter('1796245835284-1', '1796245835284-0'));
});

test('the raw sample keeps about its share, the same decision for a key every time, nothing at 0 and everything at 1', () => {
  for (const rate of [0.01, 0.1, 0.5]) {
    let kept = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) if (keepRaw(1234567890123 + (i % 97), (i * 2654435761) >>> 0, rate)) kept++;
    assert.ok(Math.abs(kept / n - rate) < 0.1 * rate + 0.002, `rate ${rate}: kept ${kept / n}`);
  }
  assert.equal(keepRaw(4503599627370495, 77, 0.3), keepRaw(4503599627370495, 77, 0.3));
  assert.equal(keepRaw(1, 2, 0), false);
  assert.equal(keepRaw(1, 2, 1), true);
});

test('analysis_info.yaml step_records, max_waiting and commit_steps default to the stage\'s own defaults, and are passed on as given', () => {
  const d = analysisInfo.parse({});
  assert.equal(d.step_records, DEFAULT_STEP_RECORDS);
  assert.equal(d.max_waiting, DEFAULT_MAX_WAITING);
  assert.equal(d.commit_steps, DEFAULT_COMMIT_STEPS);
  const o = analysisInfo.parse({ engine: 'stream', step_records: 50_000, max_waiting: 1_000_000, commit_steps: 1 });
  assert.deepEqual([o.step_records, o.max_waiting, o.commit_steps], [50_000, 1_000_000, 1]);
});
