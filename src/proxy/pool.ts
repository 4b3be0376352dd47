/**
 * Idle keep-alive upstream connections, by `host|port`. A connection in the pool was dialled to
 * an address the policy allowed at the time; the pool is cleared on reload so a changed policy
 * never rides on an old connection. Expiry is swept periodically (`sweep`) rather than with a
 * timer per connection, and each key keeps two parallel stacks (connections, idle-since times)
 * so taking and returning a connection allocates nothing.
 */
export interface UpstreamPool<T> {
  take(key: string): T | null;
  put(key: string, conn: T): void;
  remove(key: string, conn: T): void;
  /** Closes connections idle for longer than the idle timeout; forgets empty keys. */
  sweep(): void;
  clear(): void;
  size(): number;
}

interface Stack<T> {
  conns: T[];
  since: number[];
}

export function createUpstreamPool<T>(opts: {
  maxPerKey: () => number;
  idleTimeoutMs: () => number;
  close: (conn: T) => void;
  now: () => number;
}): UpstreamPool<T> {
  const idle = new Map<string, Stack<T>>();
  let count = 0;

  return {
    take(key) {
      const s = idle.get(key);
      if (!s) return null;
      const limit = opts.now() - opts.idleTimeoutMs();
      while (s.conns.length > 0) {
        const conn = s.conns.pop()!;
        const since = s.since.pop()!;
        count--;
        if (since >= limit) return conn;
        opts.close(conn);
      }
      return null;
    },
    put(key, conn) {
      let s = idle.get(key);
      if (!s) idle.set(key, (s = { conns: [], since: [] }));
      if (s.conns.length >= opts.maxPerKey()) {
        opts.close(conn);
        return;
      }
      s.conns.push(conn);
      s.since.push(opts.now());
      count++;
    },
    remove(key, conn) {
      const s = idle.get(key);
      if (!s) return;
      const i = s.conns.indexOf(conn);
      if (i < 0) return;
      s.conns.splice(i, 1);
      s.since.splice(i, 1);
      count--;
    },
    sweep() {
      const limit = opts.now() - opts.idleTimeoutMs();
      for (const [key, s] of idle) {
        // Oldest first: entries are pushed in time order.
        let n = 0;
        while (n < s.since.length && s.since[n]! < limit) n++;
        if (n > 0) {
          const old = s.conns.splice(0, n);
          s.since.splice(0, n);
          count -= n;
          for (const conn of old) opts.close(conn);
        }
        if (s.conns.length === 0) idle.delete(key);
      }
    },
    clear() {
      for (const s of idle.values()) {
        for (const conn of s.conns) opts.close(conn);
        count -= s.conns.length;
      }
      idle.clear();
    },
    size: () => count,
  };
}
