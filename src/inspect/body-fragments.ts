/**
 * Request bodies as Fragments, by type (issue 4, item 5): JSON, NDJSON, form, multipart, XML and
 * text. Values are kept as written: the scanning engine applies its own decoders (percent,
 * base64, entities, ...), so decoding here would only hide what it needs to see. Everything is
 * bounded (fragment count, JSON depth) and linear; content that cannot be parsed is still
 * returned as one text fragment with an error, never dropped.
 */
import type { Fragment } from "../core/types.ts";
import { isVerdict, REPORTED_KEY } from "../scan/injection/verdict.ts";

export interface FragmentLimits {
  /** Fragments per body, default 4096. */
  maxFragments?: number;
  /** JSON (and multipart) nesting, default 64; a deeper subtree becomes one fragment. */
  maxDepth?: number;
  /** Joined fragments (split-fragments), default 256. */
  maxJoined?: number;
  /** Characters per joined fragment, default 512. */
  maxJoinedLength?: number;
}

export type BodyKind = "json" | "ndjson" | "form" | "multipart" | "xml" | "text" | "binary";

export interface BodyFragments {
  fragments: Fragment[];
  kind: BodyKind;
  error?: string;
  /**
   * jsonTextFragments with `reports`: the indices (in `fragments`, ascending) of the string values
   * a classifier's record reports on (isVerdict, REPORTED_KEY): the text a moderation result
   * flagged, an evaluation case labelled an attack.
   */
  reported?: number[];
}

const DEFAULT_MAX_FRAGMENTS = 4096;
const DEFAULT_MAX_DEPTH = 64;
/** Bytes looked at to sniff a type: enough for every signature below and a fair text sample. */
const SNIFF_BYTES = 1024;
export const TOO_MANY_FRAGMENTS = "too many fragments";
export const INVALID_JSON = "invalid JSON";
export const MALFORMED_MULTIPART = "malformed multipart";
export const JSON_TOO_DEEP = "JSON nested too deep";

// ---------------------------------------------------------------------------------------------
// Kind: the content type first, then the bytes.

/** NDJSON / JSON Lines / JSON text sequences (RFC 7464). */
const NDJSON_TYPES = new Set(["application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines", "application/json-seq"]);

/**
 * File signatures of common binary formats. All but those marked contain a byte that is not
 * printable ASCII, and sniffing checks clean text first anyway, so a text body is never skipped
 * because someone glued a signature to its front.
 */
const SIGNATURES: readonly { readonly name: string; readonly at: number; readonly bytes: readonly number[] }[] = [
  { name: "png", at: 0, bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { name: "jpeg", at: 0, bytes: [0xff, 0xd8, 0xff] },
  { name: "gif", at: 0, bytes: [0x47, 0x49, 0x46, 0x38] }, // "GIF8" (ASCII: binary only when not clean text)
  { name: "webp", at: 8, bytes: [0x57, 0x45, 0x42, 0x50] }, // "WEBP" after "RIFF" + size (ASCII, idem)
  { name: "pdf", at: 0, bytes: [0x25, 0x50, 0x44, 0x46, 0x2d] }, // "%PDF-" (ASCII, idem)
  { name: "zip", at: 0, bytes: [0x50, 0x4b, 0x03, 0x04] },
  { name: "gzip", at: 0, bytes: [0x1f, 0x8b] },
  { name: "zstd", at: 0, bytes: [0x28, 0xb5, 0x2f, 0xfd] },
  { name: "xz", at: 0, bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { name: "7z", at: 0, bytes: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c] },
  { name: "wasm", at: 0, bytes: [0x00, 0x61, 0x73, 0x6d] },
  { name: "elf", at: 0, bytes: [0x7f, 0x45, 0x4c, 0x46] },
  { name: "mach-o", at: 0, bytes: [0xcf, 0xfa, 0xed, 0xfe] },
  { name: "mp4", at: 4, bytes: [0x66, 0x74, 0x79, 0x70] }, // "ftyp" after a big-endian box size
  { name: "ogg", at: 0, bytes: [0x4f, 0x67, 0x67, 0x53, 0x00] },
  { name: "webm", at: 0, bytes: [0x1a, 0x45, 0xdf, 0xa3] },
];

/** The media type of a Content-Type value, lower-cased, without parameters (RFC 9110 section 8.3.1). */
export function mediaType(contentType: string | undefined): string {
  if (contentType === undefined) return "";
  const semi = contentType.indexOf(";");
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/** Structured kinds are taken from the content type: parsing them is how their values are found. */
function kindFromType(type: string): BodyKind | null {
  if (NDJSON_TYPES.has(type)) return "ndjson";
  if (type === "application/json" || type === "text/json" || type.endsWith("+json")) return "json";
  if (type === "application/x-www-form-urlencoded") return "form";
  if (type.startsWith("multipart/")) return "multipart";
  if (type === "application/xml" || type === "text/xml" || type === "text/html" || type.endsWith("+xml")) return "xml";
  return null;
}

/**
 * What a body is. JSON, NDJSON, form, multipart and XML come from the content type. Anything
 * else (text/*, image/*, octet-stream, none) is decided by its bytes: clean UTF-8 text is text
 * whatever the label says (a text body labelled image/png is not a way around the scanner), a
 * known signature is binary, and what remains is text when it is mostly text (legacy 8-bit
 * encodings), else binary.
 */
export function bodyKind(contentType: string | undefined, head: Uint8Array): BodyKind {
  const fromType = kindFromType(mediaType(contentType));
  if (fromType !== null) return fromType;
  const sample = head.subarray(0, SNIFF_BYTES);
  if (isCleanText(sample)) return "text";
  if (signatureOf(sample) !== null) return "binary";
  return isMostlyText(sample) ? "text" : "binary";
}

/** The name of the binary format `head` starts with, or null. */
export function signatureOf(head: Uint8Array): string | null {
  outer: for (const sig of SIGNATURES) {
    if (head.length < sig.at + sig.bytes.length) continue;
    for (let i = 0; i < sig.bytes.length; i++) if (head[sig.at + i] !== sig.bytes[i]) continue outer;
    return sig.name;
  }
  return null;
}

/** C0 controls that do not occur in text (everything below 0x20 but tab, LF, VT, FF, CR and ESC). */
function isBinaryControl(b: number): boolean {
  return b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0b && b !== 0x0c && b !== 0x0d && b !== 0x1b;
}

/** Valid UTF-8 (a sequence cut by the end of the sample is fine) with no binary control byte. */
function isCleanText(sample: Uint8Array): boolean {
  for (const b of sample) if (isBinaryControl(b)) return false;
  try {
    // stream: true buffers a multi-byte sequence cut at the end of the sample instead of failing.
    new TextDecoder("utf-8", { fatal: true }).decode(sample, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/** No NUL, and at most one byte in ten invalid as UTF-8 or a binary control: Latin-1 text passes, compressed data does not. */
function isMostlyText(sample: Uint8Array): boolean {
  let bad = 0;
  for (const b of sample) {
    if (b === 0) return false;
    if (isBinaryControl(b)) bad++;
  }
  const text = new TextDecoder("utf-8").decode(sample, { stream: true });
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 0xfffd) bad++;
  return bad * 10 <= sample.length;
}

// ---------------------------------------------------------------------------------------------
// Collecting fragments within a bound.

/** Collects fragments up to a bound and the errors met on the way. */
class Sink {
  readonly out: Fragment[] = [];
  readonly errors: string[] = [];
  full = false;
  /** Object keys walked (jsonFragments compares them with the keys written). */
  keys = 0;
  /** A subtree past maxDepth was kept whole (its keys are not walked). */
  cut = false;
  /** When asked for: the fragments that are text a classifier reports on (BodyFragments.reported). */
  reports: number[] | null = null;
  constructor(
    private readonly capacity: number,
    readonly maxDepth: number,
  ) {}

  /**
   * Adds a fragment (empty texts carry nothing and are skipped); false once the bound is hit.
   * `parent`: its sibling group when the caller knows it (Fragment.parent).
   */
  push(location: string, text: string, parent?: string | null): boolean {
    if (text.length === 0) return !this.full;
    if (this.out.length >= this.capacity) {
      this.full = true;
      this.fail(TOO_MANY_FRAGMENTS);
      return false;
    }
    this.out.push({ location, text, parent });
    return true;
  }

  fail(error: string): void {
    if (!this.errors.includes(error)) this.errors.push(error);
  }
}

/**
 * The fragments of one request body (decoded from its Content-Encoding by the caller). On an
 * error the whole body is added as one `body.text` fragment, so nothing it carries goes unscanned;
 * `error` says what went wrong and the caller decides what that means.
 */
export function bodyFragments(contentType: string | undefined, body: Uint8Array, limits?: FragmentLimits): BodyFragments {
  // bodyKind looks at the first SNIFF_BYTES itself, and only when the type does not decide.
  const kind = bodyKind(contentType, body);
  if (body.length === 0) return { fragments: [], kind };
  // Binary is never a way around the scanner: its printable runs (and UTF-16 text) are scanned.
  if (kind === "binary") {
    const strings = binaryText(body);
    return { fragments: strings.length === 0 ? [] : [{ location: "body.binary", text: strings }], kind };
  }
  const sink = newSink(limits);
  const text = decodeText(body);
  switch (kind) {
    case "json":
      jsonFragments(text, "body.json", "body.json-key", sink);
      break;
    case "ndjson":
      ndjsonFragments(text, sink);
      break;
    case "form":
      formFragments(text, "body.form", "body.form-key", sink);
      break;
    case "multipart":
      multipartFragments(contentType, body, "body.multipart", sink, 0);
      break;
    case "xml":
      // The engine decodes entities; attribute values and text nodes are all inside the raw text.
      sink.push("body.xml", text);
      break;
    case "text":
      sink.push("body.text", text);
      break;
  }
  // A NUL in a text body: UTF-16 (or NUL-padded) text would not read as UTF-8; read it as binary too.
  // (Multipart parts are judged one by one, in partFragments.)
  if (kind !== "multipart" && body.indexOf(0) >= 0) {
    const strings = binaryText(body);
    if (strings.length > 0) sink.push("body.binary", strings);
  }
  return collected(sink, text, kind);
}

/**
 * bodyFragments("application/json", <the UTF-8 bytes of `json`>) for a text already decoded (a
 * response body, an event's data): the same fragments, without encoding the text only for it to
 * be decoded again.
 */
export function jsonTextFragments(json: string, limits?: FragmentLimits, reports = false): BodyFragments {
  if (json.length === 0) return { fragments: [], kind: "json" };
  // What decoding its UTF-8 bytes would give: lone surrogates become U+FFFD (the encoder's
  // doing), a leading byte-order mark is dropped (the decoder's).
  let text = json.isWellFormed() ? json : json.toWellFormed();
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const sink = newSink(limits);
  if (reports) sink.reports = [];
  jsonFragments(text, "body.json", "body.json-key", sink);
  // U+0000 is the only character whose UTF-8 holds a NUL byte: as in bodyFragments.
  if (text.includes("\0")) {
    const strings = binaryText(Buffer.from(text, "utf8"));
    if (strings.length > 0) sink.push("body.binary", strings);
  }
  const out = collected(sink, text, "json");
  return sink.reports !== null && sink.reports.length > 0 ? { ...out, reported: sink.reports } : out;
}

function newSink(limits: FragmentLimits | undefined): Sink {
  const maxFragments = Math.max(1, limits?.maxFragments ?? DEFAULT_MAX_FRAGMENTS);
  // One slot stays free for the whole-body fallback, so the bound holds even on error.
  return new Sink(maxFragments - 1, limits?.maxDepth ?? DEFAULT_MAX_DEPTH);
}

/** The fragments collected, and on any error the whole text as well. */
function collected(sink: Sink, text: string, kind: BodyKind): BodyFragments {
  if (sink.errors.length === 0) return { fragments: sink.out, kind };
  return { fragments: [...sink.out, { location: "body.text", text }], kind, error: sink.errors.join("; ") };
}

const ASCII = new TextDecoder("latin1");
/** Printable runs shorter than 6 are noise in binary data (like `strings -n 6`). */
const PRINTABLE_RUN = /[\x20-\x7e\t\n\r]{6,}/g;
const UTF16LE_RUN = /(?:[\x20-\x7e\t\n\r]\0){6,}/g;
const UTF16BE_RUN = /(?:\0[\x20-\x7e\t\n\r]){6,}/g;

/**
 * The text inside binary data, as `strings` finds it: runs of printable ASCII (with tab, CR, LF),
 * one per line; and, when NUL bytes sit at every other position (UTF-16 text, or text padded
 * with NULs), the same bytes read as UTF-16LE and as UTF-16BE. A byte prepended to a secret,
 * a false image/png label or a PNG signature glued to text does not hide it.
 */
export function binaryText(bytes: Uint8Array): string {
  // One character per byte, so the byte patterns below are plain regexes over a string.
  const latin = ASCII.decode(bytes);
  const runs: string[] = [];
  for (const m of latin.matchAll(PRINTABLE_RUN)) runs.push(m[0]);
  // UTF-16 wherever it is, not only when the whole body is UTF-16: ASCII-range characters with a
  // NUL after them (little-endian) or before them (big-endian). Secrets are ASCII.
  for (const m of latin.matchAll(UTF16LE_RUN)) runs.push(m[0].replaceAll("\0", ""));
  for (const m of latin.matchAll(UTF16BE_RUN)) runs.push(m[0].replaceAll("\0", ""));
  return runs.join("\n");
}

/** Without `stream`, decode keeps no state between calls: one decoder serves every body. */
const UTF8 = new TextDecoder("utf-8");

/** Lossy UTF-8: a stray invalid byte must not hide the rest of a body from the scanner. */
function decodeText(bytes: Uint8Array): string {
  return UTF8.decode(bytes);
}

// ---------------------------------------------------------------------------------------------
// JSON and NDJSON.

/** Keys written as `.key`; anything else in brackets as a JSON string, e.g. `["we.ird"]`. */
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** One path segment for an object key (or a multipart part name). */
export function keySegment(key: string): string {
  return PLAIN_KEY.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** Integers past 2^53 lose digits in JSON.parse: card numbers have 13 to 19. */
const LONG_NUMBER = /\d{16}/;

/**
 * Keeps a number's source text (JSON.parse source text access, TC39 stage 3, in Bun's
 * JavaScriptCore), so `6011000990139424123` is scanned as sent, not as `6011000990139424000`.
 */
function keepNumberSource(this: unknown, _key: string, value: unknown, context?: { source?: string }): unknown {
  return typeof value === "number" && context?.source !== undefined ? context.source : value;
}

/**
 * Parses JSON, keeping long numbers' digits. The reviver costs ~8x, so it runs only when a long
 * number may be there. It also recurses: on very deep input the plain (iterative) parse is used,
 * and the error makes bodyFragments add the raw text, where the digits are intact.
 */
function parseJson(text: string, sink: Sink): unknown {
  if (!LONG_NUMBER.test(text)) return JSON.parse(text);
  try {
    return JSON.parse(text, keepNumberSource);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    sink.fail(JSON_TOO_DEEP);
    return JSON.parse(text);
  }
}

/**
 * Nesting depth and number of object keys of a JSON text, in one pass that skips strings. Run
 * before JSON.parse: a megabyte of `[[[[...` would stall the proxy in the parser (hundreds of
 * ms), and JSON.parse keeps only the last of duplicate keys (`{"a":"<secret>","a":"x"}`), which
 * the origin may read differently; comparing key counts finds them.
 */
export function jsonShape(text: string): { depth: number; keys: number } {
  let depth = 0;
  let max = 0;
  let keys = 0;
  for (let i = 0, n = text.length; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: skip to its closing quote, then see whether a colon follows (a key).
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      let j = i + 1;
      while (j < n && (text.charCodeAt(j) === 0x20 || text.charCodeAt(j) === 0x0a || text.charCodeAt(j) === 0x0d || text.charCodeAt(j) === 0x09)) j++;
      if (j < n && text.charCodeAt(j) === 0x3a) keys++;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return { depth: max, keys };
}

/** Deeper than this, a JSON body is not parsed but scanned as text (see jsonShape). */
const MAX_PARSE_DEPTH = 512;
export const DUPLICATE_KEYS = "duplicate JSON keys";

/** Fragments of one JSON document; false (with an error and nothing added) when it does not parse. */
function jsonFragments(text: string, valueRoot: string, keyRoot: string, sink: Sink): boolean {
  const shape = jsonShape(text);
  if (shape.depth > MAX_PARSE_DEPTH) {
    sink.fail(JSON_TOO_DEEP);
    return false;
  }
  let value: unknown;
  try {
    value = parseJson(text, sink);
  } catch {
    sink.fail(INVALID_JSON);
    return false;
  }
  const before = sink.keys;
  try {
    walkJson(value, valueRoot, "", keyRoot, sink, 0);
  } catch (err) {
    // Only reachable with a maxDepth far above the default: the walk recurses once per level.
    if (!(err instanceof RangeError)) throw err;
    sink.fail(JSON_TOO_DEEP);
  }
  // Fewer keys walked than written: duplicates. The raw text is then scanned too (the caller
  // adds it on any error).
  if (sink.keys - before !== shape.keys && !sink.full && !sink.cut) sink.fail(DUPLICATE_KEYS);
  return true;
}

/**
 * Depth-first walk in document order. Strings and numbers are values (card numbers arrive as
 * numbers); object keys are fragments too, at `<keyRoot><path of their object>` so that a key
 * which is a secret does not end up in a location. Past maxDepth the subtree is one fragment.
 */
function walkJson(value: unknown, valueRoot: string, path: string, keyRoot: string, sink: Sink, depth: number, parent?: string, inherited = false): boolean {
  if (typeof value === "string") return sink.push(valueRoot + path, value, parent);
  if (typeof value === "number" || typeof value === "bigint") return sink.push(valueRoot + path, String(value), parent);
  if (value === null || typeof value !== "object") return true;
  if (depth >= sink.maxDepth) {
    sink.cut = true;
    return sink.push(valueRoot + path, stringifyIteratively(value), parent);
  }
  // The children's sibling group is this container's location (what siblingKey reads back).
  const here = valueRoot + path;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!walkJson(value[i], valueRoot, `${path}[${i}]`, keyRoot, sink, depth + 1, here, inherited)) return false;
    }
    return true;
  }
  // A record's verdict covers what it holds: the spans or findings listed under it.
  const verdict = sink.reports !== null && (inherited || isVerdict(value as Record<string, unknown>));
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    sink.keys++;
    if (!sink.push(keyRoot + path, key, null)) return false;
    const child = (value as Record<string, unknown>)[key];
    const before = sink.out.length;
    if (!walkJson(child, valueRoot, path + keySegment(key), keyRoot, sink, depth + 1, here, verdict)) return false;
    if (verdict && typeof child === "string" && sink.out.length > before && REPORTED_KEY.test(key)) sink.reports!.push(before);
  }
  return true;
}

type Work = readonly [literal: true, text: string] | readonly [literal: false, value: unknown];

/**
 * JSON.stringify for parsed JSON, without recursion: JSON.stringify on a subtree nested 200k
 * levels deep overflows the stack, and JavaScriptCore took 1.5 s to unwind it (a 400 KB body as
 * a CPU denial of service). Linear in the size of the subtree.
 */
export function stringifyIteratively(root: unknown): string {
  const out: string[] = [];
  const work: Work[] = [[false, root]];
  for (let item = work.pop(); item !== undefined; item = work.pop()) {
    if (item[0]) {
      out.push(item[1]);
      continue;
    }
    const value = item[1];
    if (Array.isArray(value)) {
      // Pushed in reverse, so that popping writes them in order.
      work.push([true, "]"]);
      for (let i = value.length - 1; i >= 0; i--) {
        work.push([false, value[i]]);
        if (i > 0) work.push([true, ","]);
      }
      work.push([true, "["]);
    } else if (value !== null && typeof value === "object") {
      const entries = Object.entries(value);
      work.push([true, "}"]);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i] as [string, unknown];
        work.push([false, child], [true, `${JSON.stringify(key)}:`]);
        if (i > 0) work.push([true, ","]);
      }
      work.push([true, "{"]);
    } else {
      out.push(JSON.stringify(value) ?? "null");
    }
  }
  return out.join("");
}

/** RFC 7464 record separator: JSON text sequences put one before each record. */
const RECORD_SEPARATOR = /^\u001e+/;

/**
 * A text of JSON documents one per line (a JSON Lines log or export served as text, or as JSON
 * it is not): each line's fragments, at `body.ndjson[<line>]...`, with `reports` as for
 * jsonTextFragments; null when the text has fewer than two documents or a line that is not one.
 */
export function ndjsonTextFragments(text: string, limits?: FragmentLimits, reports = false): BodyFragments | null {
  const sink = newSink(limits);
  if (reports) sink.reports = [];
  if (ndjsonFragments(text, sink, true) < 2) return null;
  const out = collected(sink, text, "ndjson");
  return sink.reports !== null && sink.reports.length > 0 ? { ...out, reported: sink.reports } : out;
}

/**
 * One JSON document per line, `body.ndjson[<line>]...` (0-based line index); a bad line is kept
 * as text. `strict`: a line that is no JSON object or array, or any error, ends the walk with -1.
 * Returns the number of documents walked.
 */
function ndjsonFragments(text: string, sink: Sink, strict = false): number {
  let documents = 0;
  const lines = text.split("\n");
  for (let n = 0; n < lines.length && !sink.full; n++) {
    const line = (lines[n] as string).replace(RECORD_SEPARATOR, "").trim();
    if (line.length === 0) continue;
    const root = `body.ndjson[${n}]`;
    if (strict && line.charCodeAt(0) !== 123 && line.charCodeAt(0) !== 91) return -1;
    const parsed = jsonFragments(line, root, `body.ndjson-key[${n}]`, sink);
    if (strict && (!parsed || sink.errors.length > 0)) return -1;
    if (!parsed) sink.push(root, line);
    else documents++;
  }
  return documents;
}

// ---------------------------------------------------------------------------------------------
// Forms and query strings.

/**
 * `key=value` pairs of a query string or form body, split on `&` only (WHATWG URL
 * "application/x-www-form-urlencoded parsing"); both halves raw. A pair without `=` is a key.
 */
export function* formPairs(text: string): Generator<readonly [key: string, value: string]> {
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("&", start);
    if (end < 0) end = text.length;
    if (end > start) {
      const eq = text.indexOf("=", start);
      yield eq < 0 || eq > end ? [text.slice(start, end), ""] : [text.slice(start, eq), text.slice(eq + 1, end)];
    }
    start = end + 1;
  }
}

/** Values at `<valueRoot>.<key>`, keys at `<keyRoot>` (a secret can be sent as a key). */
function formFragments(text: string, valueRoot: string, keyRoot: string, sink: Sink): void {
  for (const [key, value] of formPairs(text)) {
    if (!sink.push(keyRoot, key) || !sink.push(`${valueRoot}.${key}`, value)) return;
  }
}

// ---------------------------------------------------------------------------------------------
// Multipart (RFC 2046 section 5.1.1, RFC 7578).

/** RFC 2046 section 5.1.1 `boundary := 0*69<bchars> bcharsnospace`. */
export const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
const CRLF = Buffer.from("\r\n");
const CRLFCRLF = Buffer.from("\r\n\r\n");

/** Parameters of a header value such as Content-Type or Content-Disposition, names lower-cased; quoted values unescaped. */
export function headerParams(value: string): Map<string, string> {
  const params = new Map<string, string>();
  let i = value.indexOf(";");
  while (i >= 0 && i < value.length) {
    i++;
    const eq = value.indexOf("=", i);
    if (eq < 0) break;
    const semi = value.indexOf(";", i);
    if (semi >= 0 && semi < eq) {
      // A parameter without a value (`; foo;`): skip it rather than read `foo; name` as a name.
      i = semi;
      continue;
    }
    const name = value.slice(i, eq).trim().toLowerCase();
    let j = eq + 1;
    while (value.charAt(j) === " " || value.charAt(j) === "\t") j++;
    let param = "";
    if (value.charAt(j) === '"') {
      // RFC 9110 section 5.6.4: quoted-string with backslash quoted-pairs.
      for (j++; j < value.length && value.charAt(j) !== '"'; j++) {
        if (value.charAt(j) === "\\") j++;
        param += value.charAt(j);
      }
      i = value.indexOf(";", j);
    } else {
      const semi = value.indexOf(";", j);
      param = value.slice(j, semi < 0 ? undefined : semi).trim();
      i = semi;
    }
    if (name.length > 0 && !params.has(name)) params.set(name, param);
  }
  return params;
}

/**
 * The parts of a multipart body, each at `<root>.<name>` (or `<root>[<index>]` when unnamed).
 * Binary parts are skipped, JSON parts walked, nested multipart parsed (up to maxDepth), other
 * parts kept as text. Preamble and epilogue are kept too: a parser upstream may read them.
 * Malformed structure is an error; bodyFragments then adds the whole body as text.
 */
function multipartFragments(contentType: string | undefined, body: Uint8Array, root: string, sink: Sink, depth: number): boolean {
  const boundary = headerParams(contentType ?? "").get("boundary");
  if (boundary === undefined || !BOUNDARY.test(boundary) || depth >= sink.maxDepth) {
    sink.fail(MALFORMED_MULTIPART);
    return false;
  }
  const parts = splitMultipart(Buffer.from(body.buffer, body.byteOffset, body.byteLength), boundary);
  if (parts === null) {
    sink.fail(MALFORMED_MULTIPART);
    return false;
  }
  keepIfText(sink, `${root}-preamble`, parts.preamble);
  for (const [index, part] of parts.parts.entries()) {
    if (!partFragments(part, index, root, sink, depth)) return false;
  }
  keepIfText(sink, `${root}-epilogue`, parts.epilogue);
  return true;
}

interface MultipartParts {
  readonly preamble: Uint8Array;
  /** Each part as it is between delimiters: headers, blank line, content. */
  readonly parts: readonly Buffer[];
  readonly epilogue: Uint8Array;
}

/** Splits on `--boundary` delimiters (RFC 2046 section 5.1.1); null when the structure is broken. */
function splitMultipart(buf: Buffer, boundary: string): MultipartParts | null {
  const dash = Buffer.from(`--${boundary}`, "latin1");
  const delimiter = Buffer.concat([CRLF, dash]);
  // The first delimiter may open the body; later ones follow a CRLF, which belongs to them.
  let at = buf.subarray(0, dash.length).equals(dash) ? 0 : buf.indexOf(delimiter);
  if (at < 0) return null;
  const preamble = buf.subarray(0, at);
  let cursor = at + (at === 0 && buf[0] === 0x2d ? dash.length : delimiter.length);
  const parts: Buffer[] = [];
  for (;;) {
    if (buf[cursor] === 0x2d && buf[cursor + 1] === 0x2d) return { preamble, parts, epilogue: afterClose(buf, cursor + 2) };
    // Transport padding (linear white space) may follow a delimiter before its CRLF.
    while (buf[cursor] === 0x20 || buf[cursor] === 0x09) cursor++;
    if (buf[cursor] !== 0x0d || buf[cursor + 1] !== 0x0a) return null;
    cursor += 2;
    at = buf.indexOf(delimiter, cursor);
    if (at < 0) return null;
    parts.push(buf.subarray(cursor, at));
    cursor = at + delimiter.length;
  }
}

/** The epilogue: what follows the close delimiter's padding and line break. */
function afterClose(buf: Buffer, at: number): Uint8Array {
  while (buf[at] === 0x20 || buf[at] === 0x09) at++;
  return buf.subarray(buf[at] === 0x0d && buf[at + 1] === 0x0a ? at + 2 : at);
}

/** One part's fragments; false only when the bound was hit. */
function partFragments(part: Buffer, index: number, root: string, sink: Sink, depth: number): boolean {
  // A part with no header starts with the blank line itself.
  const split = part.subarray(0, 2).equals(CRLF) ? 0 : part.indexOf(CRLFCRLF);
  if (split < 0) {
    sink.fail(MALFORMED_MULTIPART);
    return sink.push(`${root}[${index}]`, decodeText(part));
  }
  const headers = partHeaders(decodeText(part.subarray(0, split)));
  const content = part.subarray(split === 0 ? 2 : split + 4);
  const disposition = headerParams(headers.get("content-disposition") ?? "");
  const name = disposition.get("name");
  const filename = disposition.get("filename*") ?? disposition.get("filename");
  const segment = name === undefined ? `[${index}]` : keySegment(name);
  const location = root + segment;
  if (name !== undefined && !sink.push(`${root}-key`, name)) return false;
  if (filename !== undefined && !sink.push(`${root}-filename${segment}`, filename)) return false;
  const contentType = headers.get("content-type");
  switch (bodyKind(contentType, content.subarray(0, SNIFF_BYTES))) {
    case "binary": {
      const strings = binaryText(content);
      return strings.length === 0 ? true : sink.push(location, strings);
    }
    case "json": {
      const text = decodeText(content);
      if (!jsonFragments(text, location, `${root}-key${segment}`, sink)) return sink.push(location, text);
      return !sink.full;
    }
    case "multipart":
      if (!multipartFragments(contentType, content, location, sink, depth + 1)) return sink.push(location, decodeText(content));
      return !sink.full;
    default:
      if (content.indexOf(0) >= 0 && !sink.push(`${location}.binary`, binaryText(content))) return false;
      return sink.push(location, decodeText(content));
  }
}

/** Part header fields by lower-cased name, first occurrence wins. */
function partHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}

/** Preamble and epilogue are usually empty or a line of prose; keep them unless blank. */
function keepIfText(sink: Sink, location: string, bytes: Uint8Array): void {
  const text = decodeText(bytes);
  if (text.trim().length > 0) sink.push(location, text);
}
