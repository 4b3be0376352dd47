/**
 * Distinct subdomains per base domain over a sliding window, in bounded memory: the state behind
 * `dns.exfil-subdomain-budget`. Slow exfiltration keeps every name unremarkable (short labels, a
 * few bytes each) and shows only as many different names under one zone, because every new name
 * is one more message to the attacker's authoritative server (a repeated name is answered from
 * caches and carries nothing new).
 *
 * Memory: at most `maxDomains` base domains (least recently queried evicted first), each with at
 * most `limit + 1` remembered subdomains, stored as 53-bit hashes (a secret-bearing name is never
 * kept) with the time each was last seen. Knowing `limit + 1` distinct names is enough to decide
 * "more than `limit`", so nothing more is kept. Time is passed in (scan/ never reads the clock).
 */

export interface SubdomainBudget {
  /**
   * Records that `subdomainHash` was queried under `base` at `nowMs`; returns how many distinct
   * subdomains of `base` were seen within the window ending at `nowMs`, capped at `limit + 1`.
   */
  record(base: string, subdomainHash: number, nowMs: number): number;
  /** Number of base domains currently tracked (for tests and metrics). */
  readonly size: number;
}

interface Window {
  readonly hashes: Float64Array;
  readonly seen: Float64Array;
  count: number;
}

export function createSubdomainBudget(limit: number, windowMs: number, maxDomains: number): SubdomainBudget {
  const capacity = limit + 1;
  const domains = new Map<string, Window>();

  function windowFor(base: string): Window {
    const existing = domains.get(base);
    if (existing !== undefined) {
      // Map keeps insertion order: re-inserting makes the first key the least recently used.
      domains.delete(base);
      domains.set(base, existing);
      return existing;
    }
    if (domains.size >= maxDomains) {
      const oldest = domains.keys().next();
      if (oldest.done !== true) domains.delete(oldest.value);
    }
    const created: Window = { hashes: new Float64Array(capacity), seen: new Float64Array(capacity), count: 0 };
    domains.set(base, created);
    return created;
  }

  return {
    record(base, subdomainHash, nowMs) {
      const w = windowFor(base);
      const horizon = nowMs - windowMs;
      let found = -1;
      let kept = 0;
      // Drop expired entries (compacting in place) and look for this subdomain in one pass; at
      // most limit + 1 entries, so a scan is cheaper than any index.
      for (let i = 0; i < w.count; i++) {
        if (w.seen[i]! <= horizon) continue;
        if (kept !== i) {
          w.hashes[kept] = w.hashes[i]!;
          w.seen[kept] = w.seen[i]!;
        }
        if (w.hashes[kept] === subdomainHash) found = kept;
        kept++;
      }
      w.count = kept;
      if (found >= 0) {
        w.seen[found] = nowMs;
        return w.count;
      }
      if (w.count === capacity) {
        // Full: forget the entry seen longest ago. The count stays at capacity, which is all the
        // caller needs to know ("over the limit").
        let oldest = 0;
        for (let i = 1; i < w.count; i++) if (w.seen[i]! < w.seen[oldest]!) oldest = i;
        w.hashes[oldest] = subdomainHash;
        w.seen[oldest] = nowMs;
        return w.count;
      }
      w.hashes[w.count] = subdomainHash;
      w.seen[w.count] = nowMs;
      w.count++;
      return w.count;
    },
    get size() {
      return domains.size;
    },
  };
}

/**
 * cyrb53 over `text[start, end)`: a 53-bit hash, exact in a double. Wider than 32 bits on purpose:
 * the names are chosen by whoever wants to slip under the budget, and making a fresh name collide
 * with one already counted must cost far more than the exfiltration it would hide. Not
 * cryptographic; a collision only makes two names count as one. `seed` (a 32-bit integer, the
 * query type's key) makes the same name under another query type a different entry.
 */
export function hashRange(text: string, start: number, end: number, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * Query type mnemonics (RFC 1035 §3.2.2, RFC 3596, RFC 9460 and the IANA registry), as dns-packet
 * and presentation format spell them, to their numbers: `TXT`, `TYPE16`, `16` and dns-packet's
 * `UNKNOWN_16` are one type.
 */
const QTYPE_NUMBERS: Readonly<Record<string, number>> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, NULL: 10, PTR: 12, HINFO: 13, MX: 15, TXT: 16, RP: 17, AFSDB: 18, SIG: 24, KEY: 25, AAAA: 28,
  LOC: 29, SRV: 33, NAPTR: 35, KX: 36, CERT: 37, DNAME: 39, OPT: 41, APL: 42, DS: 43, SSHFP: 44, IPSECKEY: 45, RRSIG: 46,
  NSEC: 47, DNSKEY: 48, DHCID: 49, NSEC3: 50, NSEC3PARAM: 51, TLSA: 52, SMIMEA: 53, HIP: 55, CDS: 59, CDNSKEY: 60,
  OPENPGPKEY: 61, SVCB: 64, HTTPS: 65, SPF: 99, TKEY: 249, TSIG: 250, IXFR: 251, AXFR: 252, ANY: 255, URI: 256, CAA: 257,
  TA: 32768, DLV: 32769,
};

/** The number of a query type given as a mnemonic, `TYPEn` (RFC 3597 §5), dns-packet's `UNKNOWN_n` or digits; -1 when it is none of these. */
export function queryTypeNumber(qtype: string): number {
  const t = qtype.trim().toUpperCase();
  const known = QTYPE_NUMBERS[t];
  if (known !== undefined) return known;
  const digits = /^(?:TYPE|UNKNOWN_)?(\d{1,5})$/.exec(t);
  if (digits !== null) {
    const n = Number(digits[1]);
    if (n <= 0xffff) return n;
  }
  return -1;
}

/** Query types that a stub sends together for one host name: A and AAAA (RFC 8305), and SVCB/HTTPS beside them (RFC 9460 §9). */
const ADDRESS_TYPES = new Set([1, 28, 64, 65]);

/**
 * The budget's key for a query type, the seed of `hashRange`: 0 for no type and for the address
 * lookups a client makes for every host it connects to (counting A, AAAA and HTTPS of one name
 * three times would spend a browser's budget three times as fast, while the choice among them
 * carries under 2 bits), the type's number for every other type, so that one name asked under
 * many types (65,536 of them, 16 bits a query) spends the budget like as many names.
 */
export function queryTypeKey(qtype: string | undefined): number {
  if (qtype === undefined) return 0;
  const n = queryTypeNumber(qtype);
  if (n >= 0) return ADDRESS_TYPES.has(n) ? 0 : n;
  // A mnemonic this table lacks: keep it apart from every numbered type.
  const t = qtype.trim().toUpperCase();
  return 0x10000 + (hashRange(t, 0, t.length) % 0xffff);
}
