/**
 * Host name normalisation: one spelling per host, so that policy patterns, DNS lookups and audit
 * records all agree on which host a request is for. IP literals come out in canonical form
 * (net/ip), names as lower-case ASCII (punycode) without the trailing root dot.
 */
import { domainToASCII } from "node:url";
import { parseIpLiteral, unmapIpv4, type ParsedIp } from "./ip.ts";

export type NormalisedHost = { readonly ok: true; readonly host: string; readonly ip: ParsedIp | null } | { readonly ok: false; readonly error: string };

export type HostPort =
  | { readonly ok: true; readonly host: string; readonly port: number; readonly ip: ParsedIp | null }
  | { readonly ok: false; readonly error: string };

/** RFC 1035 §2.3.4: 255 octets on the wire, which is 253 characters of dotted text. */
const MAX_HOST_LENGTH = 253;
/** RFC 1035 §2.3.4. */
const MAX_LABEL_LENGTH = 63;

/**
 * Normalises a host as it appears in a URL, a Host header or a CONNECT target (port removed).
 * Accepts IPv6 with or without brackets, Unicode names (converted per UTS #46 by node:url, as
 * browsers and fetch do), and one trailing dot. Names are letters, digits, hyphen and underscore
 * (underscore is common in real DNS names such as `_dmarc` or SRV owners, RFC 2181 §11).
 */
export function normaliseHost(raw: string): NormalisedHost {
  if (raw.length === 0) return fail("empty host");
  if (raw.length > 1024) return fail("host too long");
  if (raw.charCodeAt(0) === 0x5b /* [ */ || raw.includes(":")) {
    const parsed = parseIpLiteral(raw);
    if (parsed === null || parsed.family !== 6) return fail(`invalid IPv6 literal ${quote(raw)}`);
    // One address, one spelling: an IPv4-mapped literal is the IPv4 address (so that deny
    // patterns and records see `127.0.0.5`, not `::ffff:127.0.0.5`).
    const ip = unmapIpv4(parsed);
    return { ok: true, host: ip.text, ip };
  }
  // Percent-encoding is not valid in a host name; WHATWG would decode it, which is a second
  // spelling of the same host that patterns would miss. Refuse instead.
  if (raw.includes("%")) return fail(`percent-encoding is not allowed in a host: ${quote(raw)}`);

  let host = raw;
  if (!isAscii(host)) {
    // UTS #46 mapping also folds full-width digits and ideographic dots (U+3002), so
    // `１２７。０。０。１` becomes 127.0.0.1 and is caught by the IPv4 check below.
    host = domainToASCII(host);
    if (host.length === 0) return fail(`invalid internationalised host name ${quote(raw)}`);
  }
  host = host.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host.length === 0) return fail(`empty host ${quote(raw)}`);

  // WHATWG URL host parser, "ends in a number": a host whose last label looks numeric is an IPv4
  // address or nothing. `1.2.3.0x10` must not be treated as a name and resolved.
  const lastDot = host.lastIndexOf(".");
  const last = host.slice(lastDot + 1);
  if (isNumericLabel(last)) {
    const ip = parseIpLiteral(host);
    if (ip === null || ip.family !== 4) return fail(`host ${quote(raw)} ends in a number but is not a valid IPv4 address`);
    return { ok: true, host: ip.text, ip };
  }

  if (host.length > MAX_HOST_LENGTH) return fail(`host is longer than ${MAX_HOST_LENGTH} characters`);
  let labelStart = 0;
  let sawPunycode = false;
  for (let i = 0; i <= host.length; i++) {
    const c = i === host.length ? 0x2e : host.charCodeAt(i);
    if (c === 0x2e /* . */) {
      const length = i - labelStart;
      if (length === 0) return fail(`empty label in host ${quote(raw)}`);
      if (length > MAX_LABEL_LENGTH) return fail(`label longer than ${MAX_LABEL_LENGTH} characters in host ${quote(raw)}`);
      if (host.startsWith("xn--", labelStart)) sawPunycode = true;
      labelStart = i + 1;
      continue;
    }
    if (!isHostChar(c)) return fail(`invalid character ${quote(host[i] ?? "")} in host ${quote(raw)}`);
  }
  // An ASCII `xn--` label must be valid punycode (RFC 5891 §5.4), else two spellings could
  // decode to the same Unicode name while comparing unequal here.
  if (sawPunycode && domainToASCII(host) !== host) return fail(`invalid punycode label in host ${quote(raw)}`);
  return { ok: true, host, ip: null };
}

/**
 * Splits and normalises `host:port` or `[v6]:port` (a CONNECT request-target, RFC 9110 §9.3.6,
 * or a Host header with a port). The port is required: 1..65535, digits only.
 */
export function splitHostPort(authority: string): HostPort {
  return split(authority, null);
}

/**
 * Like splitHostPort, but a missing port, or an empty one (`host:`, RFC 3986 §3.2.3), means
 * `defaultPort`. For Host headers and absolute URIs (RFC 9110 §7.2).
 */
export function splitHostPortWithDefault(authority: string, defaultPort: number): HostPort {
  return split(authority, defaultPort);
}

function split(authority: string, defaultPort: number | null): HostPort {
  let hostPart: string;
  let portPart: string | null;
  if (authority.charCodeAt(0) === 0x5b /* [ */) {
    const close = authority.indexOf("]");
    if (close === -1) return fail(`unterminated IPv6 literal in ${quote(authority)}`);
    hostPart = authority.slice(0, close + 1);
    const rest = authority.slice(close + 1);
    if (rest.length === 0) portPart = null;
    else if (rest.charCodeAt(0) === 0x3a /* : */) portPart = rest.slice(1);
    else return fail(`unexpected text after IPv6 literal in ${quote(authority)}`);
  } else {
    const colon = authority.indexOf(":");
    if (colon === -1) {
      hostPart = authority;
      portPart = null;
    } else {
      if (authority.indexOf(":", colon + 1) !== -1) return fail(`IPv6 address must be in brackets: ${quote(authority)}`);
      hostPart = authority.slice(0, colon);
      portPart = authority.slice(colon + 1);
    }
  }
  let port: number;
  if (portPart === null || portPart.length === 0) {
    if (defaultPort === null) return fail(`missing port in ${quote(authority)}`);
    port = defaultPort;
  } else {
    const parsed = parsePort(portPart);
    if (parsed === null) return fail(`invalid port ${quote(portPart)} in ${quote(authority)}`);
    port = parsed;
  }
  const host = normaliseHost(hostPart);
  if (!host.ok) return host;
  return { ok: true, host: host.host, port, ip: host.ip };
}

/** A TCP port 1..65535 written as ASCII digits only (RFC 3986 §3.2.3: port = *DIGIT). */
export function parsePort(text: string): number | null {
  if (text.length === 0 || text.length > 5) return null;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
    value = value * 10 + (c - 0x30);
  }
  return value >= 1 && value <= 65535 ? value : null;
}

/** Decimal digits, `0x` hex (possibly empty) or octal: what the WHATWG IPv4 number parser reads. */
function isNumericLabel(label: string): boolean {
  if (label.length === 0) return false;
  if (label.length >= 2 && label[0] === "0" && label[1] === "x") {
    for (let i = 2; i < label.length; i++) {
      const c = label.charCodeAt(i);
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
    }
    return true;
  }
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function isHostChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

function fail(error: string): { readonly ok: false; readonly error: string } {
  return { ok: false, error };
}
