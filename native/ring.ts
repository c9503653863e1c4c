/** BPF ring buffers read into reusable batches, on a timer, within a time budget. */
import { call } from './errors.js';
import type { NativeObject } from './binding.js';

/**
 * Reads a BPF ring buffer into a reusable batch Buffer. Producers should submit with
 * BPF_RB_NO_WAKEUP; call drain() on a timer. Each record in the batch is laid out as
 * [u32 length][u32 reserved][data padded to 8 bytes].
 */
export class RingReader {
  constructor(
    private readonly obj: NativeObject,
    private readonly id: number,
  ) {}

  /** Moves up to batch.length bytes of records into batch; returns [records, bytes used]. */
  drainInto(batch: Buffer, maxRecords?: number): [number, number] {
    return maxRecords === undefined ? this.obj.ringDrain(this.id, batch) : this.obj.ringDrain(this.id, batch, maxRecords);
  }

  /** Bytes waiting in the ring. */
  pending(): number {
    return this.obj.ringPending(this.id);
  }

  /**
   * Drains on a timer: every intervalMs, hands batches to onBatch until the ring is empty or
   * budgetMs of work is done. The budget bounds the CPU the reader takes (budgetMs/intervalMs of
   * one core) and keeps the event loop free for timers; what is left waits in the ring, and when
   * the ring is full the kernel drops and counts. The batch Buffer is reused: decode it inside
   * onBatch. No wake-up per record is ever needed.
   */
  poll(intervalMs: number, onBatch: (batch: Buffer, records: number, bytes: number) => void, o: { batchBytes?: number; budgetMs?: number; recordsPerBatch?: number } = {}): RingPoll {
    const batch = Buffer.alloc(o.batchBytes ?? 1 << 20);
    const budgetMs = o.budgetMs ?? Infinity;
    // small batches under a budget: one batch's work must not overrun it by much
    const per = o.recordsPerBatch ?? (budgetMs === Infinity ? undefined : 32);
    const poll: RingPoll = { stop: () => 0, overBudget: 0 };
    const tick = (budget: number): boolean => {
      const start = performance.now();
      for (;;) {
        const [n, used] = this.drainInto(batch, per);
        if (n === 0) return true;
        onBatch(batch, n, used);
        if (performance.now() - start >= budget) return this.pending() === 0;
      }
    };
    const timer = setInterval(() => {
      if (!tick(budgetMs)) poll.overBudget++;
    }, intervalMs);
    let stopped = false;
    poll.stop = (stopBudgetMs = Infinity) => {
      clearInterval(timer);
      if (stopped) return 0;
      stopped = true;
      if (tick(stopBudgetMs)) return 0;
      let discarded = 0; // what the budget did not reach: out of the ring, counted
      for (let n; (n = this.drainInto(batch)[0]) > 0; ) discarded += n;
      return discarded;
    };
    return poll;
  }
}

export interface RingPoll {
  /** Stops the timer and drains what is left within budgetMs; returns the records discarded beyond it. */
  stop(budgetMs?: number): number;
  /** Ticks that ended with records still in the ring (the reader was at its CPU budget). */
  overBudget: number;
}

/** Calls fn(offset, length) for each record of a drained batch. */
export function forEachRecord(batch: Buffer, used: number, fn: (offset: number, length: number) => void): void {
  let o = 0;
  while (o < used) {
    const len = batch.readUInt32LE(o);
    fn(o + 8, len);
    o += 8 + ((len + 7) & ~7);
  }
}
