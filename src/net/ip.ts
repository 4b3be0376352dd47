/**
 * IP literal parsing and formatting. Pure: no DNS, no sockets.
 *
 * The proxy must see an address the way the agent's HTTP client will dial it, so IPv4 follows
 * the WHATWG URL "IPv4 parser" (https://url.spec.whatwg.org/#concept-ipv4-parser), which is also
 * what BSD `inet_aton` accepts: 1 to 4 dot-separated parts, each decimal, octal (leading `0`) or
 * hex (`0x`), the last part filling the remaining bytes. `2130706433`, `0177.0.0.1`, `0x7f.1` and
 * `127.1` all mean 127.0.0.1; refusing to parse them would let them slip past classification.
 *
 * IPv6 follows RFC 4291 §2.2 (text forms, `::` compression, trailing dotted IPv4) and
 * RFC 6874 (zone ids, including the URL-encoded `%25` form). The zone is dropped: an address
 * is classified by its bytes, and `text` is the RFC 5952 canonical form.
 */

export interface ParsedIp {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
  /** Canonical text: dotted-quad for IPv4, RFC 5952 for IPv6, never a zone or brackets. */
  readonly text: string;
}

/** Parses any spelling of an IPv4 or IPv6 literal; null when `input` is not one. */
export function parseIpLiteral(input: string): ParsedIp | null {
  if (input.length === 0 || input.length > 512) return null;
  if (input.charCodeAt(0) === 0x5b /* [ */) {
    // Brackets only ever wrap IPv6 (RFC 3986 §3.2.2 IP-literal); `[127.0.0.1]` is not a host.
    if (input.charCodeAt(input.length - 1) !== 0x5d /* ] */) return null;
    return parseIpv6(input.slice(1, -1));
  }
  if (input.includes(":")) return parseIpv6(input);
  return parseIpv4(input);
}

/** Formats 4 or 16 bytes as canonical text (dotted-quad, or RFC 5952 for IPv6). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return formatIpv4(bytes, 0);
  if (bytes.length === 16) return formatIpv6(bytes);
  throw new Error(`formatIp: expected 4 or 16 bytes, got ${bytes.length}`);
}

/**
 * The IPv4 address an IPv4-mapped IPv6 address (::ffff:0:0/96, RFC 4291 §2.5.5.2) stands for,
 * or `ip` itself. A dual-stack socket dialing ::ffff:a.b.c.d reaches a.b.c.d, so identity checks
 * (trusted ranges, the proxy's own address) must compare the two as one.
 */
export function unmapIpv4(ip: ParsedIp): ParsedIp {
  if (ip.family !== 6 || !isIpv4Mapped(ip.bytes)) return ip;
  const bytes = ip.bytes.slice(12, 16);
  return { family: 4, bytes, text: formatIpv4(bytes, 0) };
}

function isIpv4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

// ---------------------------------------------------------------------------------------------
// IPv4

function parseIpv4(input: string): ParsedIp | null {
  const parts = input.split(".");
  // WHATWG drops one trailing empty part; we do not: normaliseHost strips the trailing dot of a
  // host before it gets here, and anything else with an empty part is not an address.
  if (parts.length > 4) return null;
  const numbers: number[] = [];
  for (const part of parts) {
    const n = parseIpv4Number(part);
    if (n === null) return null;
    numbers.push(n);
  }
  const count = numbers.length;
  for (let i = 0; i < count - 1; i++) if ((numbers[i] as number) > 255) return null;
  const last = numbers[count - 1] as number;
  // The last part fills the 5 - count remaining bytes (WHATWG step "If the last item in numbers
  // is greater than or equal to 256^(5 − numbers's size), return failure").
  if (last >= 256 ** (5 - count)) return null;
  let value = last;
  for (let i = 0; i < count - 1; i++) value += (numbers[i] as number) * 256 ** (3 - i);
  const bytes = new Uint8Array([value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]);
  return { family: 4, bytes, text: formatIpv4(bytes, 0) };
}

/** WHATWG "IPv4 number parser": `0x`/`0X` hex (may be empty: 0), leading-zero octal, else decimal. */
function parseIpv4Number(part: string): number | null {
  if (part.length === 0) return null;
  let radix = 10;
  let digits = part;
  if (part.length >= 2 && part.charCodeAt(0) === 0x30 && (part[1] === "x" || part[1] === "X")) {
    radix = 16;
    digits = part.slice(2);
    if (digits.length === 0) return 0;
  } else if (part.length >= 2 && part.charCodeAt(0) === 0x30) {
    radix = 8;
    digits = part.slice(1);
  }
  let value = 0;
  for (let i = 0; i < digits.length; i++) {
    const d = digitValue(digits.charCodeAt(i));
    if (d < 0 || d >= radix) return null;
    value = value * radix + d;
    // Past 2^32 the value is out of range whatever follows; stop before precision is lost.
    if (value > 0xffffffff) return 0x100000000;
  }
  return value;
}

function digitValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function formatIpv4(b: Uint8Array, offset: number): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

// ---------------------------------------------------------------------------------------------
// IPv6

function parseIpv6(input: string): ParsedIp | null {
  let address = input;
  const percent = input.indexOf("%");
  if (percent !== -1) {
    // RFC 6874 §2: ZoneID = 1*( unreserved / pct-encoded ); in a URI the `%` is written `%25`.
    // The zone only scopes a link-local address to an interface; the bytes are what we classify.
    const zone = input.slice(percent + 1);
    if (!isValidZone(zone)) return null;
    address = input.slice(0, percent);
  }
  const bytes = new Uint8Array(16);
  const compress = address.indexOf("::");
  if (compress !== -1 && address.indexOf("::", compress + 1) !== -1) return null;
  const head = compress === -1 ? address : address.slice(0, compress);
  const tail = compress === -1 ? "" : address.slice(compress + 2);
  const headGroups = head.length === 0 ? [] : head.split(":");
  const tailGroups = tail.length === 0 ? [] : tail.split(":");
  if (compress === -1 && headGroups.length === 0) return null;

  // Only the very last group may be a dotted IPv4 address (RFC 4291 §2.2 form 3).
  const words: number[] = [];
  const headWords = parseGroups(headGroups, compress === -1);
  const tailWords = parseGroups(tailGroups, true);
  if (headWords === null || tailWords === null) return null;
  const explicit = headWords.length + tailWords.length;
  if (compress === -1) {
    if (explicit !== 8) return null;
  } else if (explicit > 7) {
    // RFC 4291 §2.2: "::" stands for one or more groups of zeros.
    return null;
  }
  words.push(...headWords);
  for (let i = explicit; i < 8; i++) words.push(0);
  words.push(...tailWords);
  for (let i = 0; i < 8; i++) {
    const w = words[i] as number;
    bytes[i * 2] = w >>> 8;
    bytes[i * 2 + 1] = w & 0xff;
  }
  return { family: 6, bytes, text: formatIpv6(bytes) };
}

/** 16-bit words from `groups`; the last may be dotted IPv4 when `lastMayBeIpv4`. */
function parseGroups(groups: string[], lastMayBeIpv4: boolean): number[] | null {
  const words: number[] = [];
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i] as string;
    if (lastMayBeIpv4 && i === groups.length - 1 && group.includes(".")) {
      const v4 = parseDottedQuad(group);
      if (v4 === null) return null;
      words.push((v4 >>> 16) & 0xffff, v4 & 0xffff);
      continue;
    }
    if (group.length === 0 || group.length > 4) return null;
    let w = 0;
    for (let j = 0; j < group.length; j++) {
      const d = digitValue(group.charCodeAt(j));
      if (d < 0) return null;
      w = w * 16 + d;
    }
    words.push(w);
  }
  return words;
}

/**
 * Strict dotted-quad inside IPv6: four decimal parts, no leading zeros. This is what inet_pton
 * and the WHATWG IPv6 parser accept, so `::ffff:0177.0.0.1` is not an address anywhere.
 */
function parseDottedQuad(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (part.length === 0 || part.length > 3) return null;
    if (part.length > 1 && part.charCodeAt(0) === 0x30) return null;
    let n = 0;
    for (let i = 0; i < part.length; i++) {
      const c = part.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return null;
      n = n * 10 + (c - 0x30);
    }
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value >>> 0;
}

function isValidZone(zone: string): boolean {
  if (zone.length === 0 || zone.length > 64) return false;
  for (let i = 0; i < zone.length; i++) {
    const c = zone.charCodeAt(i);
    const ok =
      (c >= 0x30 && c <= 0x39) ||
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) ||
      c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e || c === 0x25; // - . _ ~ %
    if (!ok) return false;
  }
  return true;
}

/** RFC 5952 §4: lower case, no leading zeros, the longest run (>= 2) of zero groups as `::`. */
function formatIpv6(b: Uint8Array): string {
  // RFC 5952 §5: IPv4-mapped addresses are written with their IPv4 part dotted, as the kernel
  // and Bun/Node socket APIs report them.
  if (isIpv4Mapped(b)) return `::ffff:${formatIpv4(b, 12)}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i] as number) << 8) | (b[i + 1] as number));
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  // RFC 5952 §4.2.2: a single zero group is not compressed.
  if (bestLength < 2) return words.map((w) => w.toString(16)).join(":");
  const left = words.slice(0, bestStart).map((w) => w.toString(16)).join(":");
  const right = words.slice(bestStart + bestLength).map((w) => w.toString(16)).join(":");
  return `${left}::${right}`;
}
