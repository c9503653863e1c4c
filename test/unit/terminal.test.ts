/** Text someone else chose (a process name, a server name) cannot drive the operator's terminal. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forTerminal } from '../../lib/terminal.js';

test('control characters, C1 controls and bidi overrides are shown, not obeyed; newlines, tabs and ordinary text stay', () => {
  assert.equal(forTerminal('\x1b]0;owned\x07app'), '\\x1b]0;owned\\x07app');
  assert.equal(forTerminal('a\rb\x9bc\x7f'), 'a\\x0db\\x9bc\\x7f');
  assert.equal(forTerminal('evil\u202egnp.exe'), 'evil\\u202egnp.exe');
  assert.equal(forTerminal('line 1\n\tµs → ok ✓ 東京'), 'line 1\n\tµs → ok ✓ 東京');
});
