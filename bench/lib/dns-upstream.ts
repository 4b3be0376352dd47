/**
 * The fake upstream for the DNS benchmark (test/helpers/fake-dns.ts on 127.0.0.1): a fixed set
 * of names for the cached runs, and a wildcard answering any name under `u.<domain>` with TTL 0
 * for the uncached runs, whose query files use each name once.
 */
import { startFakeDns, type FakeDns } from "../../test/helpers/fake-dns.ts";
import { writeQueryFile } from "./dns-perf.ts";

export const BENCH_DOMAIN = "bench.test";
/** RFC 2544 benchmarking range: never a real host. Only ever DNS answer data here, never dialled. */
export const BENCH_CIDR = "198.18.0.0/15";
export const CACHED_TTL = 300;
export const UNCACHED_ADDRESS = "198.18.100.1";

export const cachedName = (i: number): string => `n${i}.${BENCH_DOMAIN}`;
export const cachedAddress = (i: number): string => `198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
export const uncachedName = (prefix: string, i: number): string => `${prefix}${i}.u.${BENCH_DOMAIN}`;

export async function startBenchUpstream(nameCount: number): Promise<FakeDns> {
  // log: false: only the total is counted (the uncached runs send millions of distinct names).
  const dns = await startFakeDns({ log: false });
  for (let i = 0; i < nameCount; i++) dns.set(cachedName(i), { answers: [{ type: "A", data: cachedAddress(i), ttl: CACHED_TTL }] });
  dns.set(`*.u.${BENCH_DOMAIN}`, { answers: [{ type: "A", data: UNCACHED_ADDRESS, ttl: 0 }] });
  return dns;
}

export function writeCachedQueries(path: string, nameCount: number): Promise<number> {
  return writeQueryFile(path, Array.from({ length: nameCount }, (_, i) => cachedName(i)));
}

export function writeUncachedQueries(path: string, prefix: string, count: number): Promise<number> {
  function* names() {
    for (let i = 0; i < count; i++) yield uncachedName(prefix, i);
  }
  return writeQueryFile(path, names());
}
