/**
 * Classifies an IP address against the IANA special-purpose registries (RFC 6890 and its
 * updates) so the dialer never connects to loopback, private, link-local, metadata or otherwise
 * non-global destinations by default. IPv6 forms that carry an IPv4 address (mapped, translated,
 * NAT64, 6to4, Teredo) are judged by the IPv4 address they lead to, since that is where the
 * packets end up.
 *
 * Table-driven: add a row, not a branch. Rows are checked in order and the first match wins, so
 * specific rows (metadata /32s, broadcast) come before the ranges that contain them.
 */
import type { AddressClass } from "../core/types.ts";
import { cidrContains, parseCidr, type Cidr } from "./cidr.ts";
import { parseIpLiteral, type ParsedIp } from "./ip.ts";

interface RangeRow {
  readonly cidr: Cidr;
  readonly kind: string;
  /** Extra words for the detail, e.g. which cloud's metadata endpoint. */
  readonly note?: string;
}

function rows(table: readonly (readonly [cidr: string, kind: string, note?: string])[]): readonly RangeRow[] {
  return table.map(([cidr, kind, note]) => (note === undefined ? { cidr: parseCidr(cidr), kind } : { cidr: parseCidr(cidr), kind, note }));
}

const IPV4_RANGES = rows([
  // Instance metadata services hand out cloud credentials: the classic SSRF target.
  ["169.254.169.254/32", "metadata", "AWS/GCP/Azure/OpenStack instance metadata"],
  ["169.254.170.2/32", "metadata", "AWS ECS task metadata"],
  ["100.100.100.200/32", "metadata", "Alibaba Cloud instance metadata"],
  // A public address, but every Azure VM reaches its host agent (WireServer) there.
  ["168.63.129.16/32", "metadata", "Azure WireServer"],
  ["255.255.255.255/32", "broadcast"], // limited broadcast, RFC 919 §7
  ["0.0.0.0/8", "unspecified"], // "this network", RFC 1122 §3.2.1.3; Linux dials 0.0.0.0 as loopback
  ["127.0.0.0/8", "loopback"], // RFC 1122 §3.2.1.3
  ["10.0.0.0/8", "private"], // RFC 1918 §3
  ["172.16.0.0/12", "private"], // RFC 1918 §3
  ["192.168.0.0/16", "private"], // RFC 1918 §3
  ["169.254.0.0/16", "link-local"], // RFC 3927
  ["100.64.0.0/10", "cgnat"], // shared address space, RFC 6598
  ["192.0.0.0/24", "ietf-protocol"], // IETF protocol assignments, RFC 6890 §2.2.2
  ["192.0.2.0/24", "documentation"], // TEST-NET-1, RFC 5737
  ["198.51.100.0/24", "documentation"], // TEST-NET-2, RFC 5737
  ["203.0.113.0/24", "documentation"], // TEST-NET-3, RFC 5737
  ["198.18.0.0/15", "benchmarking"], // RFC 2544 §C.2.2
  ["224.0.0.0/4", "multicast"], // RFC 5771
  ["240.0.0.0/4", "reserved"], // RFC 1112 §4
]);

const IPV6_RANGES = rows([
  ["::/128", "unspecified"], // RFC 4291 §2.5.2
  ["::1/128", "loopback"], // RFC 4291 §2.5.3
  ["fd00:ec2::254/128", "metadata", "AWS instance metadata over IPv6"],
  ["fe80::/10", "link-local"], // RFC 4291 §2.5.6
  ["fec0::/10", "site-local"], // deprecated by RFC 3879, still routable inside some sites
  ["fc00::/7", "unique-local"], // RFC 4193
  ["ff00::/8", "multicast"], // RFC 4291 §2.7
  ["2001:db8::/32", "documentation"], // RFC 3849
  ["3fff::/20", "documentation"], // RFC 9637
  ["2001:2::/48", "benchmarking"], // RFC 5180
  ["100::/64", "discard"], // discard-only, RFC 6666
  ["2001:10::/28", "orchid"], // ORCHID, RFC 4843 (deprecated)
  ["2001:20::/28", "orchid"], // ORCHIDv2, RFC 7343
]);

/** One IPv4 address found inside an IPv6 one, with the words that say where it was found. */
interface Embedded {
  readonly v4: Uint8Array;
  readonly via: string;
}

interface EmbeddingRow {
  readonly cidr: Cidr;
  /** The IPv4 addresses the packets may reach, or a class when they cannot be told. */
  readonly extract: (bytes: Uint8Array) => readonly Embedded[] | AddressClass;
}

const AMBIGUOUS_NAT64: AddressClass = {
  kind: "nat64-local",
  blocked: true,
  detail: "nat64-local 64:ff9b:1::/48 outside 64:ff9b:1::/96: the embedded IPv4 address depends on the operator's RFC 6052 layout",
};

const lastFour = (via: string) => (b: Uint8Array): readonly Embedded[] => [{ v4: b.slice(12, 16), via }];

/**
 * Checked only when no IPv6 row matched, so `::` and `::1` are not read as IPv4-compatible
 * 0.0.0.0 and 0.0.0.1.
 */
const EMBEDDINGS: readonly EmbeddingRow[] = [
  // RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket.
  { cidr: parseCidr("::ffff:0:0/96"), extract: lastFour("IPv4-mapped IPv6") },
  // RFC 2765 §2.1 (SIIT): ::ffff:0:a.b.c.d.
  { cidr: parseCidr("::ffff:0:0:0/96"), extract: lastFour("IPv4-translated IPv6") },
  // RFC 4291 §2.5.5.1: deprecated IPv4-compatible ::a.b.c.d.
  { cidr: parseCidr("::/96"), extract: lastFour("IPv4-compatible IPv6") },
  // RFC 6052 §2.1: the well-known NAT64 prefix, always the /96 format.
  { cidr: parseCidr("64:ff9b::/96"), extract: lastFour("NAT64 64:ff9b::/96") },
  // RFC 8215: local-use NAT64 /48. The operator may carve it into several /96 prefixes or use
  // a shorter RFC 6052 §2.2 layout (/48, /56, /64), which puts the IPv4 address elsewhere and
  // cannot be known here. With bits 48-95 zero every layout but /96 reads 0.0.0.0/8, which no
  // translator forwards, so the /96 reading is the real one; otherwise refuse as ambiguous.
  {
    cidr: parseCidr("64:ff9b:1::/48"),
    extract: (b) => {
      for (let i = 6; i < 12; i++) if (b[i] !== 0) return AMBIGUOUS_NAT64;
      return [{ v4: b.slice(12, 16), via: "local-use NAT64 64:ff9b:1::/48" }];
    },
  },
  // RFC 3056 §2: 2002:V4ADDR::/48, the IPv4 address in bits 16-47.
  { cidr: parseCidr("2002::/16"), extract: (b) => [{ v4: b.slice(2, 6), via: "6to4" }] },
  // RFC 4380 §4: 2001:0:SERVER:FLAGS:PORT:CLIENT, client address obfuscated by inverting every bit.
  {
    cidr: parseCidr("2001::/32"),
    extract: (b) => [
      { v4: b.slice(4, 8), via: "Teredo server" },
      { v4: b.slice(12, 16).map((x) => ~x & 0xff), via: "Teredo client" },
    ],
  },
];

const PUBLIC: AddressClass = { kind: "public", blocked: false, detail: "public" };

/** Classifies an address; a string that is not an IP literal is blocked with kind "invalid". */
export function classifyAddress(ip: ParsedIp | string): AddressClass {
  const parsed = typeof ip === "string" ? parseIpLiteral(ip) : ip;
  if (parsed === null) {
    return { kind: "invalid", blocked: true, detail: `not an IP address: ${JSON.stringify(String(ip).slice(0, 100))}` };
  }
  if (parsed.family === 4) return classifyV4(parsed.bytes, "") ?? PUBLIC;
  const row = findRow(IPV6_RANGES, parsed);
  if (row !== null) return blockedBy(row, "");
  for (const embedding of EMBEDDINGS) {
    if (!cidrContains(embedding.cidr, parsed)) continue;
    const found = embedding.extract(parsed.bytes);
    if ("kind" in found) return found;
    for (const { v4, via } of found) {
      const verdict = classifyV4(v4, ` (via ${via})`);
      if (verdict !== null) return verdict;
    }
    return { kind: "public", blocked: false, detail: `public (via ${found.map((e) => e.via).join(" and ")})` };
  }
  return PUBLIC;
}

function classifyV4(bytes: Uint8Array, via: string): AddressClass | null {
  const row = findRow(IPV4_RANGES, { family: 4, bytes, text: "" });
  return row === null ? null : blockedBy(row, via);
}

function findRow(table: readonly RangeRow[], ip: ParsedIp): RangeRow | null {
  for (const row of table) if (cidrContains(row.cidr, ip)) return row;
  return null;
}

function blockedBy(row: RangeRow, via: string): AddressClass {
  const note = row.note === undefined ? "" : ` [${row.note}]`;
  return { kind: row.kind, blocked: true, detail: `${row.kind} ${row.cidr.text}${note}${via}` };
}
