/**
 * --watch DURATION, shared by `report` and `manager status`: shows the output again every
 * DURATION until Ctrl-C (or SIGTERM), which ends it with exit code 0. With --json, one document
 * per line; as text on a terminal, each output replaces the last (no escape codes in pipes).
 */
export async function watching(everyMs: number | undefined, json: boolean, render: () => Promise<string>): Promise<void> {
  let stop = false;
  const stopWatching = () => (stop = true);
  if (everyMs) process.once('SIGINT', stopWatching).once('SIGTERM', stopWatching);
  try {
    for (;;) {
      const text = await render();
      console.log(everyMs && !json && process.stdout.isTTY ? `\x1b[H\x1b[2J${text}` : text);
      if (!everyMs) return;
      for (const until = Date.now() + everyMs; !stop && Date.now() < until; ) await new Promise((res) => setTimeout(res, Math.min(200, until - Date.now())));
      if (stop) return;
    }
  } finally {
    process.off('SIGINT', stopWatching).off('SIGTERM', stopWatching);
  }
}
