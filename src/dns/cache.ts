/**
 * The answer cache: TTLs honoured and clamped, negative answers cached (RFC 2308), bounded
 * size with the oldest entry evicted first. Time is passed in.
 */
import type { Answer } from "./wire.ts";

export interface CachedAnswer {
  readonly rcode: number;
  readonly answers: Answer[];
  readonly authorities: Answer[];
  readonly storedAt: number;
  readonly expiresAt: number;
}

export interface DnsCache {
  get(key: string, now: number): CachedAnswer | null;
  set(key: string, value: CachedAnswer): void;
  clear(): void;
  readonly size: number;
}

export function createDnsCache(maxEntries: () => number): DnsCache {
  const map = new Map<string, CachedAnswer>();
  return {
    get(key, now) {
      const hit = map.get(key);
      if (!hit) return null;
      if (hit.expiresAt <= now) {
        map.delete(key);
        return null;
      }
      return hit;
    },
    set(key, value) {
      const max = maxEntries();
      if (max <= 0) return;
      map.delete(key);
      while (map.size >= max) map.delete(map.keys().next().value as string);
      map.set(key, value);
    },
    clear: () => map.clear(),
    get size() {
      return map.size;
    },
  };
}

/** Records with their TTLs lowered by the time spent in the cache (RFC 1035 section 7.3). */
export function agedRecords(records: Answer[], storedAt: number, now: number): Answer[] {
  const elapsed = Math.floor((now - storedAt) / 1000);
  if (elapsed <= 0) return records;
  return records.map((r) => ("ttl" in r && typeof r.ttl === "number" ? { ...r, ttl: Math.max(0, r.ttl - elapsed) } : r));
}
