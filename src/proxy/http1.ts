/**
 * Sans-IO HTTP/1.1 message heads (RFC 9112). Strict on purpose: a proxy that is lenient where
 * the origin is strict (or the reverse) is how request smuggling happens, so ambiguous framing
 * is refused, never normalised (RFC 9112 section 6.3, 11.2).
 */

export interface ParseError {
  readonly error: true;
  readonly status: 400 | 431 | 501 | 505 | 502;
  readonly message: string;
}

export interface Framing {
  /** Exact body length, or null. */
  readonly contentLength: number | null;
  readonly chunked: boolean;
}

export interface RequestHead extends Framing {
  readonly error?: false;
  readonly method: string;
  readonly target: string;
  /** Minor version: 0 or 1. */
  readonly minor: number;
  readonly headers: [string, string][];
  /** Lower-cased tokens of the Connection header(s). */
  readonly connection: readonly string[];
  /** The client asked to close, or is HTTP/1.0 without keep-alive. */
  readonly close: boolean;
}

export interface ResponseHead extends Framing {
  readonly error?: false;
  readonly status: number;
  readonly reason: string;
  readonly minor: number;
  readonly headers: [string, string][];
  readonly connection: readonly string[];
  readonly close: boolean;
  /**
   * HTTP/1.1 with no hop-by-hop header but a chunked Transfer-Encoding: the validated head
   * bytes can be forwarded to a keep-alive HTTP/1.1 client as they are, without re-serialising.
   */
  readonly verbatim: boolean;
}

const CRLFCRLF = Buffer.from("\r\n\r\n");

/** Index just past the blank line that ends a head, or -1. */
export function findHeadEnd(buf: Buffer, from = 0): number {
  const i = buf.indexOf(CRLFCRLF, Math.max(0, from - 3));
  return i < 0 ? -1 : i + 4;
}

/** Fields that frame or route a message: a Connection header must never name them. */
const FRAMING = new Set(["content-length", "transfer-encoding", "host"]);
/** Fields a trailer must never carry (RFC 9110 section 6.5.1): framing, routing, hop-by-hop, credentials. */
export const TRAILER_FORBIDDEN = new Set([...FRAMING, "trailer", "te", "connection", "upgrade", "proxy-authorization", "keep-alive", "authorization", "cookie"]);

const fail = (status: ParseError["status"], message: string): ParseError => ({ error: true, status, message });

// RFC 9110 section 5.6.2: token = 1*tchar
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 section 5.5: field-value may hold VCHAR, obs-text, SP and HTAB; no other control.
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const DIGITS = /^\d{1,15}$/;

interface HeaderBlock {
  headers: [string, string][];
  contentLength: number | null;
  transferEncoding: string | null;
  connection: string[];
  /** A hop-by-hop header other than Transfer-Encoding was seen. */
  hopByHop: boolean;
}

function parseHeaderLines(lines: string[], from: number, errStatus: 400 | 502): HeaderBlock | ParseError {
  const headers: [string, string][] = [];
  let contentLength: number | null = null;
  let te: string | null = null;
  const connection: string[] = [];
  let hopByHop = false;
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") continue;
    const c0 = line.charCodeAt(0);
    // RFC 9112 section 5.2: obs-fold is refused in requests.
    if (c0 === 0x20 || c0 === 0x09) return fail(errStatus, "obsolete line folding");
    const colon = line.indexOf(":");
    if (colon <= 0) return fail(errStatus, "header line without a name");
    const name = line.slice(0, colon);
    // RFC 9112 section 5.1: no whitespace between the field name and the colon.
    if (!TOKEN.test(name)) return fail(errStatus, "invalid header name");
    // RFC 9112 section 5.1: only OWS (SP, HTAB) around a value is stripped; String#trim would
    // also eat VT, FF and NBSP and turn `chunked\v` into `chunked`.
    const value = trimOws(line, colon + 1);
    if (BAD_VALUE.test(value)) return fail(errStatus, "control character in header value");
    const lower = name.toLowerCase();
    if (lower === "content-length") {
      if (contentLength !== null) return fail(errStatus, "duplicate Content-Length");
      if (!DIGITS.test(value)) return fail(errStatus, "invalid Content-Length");
      contentLength = Number(value);
    } else if (lower === "transfer-encoding") {
      te = te === null ? value : `${te}, ${value}`;
    } else if (lower === "connection") {
      for (const t of value.split(",")) {
        const tok = t.trim().toLowerCase();
        // `Connection: content-length` would make a hop-by-hop-stripping proxy drop the framing
        // and turn a body into a second request (smuggling): refuse, never strip.
        if (FRAMING.has(tok)) return fail(errStatus, `Connection names ${tok}`);
        if (tok) connection.push(tok);
      }
      hopByHop = true;
    } else if (HOP_BY_HOP.has(lower)) {
      hopByHop = true;
    }
    headers.push([name, value]);
  }
  return { headers, contentLength, transferEncoding: te, connection, hopByHop };
}

function trimOws(line: string, from: number): string {
  let a = from;
  let b = line.length;
  while (a < b && (line.charCodeAt(a) === 0x20 || line.charCodeAt(a) === 0x09)) a++;
  while (b > a && (line.charCodeAt(b - 1) === 0x20 || line.charCodeAt(b - 1) === 0x09)) b--;
  return line.slice(a, b);
}

function splitLines(head: string): string[] | null {
  const lines = head.split("\r\n");
  // A bare CR or LF inside a line is a framing ambiguity: refuse (RFC 9112 section 2.2).
  for (const l of lines) if (l.includes("\r") || l.includes("\n")) return null;
  return lines;
}

/** `head` is the latin1 text of the head, including the final CRLFCRLF. */
export function parseRequestHead(head: string): RequestHead | ParseError {
  const lines = splitLines(head);
  if (!lines) return fail(400, "bare CR or LF in request head");
  const requestLine = lines[0]!;
  const sp1 = requestLine.indexOf(" ");
  const sp2 = requestLine.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || requestLine.indexOf(" ", sp2 + 1) >= 0) return fail(400, "malformed request line");
  const method = requestLine.slice(0, sp1);
  const target = requestLine.slice(sp1 + 1, sp2);
  const version = requestLine.slice(sp2 + 1);
  if (!TOKEN.test(method)) return fail(400, "invalid method");
  if (target.length === 0 || /[\x00-\x20\x7f]/.test(target)) return fail(400, "invalid request target");
  let minor: number;
  if (version === "HTTP/1.1") minor = 1;
  else if (version === "HTTP/1.0") minor = 0;
  else if (/^HTTP\/\d\.\d$/.test(version)) return fail(505, "HTTP version not supported");
  else return fail(400, "malformed HTTP version");

  const block = parseHeaderLines(lines, 1, 400);
  if ("error" in block) return block;
  const framing = requestFraming(block, minor);
  if ("error" in framing) return framing;
  const close = block.connection.includes("close") || (minor === 0 && !block.connection.includes("keep-alive"));
  return { method, target, minor, headers: block.headers, connection: block.connection, close, ...framing };
}

function requestFraming(block: HeaderBlock, minor: number): Framing | ParseError {
  if (block.transferEncoding === null) return { contentLength: block.contentLength, chunked: false };
  // RFC 9112 section 6.1: Transfer-Encoding with Content-Length is a smuggling shape; refuse.
  if (block.contentLength !== null) return fail(400, "both Transfer-Encoding and Content-Length");
  if (minor === 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
  if (block.transferEncoding.toLowerCase() !== "chunked") {
    return fail(501, `unsupported Transfer-Encoding: ${block.transferEncoding.slice(0, 40)}`);
  }
  return { contentLength: null, chunked: true };
}

/** Response heads from upstreams. `requestMethod` decides bodiless responses (RFC 9112 section 6.3). */
export function parseResponseHead(head: string): ResponseHead | ParseError {
  const lines = splitLines(head);
  if (!lines) return fail(502, "bare CR or LF in response head");
  // RFC 9112 section 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ); it is copied to
  // the client's status line, so a control character in it is refused.
  const m = /^HTTP\/1\.([01]) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/.exec(lines[0]!);
  if (!m) return fail(502, "malformed status line");
  const block = parseHeaderLines(lines, 1, 502);
  if ("error" in block) return block;
  let chunked = false;
  let contentLength = block.contentLength;
  let verbatim = m[1] === "1" && !block.hopByHop;
  if (block.transferEncoding !== null) {
    const codings = block.transferEncoding.toLowerCase().split(",").map((s) => s.trim());
    // RFC 9112 section 6.3 (3): chunked must be final, else the body runs to close.
    chunked = codings[codings.length - 1] === "chunked";
    if (codings.length > 1 || !chunked) return fail(502, "unsupported Transfer-Encoding from upstream");
    // RFC 9112 section 6.3 (3): Transfer-Encoding overrides Content-Length; drop the latter.
    if (contentLength !== null) {
      verbatim = false;
      contentLength = null;
      const i = block.headers.findIndex(([n]) => n.toLowerCase() === "content-length");
      block.headers.splice(i, 1);
    }
  }
  const minor = Number(m[1]);
  const close = block.connection.includes("close") || (minor === 0 && !block.connection.includes("keep-alive"));
  return {
    status: Number(m[2]),
    reason: m[3] ?? "",
    minor,
    headers: block.headers,
    connection: block.connection,
    close,
    contentLength,
    chunked,
    verbatim,
  };
}

/**
 * RFC 9112 section 6.3: responses to HEAD, 1xx, 204 and 304 never have a body. Methods are
 * case-sensitive, but an origin that folds case answers `head` like HEAD: treat it so.
 */
export function responseHasBody(method: string, status: number): boolean {
  return !(method.toUpperCase() === "HEAD" || (status >= 100 && status < 200) || status === 204 || status === 304);
}

/**
 * Hop-by-hop headers (RFC 9110 section 7.6.1), plus the proxy's own credential and the
 * non-standard Proxy-Connection. Lower-case.
 */
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Serialises headers minus hop-by-hop ones, those the Connection header names and `skip`.
 * Callers write framing (Content-Length, Transfer-Encoding) themselves from parsed values.
 */
export function serializeHeaders(headers: readonly (readonly [string, string])[], connection: readonly string[], skip?: ReadonlySet<string>): string {
  let out = "";
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (connection.length > 0 && connection.includes(lower)) || skip?.has(lower)) continue;
    out += `${name}: ${value}\r\n`;
  }
  return out;
}
