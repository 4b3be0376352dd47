/**
 * The last N audit records, kept in memory for `GET /v1/decisions`. A fixed ring of the records'
 * JSON lines: the file sink serialises each record once anyway, and a retained string costs the
 * garbage collector far less than a retained object graph (measured: ~10% of proxy throughput).
 * Lines are parsed back only when the API asks.
 */
import type { AuditRecord } from "../core/types.ts";

export interface RecentDecisions {
  /** Keeps a serialised record (one JSON object), dropping the oldest when full. */
  push(line: string): void;
  /** Keeps a record. Closure-bound, so it is an AuditSink as is. */
  record(record: AuditRecord): void;
  /** Up to `limit` records, newest first. */
  list(limit: number): AuditRecord[];
  readonly capacity: number;
}

export function createRecentDecisions(capacity = 1000): RecentDecisions {
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    throw new RangeError(`recent decisions capacity must be a positive integer, got ${capacity}`);
  }
  const slots: (string | undefined)[] = new Array(capacity);
  // Index of the next write; also the oldest record once the ring has wrapped.
  let next = 0;
  let size = 0;

  function push(line: string): void {
    slots[next] = line;
    next = (next + 1) % capacity;
    if (size < capacity) size++;
  }

  function list(limit: number): AuditRecord[] {
    const n = Math.min(size, Math.max(0, Math.floor(Number.isFinite(limit) ? limit : 0)));
    const out: AuditRecord[] = new Array(n);
    for (let i = 0; i < n; i++) {
      // Walk backwards from the newest slot, wrapping around the start.
      out[i] = JSON.parse(slots[(next - 1 - i + capacity) % capacity]!) as AuditRecord;
    }
    return out;
  }

  return { push, record: (r) => push(JSON.stringify(r)), list, capacity };
}
