/**
 * The last N audit records, kept in memory for `GET /v1/decisions`. A fixed ring, so a busy agent
 * costs a bounded amount of memory and `record` never allocates beyond the slot write.
 */
import type { AuditRecord } from "../core/types.ts";

export interface RecentDecisions {
  /** Keeps a record, dropping the oldest when full. Closure-bound, so it is an AuditSink as is. */
  record(record: AuditRecord): void;
  /** Up to `limit` records, newest first. */
  list(limit: number): AuditRecord[];
  readonly capacity: number;
}

export function createRecentDecisions(capacity = 1000): RecentDecisions {
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    throw new RangeError(`recent decisions capacity must be a positive integer, got ${capacity}`);
  }
  const slots: (AuditRecord | undefined)[] = new Array(capacity);
  // Index of the next write; also the oldest record once the ring has wrapped.
  let next = 0;
  let size = 0;

  function record(r: AuditRecord): void {
    slots[next] = r;
    next = (next + 1) % capacity;
    if (size < capacity) size++;
  }

  function list(limit: number): AuditRecord[] {
    const n = Math.min(size, Math.max(0, Math.floor(Number.isFinite(limit) ? limit : 0)));
    const out: AuditRecord[] = new Array(n);
    for (let i = 0; i < n; i++) {
      // Walk backwards from the newest slot, wrapping around the start.
      out[i] = slots[(next - 1 - i + capacity) % capacity] as AuditRecord;
    }
    return out;
  }

  return { record, list, capacity };
}
