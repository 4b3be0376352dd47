/**
 * A programmable fake upstream DNS server for tests and benchmarks: the only DNS server a test
 * may talk to (ARCHITECTURE.md, "Testing", network rule). It listens on 127.0.0.1, UDP and TCP on
 * the same port, and answers each name the way the test says:
 *
 *   const dns = await startFakeDns();
 *   dns.set("api.example.test", { answers: [{ type: "A", data: "203.0.113.7", ttl: 60 }] });
 *   dns.set("rebind.test", { ttl: 0, sequence: [
 *     { answers: [{ type: "A", data: "203.0.113.9" }] },   // first query: public
 *     { answers: [{ type: "A", data: "127.0.0.1" }] },     // then (and from then on): loopback
 *   ] });
 *   dns.set("gone.test", { rcode: "NXDOMAIN", soa: { minimum: 5 } });
 *   dns.set("broken.test", { rcode: "SERVFAIL" });
 *   dns.set("big.test", { truncate: true, answers: [...] });   // UDP: TC=1, no records; TCP: full
 *   dns.set("dead.test", { silent: true });                    // never answers
 *   dns.set("slow.test", { delayMs: 300, answers: [...] });
 *   dns.set("*.wild.test", { answers: [{ type: "A", data: "203.0.113.1" }] });
 *   dns.set("dual.test", { types: { A: {...}, AAAA: {...}, HTTPS: {...} } });
 *
 * How a query is answered:
 * - The name is looked up lower-cased, without its trailing dot: an exact entry first, then the
 *   closest enclosing `*.parent` wildcard (simplified RFC 4592: an existing intermediate name does
 *   not stop the wildcard). No entry: the `unknown` spec (default NXDOMAIN with an SOA).
 * - Within an entry, `types[QTYPE]` is used when present, else the entry's own fields.
 * - A `sequence` gives one answer per query, in turn, per (query name, query type); the last one
 *   repeats once the sequence is used up (or it starts over with `cycle: true`). Fields set next
 *   to `sequence` are defaults for every step. A UDP query that gets a truncated reply does not
 *   use up a step: the TCP retry gets it.
 * - `answers` are filtered by the query type like an authoritative server does: records of the
 *   query type, plus CNAMEs (so a CNAME chain `a -> b` + `b A` works for A and gives CNAME-only
 *   for AAAA). ANY (255) gets everything; `unfiltered: true` sends the records exactly as given.
 *   A record's owner defaults to the query name (written as a compression pointer to the
 *   question, RFC 1035 4.1.4, in the query's own letter case).
 * - NOERROR with no records left is NODATA; NODATA and NXDOMAIN carry an SOA in the authority
 *   section (RFC 2308 section 3; negative TTL = min(SOA TTL, SOA MINIMUM)) unless `soa: false`.
 *   The SOA's owner defaults to the query name's parent.
 * - The reply echoes the id, the opcode, RD and the question bytes as received; QR=1, AA=1 and
 *   RA=1 unless the spec says otherwise. A query carrying an EDNS OPT (RFC 6891) gets one back
 *   with the same DO bit and the same options (plus an Extended DNS Error, RFC 8914, when the spec
 *   has `ede`); EDNS version > 0 gets BADVERS. An opcode other than QUERY gets NOTIMP.
 * - Over UDP, a reply larger than the client's limit (512 bytes, or the EDNS UDP payload size)
 *   is sent truncated (TC=1, no records), as RFC 1035 4.2.1 / RFC 6891 6.2.5 say; TCP is not limited.
 * - TCP uses the 2-byte length framing of RFC 1035 4.2.2 / RFC 7766 8, any number of queries per
 *   connection, frames split or joined across reads in any way; replies may be out of order
 *   (a delayed one does not hold back the next).
 * - Anything that does not parse as a one-question query (short, QR=1, bad name, counts that run
 *   past the end) is counted in `malformed()` and ignored.
 *
 * Records are checked and encoded when `set()` is called, so a typo in a test fails there.
 * dns-packet has no HTTPS/SVCB codec (5.6): those are encoded here (RFC 9460), and so is a raw
 * record of any numeric type (RFC 3597). `decodeSvcbRdata` reads one back for assertions.
 */
import * as dnsPacket from "dns-packet";
import { isIPv4, isIPv6 } from "node:net";
import type { Socket, TCPSocketListener, udp } from "bun";

const HOST = "127.0.0.1";

export type Transport = "udp" | "tcp";

export type RcodeName = "NOERROR" | "FORMERR" | "SERVFAIL" | "NXDOMAIN" | "NOTIMP" | "REFUSED";

/** RFC 1035 4.1.1, RFC 6891 9 (BADVERS is 16, split between the header and the OPT TTL). */
const RCODES: Readonly<Record<RcodeName, number>> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
const BADVERS = 16;

/** Type names used in `types`, in `queries()` and for filtering; others are "TYPE<n>" (RFC 3597 5). */
const TYPE_NUMBERS: Readonly<Record<string, number>> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33, NAPTR: 35,
  DNAME: 39, OPT: 41, DS: 43, RRSIG: 46, NSEC: 47, DNSKEY: 48, SVCB: 64, HTTPS: 65, AXFR: 252, ANY: 255, CAA: 257,
};
const TYPE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(TYPE_NUMBERS).map(([k, v]) => [v, k]));

export function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `TYPE${type}`;
}

export function typeNumber(name: string): number {
  const upper = name.toUpperCase();
  const known = TYPE_NUMBERS[upper];
  if (known !== undefined) return known;
  const m = /^TYPE(\d{1,5})$/.exec(upper);
  if (m && Number(m[1]) <= 0xffff) return Number(m[1]);
  throw new Error(`fake-dns: unknown record type ${JSON.stringify(name)}`);
}

// ---- spec ---------------------------------------------------------------------------------

/** SOA fields (RFC 1035 3.3.13) plus the record's own TTL and owner (`zone`). */
export interface SoaSpec {
  /** Owner of the SOA record; default: the query name's parent. */
  readonly zone?: string;
  readonly mname?: string;
  readonly rname?: string;
  readonly serial?: number;
  readonly refresh?: number;
  readonly retry?: number;
  readonly expire?: number;
  /** RFC 2308: the negative-caching TTL is min(ttl, minimum). Default 60. */
  readonly minimum?: number;
  /** TTL of the SOA record itself. Default 300. */
  readonly ttl?: number;
}

/** SVCB/HTTPS RDATA (RFC 9460 2.2, 7). Params are written in key order, as 2.2 requires. */
export interface SvcbData {
  readonly priority: number;
  /** "." or "" for the owner itself (RFC 9460 2.5). */
  readonly target: string;
  readonly params?: {
    readonly mandatory?: readonly number[];
    readonly alpn?: readonly string[];
    readonly noDefaultAlpn?: boolean;
    readonly port?: number;
    readonly ipv4hint?: readonly string[];
    readonly ech?: Uint8Array;
    readonly ipv6hint?: readonly string[];
    /** Any other key, value as raw bytes. */
    readonly other?: readonly { readonly key: number; readonly value: Uint8Array }[];
  };
}

interface RecordBase {
  /** Owner name; default: the query name. */
  readonly name?: string;
  /** Default: the step's `ttl`, else the server's `ttl` option (300). */
  readonly ttl?: number;
}

export type RecordSpec = RecordBase &
  (
    | { readonly type: "A" | "AAAA" | "CNAME" | "NS" | "PTR" | "DNAME"; readonly data: string }
    | { readonly type: "TXT"; readonly data: string | readonly string[] }
    | { readonly type: "MX"; readonly data: { readonly preference: number; readonly exchange: string } }
    | { readonly type: "SRV"; readonly data: { readonly priority: number; readonly weight: number; readonly port: number; readonly target: string } }
    | { readonly type: "CAA"; readonly data: { readonly flags?: number; readonly tag: "issue" | "issuewild" | "iodef"; readonly value: string } }
    | { readonly type: "SOA"; readonly data: Omit<SoaSpec, "zone" | "ttl"> }
    | { readonly type: "HTTPS" | "SVCB"; readonly data: SvcbData }
    /** Any type by number, RDATA as raw bytes (RFC 3597). */
    | { readonly type: number; readonly data: Uint8Array }
  );

/** One reply. */
export interface AnswerSpec {
  /** Default NOERROR. */
  readonly rcode?: RcodeName | number;
  readonly answers?: readonly RecordSpec[];
  /** Extra authority records (the negative-answer SOA is added on its own, see `soa`). */
  readonly authorities?: readonly RecordSpec[];
  readonly additionals?: readonly RecordSpec[];
  /** SOA for NXDOMAIN / NODATA replies (merged over the server's default); false: none. */
  readonly soa?: SoaSpec | false;
  /** Send `answers` as given, whatever the query type. */
  readonly unfiltered?: boolean;
  /** UDP: TC=1 and no records; TCP: the full reply. */
  readonly truncate?: boolean;
  /** Never reply (the query is still logged and counted). */
  readonly silent?: boolean;
  /** Reply after this many milliseconds. */
  readonly delayMs?: number;
  /** AA bit (default true) and RA bit (default true). */
  readonly aa?: boolean;
  readonly ra?: boolean;
  /** Default TTL of this reply's records. */
  readonly ttl?: number;
  /** Extended DNS Error option (RFC 8914) added to the OPT, when the query had EDNS. */
  readonly ede?: { readonly code: number; readonly text?: string };
}

export interface EntrySpec extends AnswerSpec {
  /** One reply per query, in turn; the fields above are defaults for each step. */
  readonly sequence?: readonly AnswerSpec[];
  /** Start the sequence over when used up (default: repeat the last step). */
  readonly cycle?: boolean;
}

export interface NameSpec extends EntrySpec {
  /** Per query type ("A", "AAAA", "HTTPS", "TYPE99", ...): used instead of the fields above. */
  readonly types?: Readonly<Record<string, EntrySpec>>;
}

export interface EdnsInfo {
  readonly udpSize: number;
  readonly version: number;
  readonly do: boolean;
  readonly options: readonly { readonly code: number; readonly data: Uint8Array }[];
}

export interface FakeDnsQuery {
  /** Lower-cased, no trailing dot ("" for the root). */
  readonly name: string;
  /** "A", "AAAA", "HTTPS", ..., or "TYPE<n>". */
  readonly type: string;
  readonly transport: Transport;
  readonly id: number;
  /** The name as it was on the wire (letter case kept). */
  readonly wireName: string;
  readonly rd: boolean;
  readonly edns: EdnsInfo | null;
  readonly from: { readonly address: string; readonly port: number };
}

export interface FakeDnsOptions {
  /** Entries to start with (same as calling `set` for each). */
  readonly names?: Readonly<Record<string, NameSpec>>;
  /** Reply for names without an entry. Default: { rcode: "NXDOMAIN" } (with the default SOA). */
  readonly unknown?: NameSpec;
  /** Defaults for negative-answer SOAs. */
  readonly soa?: SoaSpec;
  /** Default record TTL (300). */
  readonly ttl?: number;
  /** UDP payload size advertised in OPT replies (default 1232, the DNS Flag Day 2020 value). */
  readonly udpPayloadSize?: number;
  /** Keep every query for `queries()` / `count(name)` (default true). Off for benchmarks. */
  readonly log?: boolean;
}

export interface FakeDns {
  readonly port: number;
  /** "127.0.0.1:PORT" */
  readonly address: string;
  /** Sets (replaces) the entry for a name or a `*.parent` wildcard; restarts its sequences. */
  set(name: string, spec: NameSpec): void;
  unset(name: string): void;
  /** Every well-formed query received, in order (empty with `log: false`). */
  queries(): FakeDnsQuery[];
  /** Well-formed queries received, for one name (lower-cased) or all. */
  count(name?: string): number;
  /** Packets / TCP frames received that were not a parseable query. */
  malformed(): number;
  /** TCP connections accepted. */
  tcpConnections(): number;
  /** Forgets the query log and counts (not the entries or their sequence positions). */
  resetQueries(): void;
  stop(): Promise<void>;
}

// ---- wire encoding --------------------------------------------------------------------------

const ascii = new TextEncoder();

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u16(n: number): Uint8Array {
  return new Uint8Array([(n >>> 8) & 0xff, n & 0xff]);
}

function u32(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

function checkUint(what: string, n: number, max: number): number {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`fake-dns: ${what} must be an integer 0..${max} (got ${n})`);
  return n;
}

export function normaliseName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith(".") ? n.slice(0, -1) : n;
}

/** Uncompressed wire form of a dotted name (RFC 1035 3.1); labels <= 63 bytes, name <= 255. */
export function encodeName(name: string): Uint8Array {
  const n = name === "." ? "" : name.endsWith(".") ? name.slice(0, -1) : name;
  const parts: Uint8Array[] = [];
  if (n.length > 0) {
    for (const label of n.split(".")) {
      const bytes = ascii.encode(label);
      if (bytes.length === 0 || bytes.length > 63) throw new Error(`fake-dns: bad label ${JSON.stringify(label)} in ${JSON.stringify(name)}`);
      parts.push(new Uint8Array([bytes.length]), bytes);
    }
  }
  parts.push(new Uint8Array([0]));
  const out = concat(parts);
  if (out.length > 255) throw new Error(`fake-dns: name longer than 255 bytes: ${name}`);
  return out;
}

interface RecordCodec {
  encode(data: unknown): Uint8Array;
}
/** dns-packet's per-type RDATA encoders (exported at run time, not in its typings); output starts with RDLENGTH. */
const rdataCodec = (dnsPacket as unknown as { record(type: string): RecordCodec }).record;

/** IPv4 / IPv6 text to bytes, checked here: dns-packet's A / AAAA encoders accept "300.1.2.3". */
function ipBytes(type: "A" | "AAAA", text: string): Uint8Array {
  if (!(type === "A" ? isIPv4(text) : isIPv6(text))) throw new Error(`not an IPv${type === "A" ? 4 : 6} address: ${JSON.stringify(text)}`);
  return rdataCodec(type).encode(text).subarray(2);
}

function svcbRdata(d: SvcbData): Uint8Array {
  const params: { key: number; value: Uint8Array }[] = [];
  const p = d.params ?? {};
  if (p.mandatory) params.push({ key: 0, value: concat(p.mandatory.map((k) => u16(checkUint("mandatory key", k, 0xffff)))) });
  if (p.alpn) {
    params.push({
      key: 1,
      value: concat(
        p.alpn.map((id) => {
          const b = ascii.encode(id);
          checkUint("alpn id length", b.length, 255);
          return concat([new Uint8Array([b.length]), b]);
        }),
      ),
    });
  }
  if (p.noDefaultAlpn) params.push({ key: 2, value: new Uint8Array(0) });
  if (p.port !== undefined) params.push({ key: 3, value: u16(checkUint("port", p.port, 0xffff)) });
  if (p.ipv4hint) params.push({ key: 4, value: concat(p.ipv4hint.map((a) => ipBytes("A", a))) });
  if (p.ech) params.push({ key: 5, value: p.ech });
  if (p.ipv6hint) params.push({ key: 6, value: concat(p.ipv6hint.map((a) => ipBytes("AAAA", a))) });
  for (const o of p.other ?? []) params.push({ key: checkUint("svc param key", o.key, 0xffff), value: o.value });
  params.sort((a, b) => a.key - b.key);
  for (let i = 1; i < params.length; i++) {
    if (params[i]!.key === params[i - 1]!.key) throw new Error(`fake-dns: svc param key ${params[i]!.key} given twice`);
  }
  return concat([
    u16(checkUint("priority", d.priority, 0xffff)),
    encodeName(d.target === "" ? "." : d.target),
    ...params.flatMap((x) => [u16(x.key), u16(checkUint("svc param length", x.value.length, 0xffff)), x.value]),
  ]);
}

/** Reads SVCB/HTTPS RDATA back (for assertions on what a resolver passed on). */
export function decodeSvcbRdata(rdata: Uint8Array): SvcbData {
  const view = new DataView(rdata.buffer, rdata.byteOffset, rdata.byteLength);
  const priority = view.getUint16(0);
  const labels: string[] = [];
  let o = 2;
  for (;;) {
    const len = rdata[o];
    if (len === undefined) throw new Error("svcb: target runs past the end");
    o++;
    if (len === 0) break;
    labels.push(new TextDecoder().decode(rdata.subarray(o, o + len)));
    o += len;
  }
  const out: {
    mandatory?: number[];
    alpn?: string[];
    noDefaultAlpn?: boolean;
    port?: number;
    ipv4hint?: string[];
    ech?: Uint8Array;
    ipv6hint?: string[];
    other?: { key: number; value: Uint8Array }[];
  } = {};
  while (o < rdata.length) {
    const key = view.getUint16(o);
    const len = view.getUint16(o + 2);
    const value = rdata.subarray(o + 4, o + 4 + len);
    if (value.length !== len) throw new Error("svcb: param runs past the end");
    o += 4 + len;
    switch (key) {
      case 0:
        out.mandatory = Array.from({ length: len / 2 }, (_, i) => (value[2 * i]! << 8) | value[2 * i + 1]!);
        break;
      case 1: {
        const ids: string[] = [];
        for (let i = 0; i < value.length; ) {
          const l = value[i]!;
          ids.push(new TextDecoder().decode(value.subarray(i + 1, i + 1 + l)));
          i += 1 + l;
        }
        out.alpn = ids;
        break;
      }
      case 2:
        out.noDefaultAlpn = true;
        break;
      case 3:
        out.port = (value[0]! << 8) | value[1]!;
        break;
      case 4:
        out.ipv4hint = Array.from({ length: len / 4 }, (_, i) => Array.from(value.subarray(4 * i, 4 * i + 4)).join("."));
        break;
      case 5:
        out.ech = value.slice();
        break;
      case 6:
        out.ipv6hint = Array.from({ length: len / 16 }, (_, i) => {
          const g = Array.from({ length: 8 }, (_, j) => ((value[16 * i + 2 * j]! << 8) | value[16 * i + 2 * j + 1]!).toString(16));
          return g.join(":");
        });
        break;
      default:
        (out.other ??= []).push({ key, value: value.slice() });
    }
  }
  return { priority, target: labels.length === 0 ? "." : labels.join("."), params: out };
}

/** RDLENGTH + RDATA of one record. */
function encodeRdata(r: RecordSpec): Uint8Array {
  if (typeof r.type === "number") {
    const data = r.data as Uint8Array;
    return concat([u16(checkUint("rdata length", data.length, 0xffff)), data]);
  }
  switch (r.type) {
    case "HTTPS":
    case "SVCB": {
      const rdata = svcbRdata(r.data);
      return concat([u16(rdata.length), rdata]);
    }
    case "TXT": {
      // dns-packet takes a string or an array of strings, each a <character-string> (<= 255 bytes).
      const strings = typeof r.data === "string" ? [r.data] : [...r.data];
      for (const s of strings) checkUint("TXT string length", ascii.encode(s).length, 255);
      return rdataCodec("TXT").encode(strings);
    }
    case "A":
    case "AAAA": {
      const bytes = ipBytes(r.type, r.data);
      return concat([u16(bytes.length), bytes]);
    }
    case "SOA":
      return rdataCodec("SOA").encode({ mname: "ns.fake.test", rname: "hostmaster.fake.test", serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 60, ...r.data });
    default:
      return rdataCodec(r.type).encode(r.data);
  }
}

interface CompiledRecord {
  readonly type: number;
  /** null: the query name (a pointer to the question). */
  readonly owner: Uint8Array | null;
  /** TYPE, CLASS, TTL, RDLENGTH, RDATA. */
  readonly tail: Uint8Array;
}

function compileRecord(r: RecordSpec, defaultTtl: number): CompiledRecord {
  const type = typeof r.type === "number" ? checkUint("record type", r.type, 0xffff) : typeNumber(r.type);
  const ttl = checkUint("ttl", r.ttl ?? defaultTtl, 0x7fffffff); // RFC 2181 8
  let rdata: Uint8Array;
  try {
    rdata = encodeRdata(r);
  } catch (err) {
    throw new Error(`fake-dns: cannot encode ${typeName(type)} record ${JSON.stringify(r, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v))}: ${String(err)}`);
  }
  return { type, owner: r.name === undefined ? null : encodeName(r.name), tail: concat([u16(type), u16(1), u32(ttl), rdata]) };
}

interface CompiledSoa {
  readonly owner: Uint8Array | null;
  readonly tail: Uint8Array;
}

function compileSoa(s: SoaSpec): CompiledSoa {
  const { zone, ttl, ...data } = s;
  const rec = compileRecord({ type: "SOA", data, ttl: ttl ?? 300 }, 300);
  return { owner: zone === undefined ? null : encodeName(zone), tail: rec.tail };
}

interface CompiledStep {
  readonly rcode: number;
  readonly answers: readonly CompiledRecord[];
  readonly authorities: readonly CompiledRecord[];
  readonly additionals: readonly CompiledRecord[];
  readonly soa: CompiledSoa | null;
  readonly unfiltered: boolean;
  readonly truncate: boolean;
  readonly silent: boolean;
  readonly delayMs: number;
  readonly aa: boolean;
  readonly ra: boolean;
  /** The EDE option (code, length, value), ready to append. */
  readonly ede: Uint8Array | null;
}

interface CompiledEntry {
  readonly steps: readonly CompiledStep[];
  readonly sequence: boolean;
  readonly cycle: boolean;
  /** Next step per "qname|qtype". */
  readonly position: Map<string, number>;
}

interface CompiledName {
  readonly base: CompiledEntry;
  readonly types: ReadonlyMap<number, CompiledEntry>;
}

function compileStep(s: AnswerSpec, defaults: { ttl: number; soa: SoaSpec }): CompiledStep {
  const ttl = s.ttl ?? defaults.ttl;
  const rcode = typeof s.rcode === "number" ? checkUint("rcode", s.rcode, 15) : RCODES[s.rcode ?? "NOERROR"];
  if (rcode === undefined) throw new Error(`fake-dns: unknown rcode ${JSON.stringify(s.rcode)}`);
  let ede: Uint8Array | null = null;
  if (s.ede) {
    // RFC 8914 2: OPTION-CODE 15, INFO-CODE (16 bits), EXTRA-TEXT (UTF-8).
    const text = ascii.encode(s.ede.text ?? "");
    ede = concat([u16(15), u16(2 + text.length), u16(checkUint("ede code", s.ede.code, 0xffff)), text]);
  }
  return {
    rcode,
    answers: (s.answers ?? []).map((r) => compileRecord(r, ttl)),
    authorities: (s.authorities ?? []).map((r) => compileRecord(r, ttl)),
    additionals: (s.additionals ?? []).map((r) => compileRecord(r, ttl)),
    soa: s.soa === false ? null : compileSoa({ ...defaults.soa, ...s.soa }),
    unfiltered: s.unfiltered ?? false,
    truncate: s.truncate ?? false,
    silent: s.silent ?? false,
    delayMs: Math.max(0, s.delayMs ?? 0),
    aa: s.aa ?? true,
    ra: s.ra ?? true,
    ede,
  };
}

function compileEntry(e: EntrySpec, defaults: { ttl: number; soa: SoaSpec }): CompiledEntry {
  const { sequence, cycle, ...base } = e;
  if (sequence !== undefined && sequence.length === 0) throw new Error("fake-dns: empty sequence");
  const steps = sequence ? sequence.map((s) => compileStep({ ...base, ...s }, defaults)) : [compileStep(base, defaults)];
  return { steps, sequence: sequence !== undefined, cycle: cycle ?? false, position: new Map() };
}

function compileName(spec: NameSpec, defaults: { ttl: number; soa: SoaSpec }): CompiledName {
  const { types, ...base } = spec;
  const byType = new Map<number, CompiledEntry>();
  for (const [t, e] of Object.entries(types ?? {})) byType.set(typeNumber(t), compileEntry(e, defaults));
  return { base: compileEntry(base, defaults), types: byType };
}

// ---- query parsing --------------------------------------------------------------------------

interface ParsedQuery {
  readonly id: number;
  readonly flags: number;
  readonly opcode: number;
  /** Question section bytes as received: QNAME, QTYPE, QCLASS. */
  readonly question: Uint8Array;
  /** Offset of the parent name inside the question (for a pointer), or -1 for a root / 1-label name. */
  readonly parentOffset: number;
  readonly name: string;
  readonly wireName: string;
  readonly qtype: number;
  readonly edns: EdnsInfo | null;
  /** The raw EDNS options (echoed back as they came). */
  readonly ednsOptions: Uint8Array;
}

function labelText(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) {
    // Presentation format (RFC 4343 2.1): escape dots, backslashes and non-printables.
    if (b === 0x2e || b === 0x5c) s += `\\${String.fromCharCode(b)}`;
    else if (b > 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += `\\${String(b).padStart(3, "0")}`;
  }
  return s;
}

/** Offset just past a (possibly compressed) name at `o`, or -1 when it is malformed. */
function skipName(buf: Uint8Array, o: number): number {
  for (let hops = 0; hops < 128; hops++) {
    const len = buf[o];
    if (len === undefined) return -1;
    if (len === 0) return o + 1;
    if ((len & 0xc0) === 0xc0) return o + 2 <= buf.length ? o + 2 : -1;
    if (len & 0xc0) return -1;
    o += 1 + len;
  }
  return -1;
}

function parseQuery(buf: Uint8Array): ParsedQuery | null {
  if (buf.length < 12) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const id = view.getUint16(0);
  const flags = view.getUint16(2);
  if (flags & 0x8000) return null; // a response, not a query
  if (view.getUint16(4) !== 1) return null; // RFC 9619: exactly one question
  const ancount = view.getUint16(6);
  const nscount = view.getUint16(8);
  const arcount = view.getUint16(10);

  // QNAME: plain labels only (nothing to point back to before the question).
  let o = 12;
  const labels: string[] = [];
  let parentOffset = -1;
  let nameLen = 0;
  for (;;) {
    const len = buf[o];
    if (len === undefined || len > 63) return null;
    nameLen += len + 1;
    if (nameLen > 255) return null;
    if (len === 0) {
      o++;
      break;
    }
    if (o + 1 + len > buf.length) return null;
    labels.push(labelText(buf.subarray(o + 1, o + 1 + len)));
    o += 1 + len;
    if (labels.length === 1 && buf[o] !== 0) parentOffset = o;
  }
  if (o + 4 > buf.length) return null;
  const qtype = view.getUint16(o);
  const question = buf.slice(12, o + 4);
  o += 4;

  // Skip answer and authority records, look for an OPT among the additionals (RFC 6891 6.1.1).
  let edns: EdnsInfo | null = null;
  let ednsOptions: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < ancount + nscount + arcount; i++) {
    const nameStart = o;
    o = skipName(buf, o);
    if (o < 0 || o + 10 > buf.length) return null;
    const type = view.getUint16(o);
    const rdlen = view.getUint16(o + 8);
    if (o + 10 + rdlen > buf.length) return null;
    if (i >= ancount + nscount && type === 41) {
      if (edns !== null || buf[nameStart] !== 0) return null; // one OPT, owned by the root
      const ttl = view.getUint32(o + 4);
      const rdata = buf.subarray(o + 10, o + 10 + rdlen);
      const options: { code: number; data: Uint8Array }[] = [];
      for (let p = 0; p < rdata.length; ) {
        if (p + 4 > rdata.length) return null;
        const code = (rdata[p]! << 8) | rdata[p + 1]!;
        const olen = (rdata[p + 2]! << 8) | rdata[p + 3]!;
        if (p + 4 + olen > rdata.length) return null;
        options.push({ code, data: rdata.slice(p + 4, p + 4 + olen) });
        p += 4 + olen;
      }
      edns = { udpSize: view.getUint16(o + 2), version: (ttl >>> 16) & 0xff, do: (ttl & 0x8000) !== 0, options };
      ednsOptions = rdata.slice();
    }
    o += 10 + rdlen;
  }

  const wireName = labels.join(".");
  return { id, flags, opcode: (flags >>> 11) & 0xf, question, parentOffset, name: wireName.toLowerCase(), wireName, qtype, edns, ednsOptions };
}

// ---- replies --------------------------------------------------------------------------------

/** Compression pointer to the question name (RFC 1035 4.1.4: it starts at offset 12). */
const QNAME_POINTER = new Uint8Array([0xc0, 0x0c]);
const ROOT_NAME = new Uint8Array([0]);

function pointerTo(offset: number): Uint8Array {
  return new Uint8Array([0xc0 | (offset >>> 8), offset & 0xff]);
}

interface Reply {
  readonly rcode: number;
  readonly aa: boolean;
  readonly ra: boolean;
  readonly tc: boolean;
  readonly answers: readonly CompiledRecord[];
  readonly authorities: readonly (CompiledRecord | CompiledSoa)[];
  readonly additionals: readonly CompiledRecord[];
  readonly ede: Uint8Array | null;
}

function encodeReply(q: ParsedQuery, r: Reply, udpPayloadSize: number): Uint8Array {
  const rcode = r.rcode;
  const extended = rcode >>> 4;
  // QR, the query's opcode and RD, AA, TC, RA, low 4 bits of the rcode (RFC 1035 4.1.1).
  const flags = 0x8000 | (q.opcode << 11) | (r.aa ? 0x0400 : 0) | (r.tc ? 0x0200 : 0) | (q.flags & 0x0100) | (r.ra ? 0x0080 : 0) | (rcode & 0xf);
  const opt: Uint8Array[] = [];
  if (q.edns) {
    const rdata = r.ede ? concat([q.ednsOptions, r.ede]) : q.ednsOptions;
    // OPT: root owner, TYPE 41, CLASS = our UDP payload size, TTL = ext-rcode | version 0 | DO.
    opt.push(ROOT_NAME, u16(41), u16(udpPayloadSize), u32((extended << 24) | (q.edns.do ? 0x8000 : 0)), u16(rdata.length), rdata);
  }
  const owner = (rec: { owner: Uint8Array | null }, soa: boolean): Uint8Array => {
    if (rec.owner) return rec.owner;
    if (!soa) return QNAME_POINTER;
    return q.parentOffset > 0 ? pointerTo(q.parentOffset) : ROOT_NAME;
  };
  const parts: Uint8Array[] = [
    u16(q.id),
    u16(flags),
    u16(1),
    u16(r.answers.length),
    u16(r.authorities.length),
    u16(r.additionals.length + (q.edns ? 1 : 0)),
    q.question,
  ];
  for (const rec of r.answers) parts.push(owner(rec, false), rec.tail);
  for (const rec of r.authorities) parts.push(owner(rec, !("type" in rec)), rec.tail);
  for (const rec of r.additionals) parts.push(owner(rec, false), rec.tail);
  parts.push(...opt);
  return concat(parts);
}

function buildReply(q: ParsedQuery, step: CompiledStep, transport: Transport): Reply {
  const base = { rcode: step.rcode, aa: step.aa, ra: step.ra, ede: step.ede };
  if (step.truncate && transport === "udp") return { ...base, tc: true, answers: [], authorities: [], additionals: [] };
  const answers = step.unfiltered || q.qtype === 255 ? step.answers : step.answers.filter((r) => r.type === q.qtype || r.type === 5);
  const negative = step.rcode === 3 || (step.rcode === 0 && answers.length === 0);
  const authorities: (CompiledRecord | CompiledSoa)[] = [...step.authorities];
  if (negative && step.soa) authorities.push(step.soa);
  return { ...base, tc: false, answers, authorities, additionals: step.additionals };
}

const plainReply = (rcode: number): Reply => ({ rcode, aa: false, ra: true, tc: false, answers: [], authorities: [], additionals: [], ede: null });

// ---- server ---------------------------------------------------------------------------------

interface TcpState {
  buf: Uint8Array;
  /** Bytes the kernel did not take yet (written on drain). */
  pending: Uint8Array[];
  closed: boolean;
}

export async function startFakeDns(opts: FakeDnsOptions = {}): Promise<FakeDns> {
  const defaults = { ttl: opts.ttl ?? 300, soa: { ...opts.soa } };
  const udpPayloadSize = opts.udpPayloadSize ?? 1232;
  const logQueries = opts.log ?? true;
  const names = new Map<string, CompiledName>();
  const unknown = compileName(opts.unknown ?? { rcode: "NXDOMAIN" }, defaults);
  const log: FakeDnsQuery[] = [];
  const perName = new Map<string, number>();
  let total = 0;
  let malformedCount = 0;
  let tcpAccepted = 0;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let stopped = false;

  for (const [name, spec] of Object.entries(opts.names ?? {})) names.set(normaliseName(name), compileName(spec, defaults));

  function lookup(name: string): CompiledName {
    const exact = names.get(name);
    if (exact) return exact;
    for (let i = name.indexOf("."); i >= 0; i = name.indexOf(".", i + 1)) {
      const wild = names.get(`*${name.slice(i)}`);
      if (wild) return wild;
    }
    return names.get("*") ?? unknown;
  }

  function pickStep(q: ParsedQuery, transport: Transport): CompiledStep {
    const named = lookup(q.name);
    const entry = named.types.get(q.qtype) ?? named.base;
    if (!entry.sequence) return entry.steps[0]!;
    const key = `${q.name}|${q.qtype}`;
    const at = entry.position.get(key) ?? 0;
    const n = entry.steps.length;
    const step = entry.steps[entry.cycle ? at % n : Math.min(at, n - 1)]!;
    if (!(step.truncate && transport === "udp")) entry.position.set(key, at + 1);
    return step;
  }

  /** Handles one message; `send` is called with the reply (now or after a delay), or never. */
  function handle(msg: Uint8Array, transport: Transport, from: { address: string; port: number }, send: (reply: Uint8Array) => void): void {
    const q = parseQuery(msg);
    if (!q) {
      malformedCount++;
      return;
    }
    total++;
    if (logQueries) {
      perName.set(q.name, (perName.get(q.name) ?? 0) + 1);
      log.push({ name: q.name, type: typeName(q.qtype), transport, id: q.id, wireName: q.wireName, rd: (q.flags & 0x0100) !== 0, edns: q.edns, from });
    }
    if (q.opcode !== 0) return send(encodeReply(q, plainReply(RCODES.NOTIMP), udpPayloadSize));
    if (q.edns && q.edns.version > 0) return send(encodeReply(q, plainReply(BADVERS), udpPayloadSize)); // RFC 6891 6.1.3

    const step = pickStep(q, transport);
    if (step.silent) return;
    let reply = encodeReply(q, buildReply(q, step, transport), udpPayloadSize);
    if (transport === "udp") {
      // RFC 6891 6.2.5: the requestor's payload size, never less than 512.
      const limit = q.edns ? Math.max(512, q.edns.udpSize) : 512;
      if (reply.length > limit) reply = encodeReply(q, { ...buildReply(q, step, transport), tc: true, answers: [], authorities: [], additionals: [] }, udpPayloadSize);
    }
    if (step.delayMs > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        if (!stopped) send(reply);
      }, step.delayMs);
      timers.add(t);
    } else send(reply);
  }

  // UDP and TCP on one port: bind UDP on port 0, then TCP on the same number; retry on a clash.
  let udpSock: udp.Socket<"uint8array"> | null = null;
  let tcp: TCPSocketListener<TcpState> | null = null;
  const udpBacklog: { data: Uint8Array; port: number; address: string }[] = [];
  /**
   * False when the kernel would block (the reply waits for `drain`). A client that has gone away
   * makes send throw (ECONNREFUSED from an earlier ICMP port-unreachable): that reply is dropped,
   * as a real server's would be.
   */
  const udpSend = (s: udp.Socket<"uint8array">, data: Uint8Array, port: number, address: string): boolean => {
    try {
      return s.send(data, port, address);
    } catch {
      return true;
    }
  };
  const flushUdp = (s: udp.Socket<"uint8array">) => {
    while (udpBacklog.length > 0) {
      const p = udpBacklog[0]!;
      if (!udpSend(s, p.data, p.port, p.address)) return;
      udpBacklog.shift();
    }
  };
  const tcpWrite = (s: Socket<TcpState>, data: Uint8Array) => {
    const st = s.data;
    if (st.closed) return;
    if (st.pending.length > 0) {
      st.pending.push(data);
      return;
    }
    let n: number;
    try {
      n = s.write(data);
    } catch {
      st.closed = true; // the client went away: drop the reply
      return;
    }
    if (n < data.length) st.pending.push(data.subarray(Math.max(0, n)));
  };

  let lastError: unknown = null;
  for (let attempt = 0; attempt < 20 && !tcp; attempt++) {
    const u = await Bun.udpSocket({
      hostname: HOST,
      port: 0,
      binaryType: "uint8array",
      socket: {
        data(sock, data, port, address) {
          handle(data, "udp", { address, port }, (reply) => {
            if (udpBacklog.length > 0 || !udpSend(sock, reply, port, address)) {
              if (udpBacklog.length < 10_000) udpBacklog.push({ data: reply, port, address });
            }
          });
        },
        drain(sock) {
          flushUdp(sock);
        },
        // A reply to a client port that has closed comes back as ICMP port unreachable, which
        // Linux reports on this socket (ECONNREFUSED from the error queue): nothing to do.
        error() {},
      },
    });
    try {
      tcp = Bun.listen<TcpState>({
        hostname: HOST,
        port: u.port,
        socket: {
          open(s) {
            tcpAccepted++;
            s.data = { buf: new Uint8Array(0), pending: [], closed: false };
          },
          data(s, chunk) {
            const st = s.data;
            // A plain copy: Buffer#slice below would otherwise be a view into Bun's read buffer.
            let buf = st.buf.length === 0 ? new Uint8Array(chunk) : concat([st.buf, chunk]);
            // RFC 1035 4.2.2: each message is prefixed with a two-byte length.
            while (buf.length >= 2) {
              const len = (buf[0]! << 8) | buf[1]!;
              if (buf.length < 2 + len) break;
              const msg = buf.slice(2, 2 + len);
              buf = buf.subarray(2 + len);
              handle(msg, "tcp", { address: s.remoteAddress, port: s.remotePort }, (reply) => tcpWrite(s, concat([u16(reply.length), reply])));
            }
            st.buf = buf.length === 0 ? new Uint8Array(0) : buf.slice();
          },
          drain(s) {
            const st = s.data;
            while (st.pending.length > 0) {
              const head = st.pending[0]!;
              let n: number;
              try {
                n = s.write(head);
              } catch {
                st.closed = true;
                st.pending.length = 0;
                return;
              }
              if (n < head.length) {
                st.pending[0] = head.subarray(Math.max(0, n));
                return;
              }
              st.pending.shift();
            }
          },
          close(s) {
            s.data.closed = true;
          },
          error(s) {
            s.data.closed = true;
          },
        },
      });
      udpSock = u;
    } catch (err) {
      lastError = err;
      u.close();
    }
  }
  if (!tcp || !udpSock) throw new Error(`fake-dns: could not bind UDP and TCP on one port: ${String(lastError)}`);
  const port = udpSock.port;
  const tcpListener = tcp;
  const udpSocket = udpSock;

  return {
    port,
    address: `${HOST}:${port}`,
    set(name, spec) {
      names.set(normaliseName(name), compileName(spec, defaults));
    },
    unset(name) {
      names.delete(normaliseName(name));
    },
    queries: () => [...log],
    count(name?: string) {
      if (name === undefined) return total;
      if (!logQueries) throw new Error("fake-dns: count(name) needs the query log (log: true)");
      return perName.get(normaliseName(name)) ?? 0;
    },
    malformed: () => malformedCount,
    tcpConnections: () => tcpAccepted,
    resetQueries() {
      log.length = 0;
      perName.clear();
      total = 0;
      malformedCount = 0;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      tcpListener.stop(true);
      udpSocket.close();
    },
  };
}
