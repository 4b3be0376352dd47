/**
 * The first flight of a TLS client, read before any TLS is terminated: its ClientHello's server
 * name (SNI, RFC 6066 §3) and ALPN protocols (RFC 7301), so that interception can check the
 * name against the CONNECT target and mint the leaf for it before the handshake starts (node:tls
 * then gets the right certificate up front). Pure: bytes in, a verdict out.
 *
 * Records (RFC 8446 §5.1) are reassembled up to MAX_HELLO bytes of handshake data: a ClientHello
 * with large key shares may span several. Anything that is not a well-formed ClientHello (plain
 * HTTP on a CONNECT, garbage, an alert) is an error with a reason; too few bytes yet is
 * `incomplete`.
 */

/** The most handshake data read for one ClientHello. */
export const MAX_HELLO = 64 * 1024;

export type HelloResult =
  | { readonly status: "incomplete" }
  | { readonly status: "error"; readonly reason: string }
  | {
      readonly status: "ok";
      /** The host name asked for, lower case; null when the client sent none. */
      readonly sni: string | null;
      readonly alpn: readonly string[];
    };

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

export function parseClientHello(bytes: Uint8Array): HelloResult {
  // Reassemble the handshake messages from the records that carry them.
  const data: Uint8Array[] = [];
  let size = 0;
  let at = 0;
  let need = -1; // the ClientHello's length with its 4-byte header, once known
  while (need < 0 || size < need) {
    if (bytes.length < at + 5) return { status: "incomplete" };
    const type = bytes[at]!;
    if (type !== HANDSHAKE) return { status: "error", reason: type === 21 ? "a TLS alert instead of a ClientHello" : at === 0 ? "not TLS (no handshake record)" : `a record of type ${type} inside the ClientHello` };
    if (bytes[at + 1] !== 3) return { status: "error", reason: "not TLS (record version)" };
    const length = (bytes[at + 3]! << 8) | bytes[at + 4]!;
    if (length === 0 || length > 16384 + 2048) return { status: "error", reason: `bad record length ${length}` };
    if (bytes.length < at + 5 + length) return { status: "incomplete" };
    data.push(bytes.subarray(at + 5, at + 5 + length));
    size += length;
    at += 5 + length;
    if (need < 0 && size >= 4) {
      const head = concat(data, size);
      if (head[0] !== CLIENT_HELLO) return { status: "error", reason: `handshake message ${head[0]} instead of a ClientHello` };
      need = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (need > MAX_HELLO) return { status: "error", reason: `ClientHello of ${need} bytes (over ${MAX_HELLO})` };
    }
  }
  return readHello(concat(data, size).subarray(4, need));
}

function concat(parts: readonly Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The body of a ClientHello (RFC 8446 §4.1.2), after its 4-byte handshake header. */
function readHello(h: Uint8Array): HelloResult {
  const bad = (what: string): HelloResult => ({ status: "error", reason: `malformed ClientHello (${what})` });
  let p = 2 + 32; // legacy_version, random
  if (h.length < p + 1) return bad("too short");
  p += 1 + h[p]!; // session id
  if (h.length < p + 2) return bad("cipher suites");
  p += 2 + ((h[p]! << 8) | h[p + 1]!);
  if (h.length < p + 1) return bad("compression methods");
  p += 1 + h[p]!;
  if (p === h.length) return { status: "ok", sni: null, alpn: [] }; // no extensions at all
  if (h.length < p + 2) return bad("extensions");
  const end = p + 2 + ((h[p]! << 8) | h[p + 1]!);
  if (end > h.length) return bad("extensions length");
  p += 2;
  let sni: string | null = null;
  const alpn: string[] = [];
  while (p + 4 <= end) {
    const type = (h[p]! << 8) | h[p + 1]!;
    const len = (h[p + 2]! << 8) | h[p + 3]!;
    const body = h.subarray(p + 4, p + 4 + len);
    if (p + 4 + len > end) return bad("extension length");
    if (type === EXT_SERVER_NAME) {
      if (sni !== null) return bad("two server_name extensions");
      const name = readServerName(body);
      if (name === undefined) return bad("server_name");
      sni = name;
    } else if (type === EXT_ALPN) {
      const list = readAlpn(body);
      if (list === null) return bad("application_layer_protocol_negotiation");
      alpn.push(...list);
    }
    p += 4 + len;
  }
  if (p !== end) return bad("trailing bytes in extensions");
  return { status: "ok", sni, alpn };
}

/** The host_name of a server_name extension: a string, null when none is listed, undefined when malformed. */
function readServerName(b: Uint8Array): string | null | undefined {
  if (b.length < 2) return undefined;
  const end = 2 + ((b[0]! << 8) | b[1]!);
  if (end !== b.length) return undefined;
  let p = 2;
  let name: string | null = null;
  while (p + 3 <= end) {
    const type = b[p]!;
    const len = (b[p + 1]! << 8) | b[p + 2]!;
    if (p + 3 + len > end) return undefined;
    if (type === 0) {
      if (name !== null || len === 0) return undefined;
      const raw = b.subarray(p + 3, p + 3 + len);
      // A DNS name in ASCII (RFC 6066 §3): letters, digits, hyphens, dots, underscores.
      for (const c of raw) if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f)) return undefined;
      name = new TextDecoder().decode(raw).toLowerCase().replace(/\.$/, "");
    }
    p += 3 + len;
  }
  return p === end ? name : undefined;
}

function readAlpn(b: Uint8Array): string[] | null {
  if (b.length < 2) return null;
  const end = 2 + ((b[0]! << 8) | b[1]!);
  if (end !== b.length) return null;
  const out: string[] = [];
  for (let p = 2; p < end; ) {
    const len = b[p]!;
    if (len === 0 || p + 1 + len > end) return null;
    out.push(new TextDecoder().decode(b.subarray(p + 1, p + 1 + len)));
    p += 1 + len;
  }
  return out;
}
