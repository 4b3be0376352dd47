/**
 * Idle keep-alive upstream connections, by `host|port`. A connection in the pool was dialled to
 * an address the policy allowed at the time; the pool is cleared on reload so a changed policy
 * never rides on an old connection. Expiry is swept periodically (`sweep`) rather than with a
 * timer per connection: timers per request cost more than the proxying itself.
 */
export interface UpstreamPool<T> {
  take(key: string): T | null;
  put(key: string, conn: T): void;
  remove(key: string, conn: T): void;
  /** Closes connections idle for longer than the idle timeout. */
  sweep(): void;
  clear(): void;
  size(): number;
}

interface Idle<T> {
  conn: T;
  since: number;
}

export function createUpstreamPool<T>(opts: {
  maxPerKey: () => number;
  idleTimeoutMs: () => number;
  close: (conn: T) => void;
  now: () => number;
}): UpstreamPool<T> {
  const idle = new Map<string, Idle<T>[]>();
  let count = 0;

  const drop = (key: string, list: Idle<T>[], i: number): Idle<T> => {
    const [entry] = list.splice(i, 1);
    count--;
    if (list.length === 0) idle.delete(key);
    return entry!;
  };

  return {
    take(key) {
      const list = idle.get(key);
      if (!list) return null;
      const limit = opts.now() - opts.idleTimeoutMs();
      while (list.length > 0) {
        const entry = drop(key, list, list.length - 1);
        if (entry.since >= limit) return entry.conn;
        opts.close(entry.conn);
      }
      return null;
    },
    put(key, conn) {
      let list = idle.get(key);
      if (!list) idle.set(key, (list = []));
      if (list.length >= opts.maxPerKey()) {
        opts.close(conn);
        return;
      }
      list.push({ conn, since: opts.now() });
      count++;
    },
    remove(key, conn) {
      const list = idle.get(key);
      if (!list) return;
      const i = list.findIndex((e) => e.conn === conn);
      if (i >= 0) drop(key, list, i);
    },
    sweep() {
      const limit = opts.now() - opts.idleTimeoutMs();
      for (const [key, list] of idle) {
        // Oldest first: entries are pushed in time order.
        while (list.length > 0 && list[0]!.since < limit) opts.close(drop(key, list, 0).conn);
      }
    },
    clear() {
      for (const [key, list] of idle) while (list.length > 0) opts.close(drop(key, list, 0).conn);
    },
    size: () => count,
  };
}
