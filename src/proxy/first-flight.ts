/**
 * What a connection redirected to the transparent listener is, from its first bytes (sans-IO):
 * a TLS ClientHello and its server name, or a plain HTTP request and its Host, or something
 * else (refused: sluice only mediates HTTP and TLS). The name is what the connection is checked
 * against: its original destination must be an address sluice's resolver gives for it.
 */
import { parseRequestHead } from "./http1.ts";
import { MAX_HELLO, parseClientHello } from "./client-hello.ts";

export type FirstFlight =
  | { readonly kind: "incomplete" }
  | { readonly kind: "tls"; readonly sni: string | null }
  | { readonly kind: "http"; readonly host: string | null }
  | { readonly kind: "other"; readonly reason: string };

const TLS_HANDSHAKE = 0x16;
/** RFC 9112 section 3: method SP request-target SP HTTP-version. */
const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP\/\d\.\d$/;

export function classifyFirstFlight(buf: Uint8Array, maxHeadBytes: number): FirstFlight {
  if (buf.length === 0) return { kind: "incomplete" };
  const first = buf[0]!;
  if (first === TLS_HANDSHAKE) {
    const r = parseClientHello(Buffer.from(buf.buffer, buf.byteOffset, buf.length));
    if (r.status === "incomplete") return buf.length > MAX_HELLO + 1024 ? { kind: "other", reason: "no whole TLS ClientHello in the first 64 KiB" } : { kind: "incomplete" };
    if (r.status === "error") return { kind: "other", reason: `not a TLS ClientHello: ${r.reason}` };
    return { kind: "tls", sni: r.sni };
  }
  // An HTTP method is an upper-case token (RFC 9110 section 9: the registered ones are).
  if (first >= 0x41 && first <= 0x5a) {
    const text = Buffer.from(buf.buffer, buf.byteOffset, Math.min(buf.length, maxHeadBytes + 4)).toString("latin1");
    // A first line that cannot be a request line (an SSH banner, SMTP, ...) is known at once:
    // no waiting for a head that will never come.
    const eol = text.indexOf("\r\n");
    if (eol >= 0 && !REQUEST_LINE.test(text.slice(0, eol))) return { kind: "other", reason: "neither TLS nor HTTP" };
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) return buf.length > maxHeadBytes ? { kind: "other", reason: `no HTTP request head in the first ${maxHeadBytes} bytes` } : { kind: "incomplete" };
    const head = parseRequestHead(text.slice(0, end + 4));
    if (head.error === true) return { kind: "other", reason: `not an HTTP request: ${head.message}` };
    const hosts = head.headers.filter(([n]) => n.toLowerCase() === "host");
    // RFC 9112 section 3.2: exactly one Host; without one there is no name to check the address against.
    if (hosts.length !== 1) return { kind: "http", host: null };
    return { kind: "http", host: hostOf(hosts[0]![1]) };
  }
  return { kind: "other", reason: "neither TLS nor HTTP" };
}

/** The name in a Host header value, without its port, lower case; null if it is not one. */
function hostOf(value: string): string | null {
  const v = value.trim().toLowerCase();
  if (v.startsWith("[")) {
    const close = v.indexOf("]");
    return close > 1 ? v.slice(1, close) : null;
  }
  const colon = v.lastIndexOf(":");
  const name = colon >= 0 ? v.slice(0, colon) : v;
  return name.length > 0 && /^[a-z0-9._-]+$/.test(name) ? name.replace(/\.$/, "") : null;
}
