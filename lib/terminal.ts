/**
 * Text for a terminal, made safe: process names (comm), server names and other text that
 * someone else chose reach the operator's terminal, where an escape sequence could retitle the
 * window, hide lines or fake output. Every control character but newline and tab, DEL, the C1
 * controls and the bidirectional overrides become visible escapes (\x1b, \u202e).
 */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function forTerminal(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}
