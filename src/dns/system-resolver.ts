/**
 * Resolver backed by the system's getaddrinfo, with a short positive cache and in-flight
 * de-duplication so a busy proxy does not call getaddrinfo per request. The DNS issue replaces
 * this with sluice's own resolver (TTL-honouring cache, rebinding guard).
 */
import { lookup } from "node:dns/promises";
import { OperationalError } from "../core/errors.ts";
import type { Resolver } from "../core/types.ts";

export function createSystemResolver(opts: { cacheMs?: number; maxEntries?: number; now?: () => number } = {}): Resolver {
  const cacheMs = opts.cacheMs ?? 5_000;
  const maxEntries = opts.maxEntries ?? 4096;
  const now = opts.now ?? (() => performance.now());
  const cache = new Map<string, { addrs: string[]; until: number }>();
  const inflight = new Map<string, Promise<string[]>>();
  return {
    resolve(host) {
      const hit = cache.get(host);
      if (hit && hit.until > now()) return Promise.resolve(hit.addrs);
      const pending = inflight.get(host);
      if (pending) return pending;
      const p = lookup(host, { all: true, order: "verbatim" })
        .then((rows) => {
          const addrs = rows.map((r) => r.address);
          if (addrs.length === 0) throw new OperationalError("dns_failure", `${host}: no addresses`, "dns.no-answer");
          if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
          cache.set(host, { addrs, until: now() + cacheMs });
          return addrs;
        })
        .catch((err: unknown) => {
          if (err instanceof OperationalError) throw err;
          const code = (err as NodeJS.ErrnoException).code ?? "error";
          throw new OperationalError("dns_failure", `cannot resolve ${host}: ${code}`, "dns.resolve-failed");
        })
        .finally(() => inflight.delete(host));
      inflight.set(host, p);
      return p;
    },
  };
}
