/**
 * The host-jitter modules an observer runs (function_info.yaml jitter), and their publishing:
 * the modules' figures and the outliers since the last snapshot go in one entry of the capped
 * host stream. Outliers wait in a bounded queue while Redis is away (beyond, counted as
 * drops.host_events); a module the kernel cannot run is said and left out, the observer goes on.
 */
import { HostSession } from '../host/session.js';
import type { HostSnapshot } from '../host/session.js';
import { eventRow, statRows } from '../host/wire.js';
import { HOST_FORMAT, HOST_STREAM, type HostBatch, type HostEventRow, type HostModuleName } from '../protocol/host.js';
import { toFields } from '../protocol/redis.js';
import { HOST_JITTER } from './limits.js';
import type { RecordPublisher } from './publisher.js';

export class HostJitter {
  private readonly session?: HostSession;
  /** Outliers not yet sent. */
  private events: HostEventRow[] = [];
  /** Outliers beyond HOST_JITTER.eventsKept while Redis was away. */
  dropped = 0;

  constructor(
    private readonly node: string,
    modules: HostModuleName[],
    private readonly publisher: RecordPublisher,
    log: { warn(o: object, msg: string): void; error(o: object, msg: string): void },
  ) {
    try {
      this.session = HostSession.open({
        modules, keepRecent: HOST_JITTER.keepRecent, drainMs: HOST_JITTER.drainMs,
        onEvent: (e) => {
          if (this.events.length < HOST_JITTER.eventsKept) this.events.push(eventRow(e));
          else this.dropped++;
        },
      });
      for (const u of this.session.unavailable) log.warn({ node, module: u.module, reason: u.reason }, 'a host module is not available here');
    } catch (e) {
      log.error({ node, err: (e as Error).message }, 'no host-jitter module could run');
    }
  }

  /** The modules' figures now (for the metrics endpoint); undefined when none runs. */
  snapshot(): HostSnapshot | undefined {
    return this.session?.snapshot();
  }

  /** The figures and the outliers since the last time, in one capped-stream entry; the outliers wait until they are sent. */
  async publish(): Promise<void> {
    const h = this.session;
    if (!h) return;
    const events = this.events.slice(0, HOST_JITTER.eventsKept);
    const fields = toFields({
      node: this.node, at: Date.now(), monoNs: process.hrtime.bigint().toString(), since: h.startedAtMs, format: HOST_FORMAT,
      stats: JSON.stringify(statRows(h.snapshot())), events: JSON.stringify(events),
    } satisfies HostBatch);
    // the figures are cumulative (a lost snapshot loses nothing)
    if (await this.publisher.sendCapped(HOST_STREAM, HOST_JITTER.streamEntries, fields)) this.events.splice(0, events.length);
  }

  close(): void {
    this.session?.close();
  }
}
