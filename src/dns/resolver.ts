/**
 * The one resolver: the DNS server answers from it and the proxy's guarded dialer resolves
 * through it, so the address an agent learned from sluice is the address sluice dials (pinned
 * dialing), and both see the same cache. Local names first (localhost, hosts file), then the
 * cache, then upstreams, with identical queries in flight shared.
 */
import type { RecordType } from "dns-packet";
import { OperationalError } from "../core/errors.ts";
import type { Resolver } from "../core/types.ts";
import type { DnsSettings } from "../policy/policy.ts";
import { agedRecords, createDnsCache } from "./cache.ts";
import type { HostsTable } from "./hosts.ts";
import type { UpstreamClient } from "./upstream.ts";
import { RCODE, type Answer } from "./wire.ts";

export interface DnsAnswer {
  readonly rcode: number;
  readonly answers: Answer[];
  readonly authorities: Answer[];
  /** Where it came from, for records and metrics. */
  readonly source: "local" | "cache" | "upstream";
}

export interface DnsStats {
  queries: number;
  cacheHits: number;
  upstreamQueries: number;
  upstreamFailures: number;
  /** Sum of upstream round trips in ms (with upstreamQueries: the mean). */
  upstreamMs: number;
}

export interface DnsResolver extends Resolver {
  query(name: string, type: RecordType): Promise<DnsAnswer>;
  stats(): Readonly<DnsStats>;
  /** Drops cached answers (after a reload that changes upstreams or TTL settings). */
  clear(): void;
  close(): void;
}

/** RFC 8305 section 3 recommends 50 ms. */
const RESOLUTION_DELAY_MS = 50;

/** RFC 1034 section 3.6.2 allows chains; real ones are short. Longer is a loop or an attack. */
const MAX_CNAME_CHAIN = 8;

export function createDnsResolver(deps: {
  settings: () => DnsSettings;
  upstream: UpstreamClient;
  hosts: () => HostsTable;
  now: () => number;
}): DnsResolver {
  const cache = createDnsCache(() => deps.settings().cacheSize);
  const inflight = new Map<string, Promise<DnsAnswer>>();
  const stats: DnsStats = { queries: 0, cacheHits: 0, upstreamQueries: 0, upstreamFailures: 0, upstreamMs: 0 };

  function local(name: string, type: RecordType): DnsAnswer | null {
    const entry = deps.hosts().lookup(name);
    if (!entry) return null;
    const list = type === "A" ? entry.v4 : type === "AAAA" ? entry.v6 : [];
    const answers: Answer[] = list.map((data) => ({ name, type: type as "A" | "AAAA", ttl: 0, class: "IN", data }));
    return { rcode: RCODE.NOERROR, answers, authorities: [], source: "local" };
  }

  async function ask(name: string, type: RecordType, key: string): Promise<DnsAnswer> {
    const s = deps.settings();
    const started = deps.now();
    stats.upstreamQueries++;
    let r;
    try {
      r = await deps.upstream.exchange(name, type, s.upstreams, { timeoutMs: s.timeoutMs, attempts: s.attempts });
    } catch (err) {
      stats.upstreamFailures++;
      throw err;
    } finally {
      stats.upstreamMs += deps.now() - started;
    }
    const answer: DnsAnswer = { rcode: r.rcode, answers: r.answers, authorities: r.authorities, source: "upstream" };
    const ttlMs = cacheTtl(answer, s);
    if (ttlMs > 0) {
      const now = deps.now();
      cache.set(key, { rcode: r.rcode, answers: r.answers, authorities: r.authorities, storedAt: now, expiresAt: now + ttlMs });
    }
    return answer;
  }

  async function query(rawName: string, type: RecordType): Promise<DnsAnswer> {
    stats.queries++;
    const name = rawName.toLowerCase().replace(/\.$/, "");
    const fromHosts = type === "A" || type === "AAAA" ? local(name, type) : null;
    if (fromHosts) return fromHosts;
    const key = `${name}|${type}`;
    const now = deps.now();
    const hit = cache.get(key, now);
    if (hit) {
      stats.cacheHits++;
      return { rcode: hit.rcode, answers: agedRecords(hit.answers, hit.storedAt, now), authorities: agedRecords(hit.authorities, hit.storedAt, now), source: "cache" };
    }
    let p = inflight.get(key);
    if (!p) {
      p = ask(name, type, key).finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    return p;
  }

  /** A and AAAA addresses for a host, following CNAMEs (within the answer, then by asking). */
  async function resolve(host: string): Promise<string[]> {
    const settle = (p: Promise<string[]>) => p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e }));
    const v4p = settle(addresses(host, "A"));
    const v6p = deps.settings().ipv6 ? settle(addresses(host, "AAAA")) : null;
    const v4 = await v4p;
    // RFC 8305 section 3: with IPv4 answers in hand, wait only a short Resolution Delay for
    // IPv6, so a slow or silent AAAA does not hold up the request.
    const v6 = v6p === null ? null : v4.ok && v4.v.length > 0 ? await Promise.race([v6p, Bun.sleep(RESOLUTION_DELAY_MS).then(() => null)]) : await v6p;
    const out = [...(v4.ok ? v4.v : []), ...(v6?.ok ? v6.v : [])];
    if (out.length > 0) return out;
    if (!v4.ok) throw v4.e;
    if (v6 && !v6.ok) throw v6.e;
    throw new OperationalError("dns_failure", `${host} has no addresses`, "dns.no-answer");
  }

  async function addresses(host: string, type: RecordType): Promise<string[]> {
    let name = host.toLowerCase().replace(/\.$/, "");
    for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
      const a = await query(name, type);
      if (a.rcode === RCODE.NXDOMAIN) throw new OperationalError("dns_failure", `${host} does not exist (NXDOMAIN)`, "dns.nxdomain");
      if (a.rcode !== RCODE.NOERROR) throw new OperationalError("dns_failure", `cannot resolve ${host}: upstream answered rcode ${a.rcode}`, "dns.upstream-failed");
      const chain = followChain(name, a.answers);
      if (chain.addresses.length > 0 || chain.target === name) return chain.addresses;
      name = chain.target;
    }
    throw new OperationalError("dns_failure", `${host}: CNAME chain longer than ${MAX_CNAME_CHAIN}`, "dns.cname-loop");
  }

  return {
    query,
    resolve,
    stats: () => stats,
    clear: () => cache.clear(),
    close: () => deps.upstream.close(),
  };
}

/** Follows CNAMEs from `name` inside one answer; returns the addresses at the end, and the end. */
export function followChain(name: string, answers: Answer[]): { target: string; addresses: string[] } {
  let target = name;
  for (let i = 0; i < MAX_CNAME_CHAIN; i++) {
    const next = answers.find((r) => r.type === "CNAME" && r.name.toLowerCase() === target);
    if (!next || next.type !== "CNAME") break;
    target = next.data.toLowerCase().replace(/\.$/, "");
  }
  const addresses: string[] = [];
  for (const r of answers) {
    if ((r.type === "A" || r.type === "AAAA") && r.name.toLowerCase() === target) addresses.push(r.data as string);
  }
  return { target, addresses };
}

/** How long to cache an answer: the smallest TTL, clamped; negative answers per RFC 2308. */
export function cacheTtl(a: Pick<DnsAnswer, "rcode" | "answers" | "authorities">, s: Pick<DnsSettings, "minTtlMs" | "maxTtlMs" | "negativeTtlMs">): number {
  const clamp = (ms: number) => Math.min(s.maxTtlMs, Math.max(s.minTtlMs, ms));
  if (a.rcode === RCODE.NOERROR && a.answers.length > 0) {
    let min = Infinity;
    for (const r of a.answers) {
      const ttl = "ttl" in r ? r.ttl : undefined;
      if (typeof ttl === "number") min = Math.min(min, ttl);
    }
    return min === Infinity ? 0 : clamp(min * 1000);
  }
  if (a.rcode === RCODE.NXDOMAIN || a.rcode === RCODE.NOERROR) {
    // RFC 2308 section 5: the negative TTL is min(SOA TTL, SOA MINIMUM); without an SOA, do not cache.
    const soa = a.authorities.find((r) => r.type === "SOA");
    if (!soa || soa.type !== "SOA") return 0;
    const ttl = Math.min(soa.ttl ?? 0, soa.data.minimum ?? 0);
    return Math.min(s.negativeTtlMs, clamp(ttl * 1000));
  }
  return 0;
}
