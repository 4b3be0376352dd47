/**
 * Undoes an HTTP Content-Encoding (RFC 9110 §8.4) so the scanners see the content, within limits
 * that stop a decompression bomb before its output is allocated. Fail closed: a body that cannot
 * be decoded, or only beyond the limits, is a result with a reason code, never the raw bytes.
 *
 * The decompressors are passed in (`codecs`, normally the `node:zlib` module itself:
 * `decodeContentEncoding(body, ce, limits, zlib)`). They are a computation, not I/O, but scan/ is
 * held to a short list of packages by test/architecture.test.ts and node:zlib is not on it;
 * receiving the functions keeps this module within the import table. The import below is
 * type-only and erased at build time.
 *
 * Checked on Bun 1.4.5: the sync functions honour `maxOutputLength` (RangeError
 * ERR_BUFFER_TOO_LARGE) for gunzip, inflate, inflateRaw and brotli, and stop early: a 500 MiB
 * gzip bomb with a 1 MiB limit was refused in under 1 ms with no measurable growth in RSS; an
 * output of exactly the limit is accepted.
 */
import type * as Zlib from "node:zlib";

export interface InflateLimits {
  /** Most bytes any decoding step may produce. */
  maxOutputBytes: number;
  /** Most output bytes per byte of the original (still encoded) body, e.g. 100. */
  maxRatio: number;
}

export type InflateResult =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; code: "decode_bomb" | "decode_error" | "unsupported_encoding"; detail: string };

/** The decompressors used, with node:zlib's signatures; pass `node:zlib` itself. */
export type ContentCodecs = Pick<typeof Zlib, "gunzipSync" | "inflateSync" | "inflateRawSync" | "brotliDecompressSync">;

/**
 * More codings than this in one header is refused: real servers apply one, rarely two; each step
 * may produce up to maxOutputBytes, so the cap also bounds the work per body.
 */
export const MAX_CODINGS = 4;

type Coding = "gzip" | "deflate" | "br";

/**
 * Content-coding names are case-insensitive tokens (RFC 9110 §8.4.1). `x-gzip` is gzip
 * (§8.4.1.3). `identity` is no coding and is skipped. `compress` (LZW, §8.4.1.1) has no decoder
 * here. `zstd` (RFC 8878) is refused too: Bun 1.4.5's zstdDecompressSync returned an empty output
 * without an error for a truncated frame (fail open), and maxOutputLength is not documented to
 * bound the memory of a frame's declared window (RFC 8878 §3.1.1.1.2); the proxy is expected to
 * offer only gzip, deflate and br upstream.
 */
const CODINGS: Readonly<Record<string, Coding>> = { gzip: "gzip", "x-gzip": "gzip", deflate: "deflate", br: "br" };

/** The node:zlib error code for an output larger than maxOutputLength. */
const TOO_LARGE = "ERR_BUFFER_TOO_LARGE";

/**
 * Parses the header into codings in the order they were applied. The field is a comma-separated
 * list (RFC 9110 §5.6.1: empty elements and whitespace around them are ignored), and several
 * Content-Encoding header lines are one list joined by commas (§5.3), so the caller may pass them
 * joined. Returns the unknown name instead when there is one.
 */
function parseCodings(header: string): { codings: Coding[] } | { unknown: string } {
  const codings: Coding[] = [];
  for (const raw of header.split(",")) {
    const name = raw.trim().toLowerCase();
    if (name === "" || name === "identity") continue;
    const coding = CODINGS[name];
    if (coding === undefined) return { unknown: name };
    codings.push(coding);
  }
  return { codings };
}

/**
 * RFC 1950 §2.2: a zlib stream starts with CMF (compression method 8 = deflate in the low
 * nibble, window size <= 32 KiB in the high one) and FLG, and CMF*256 + FLG is a multiple of 31.
 */
function hasZlibHeader(bytes: Uint8Array): boolean {
  if (bytes.length < 2) return false;
  const cmf = bytes[0]!;
  const flg = bytes[1]!;
  return (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && ((cmf << 8) | flg) % 31 === 0;
}

/** A safe label for an error: its code only (zlib codes are short upper-case names), never a message that could quote data. */
function errorCode(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === "string" && /^[A-Za-z0-9_]{1,64}$/.test(code)) return code;
  }
  return "unknown error";
}

/** The header is the sender's text: shown shortened, with anything but token characters (RFC 9110 §5.6.2) replaced. */
function printableToken(name: string): string {
  return name.slice(0, 32).replace(/[^A-Za-z0-9!#$%&'*+.^_`|~-]/g, "?");
}

function isTooLarge(error: unknown): boolean {
  return errorCode(error) === TOO_LARGE;
}

/** Runs one decompressor; throws what it throws. */
function inflateOne(codecs: ContentCodecs, coding: Coding, input: Uint8Array, cap: number): Uint8Array {
  const options = { maxOutputLength: cap };
  switch (coding) {
    case "gzip":
      // RFC 1952. Several members one after another decode to their concatenation (§2.2), as
      // gzip(1) and browsers do.
      return codecs.gunzipSync(input, options);
    case "br":
      // RFC 7932.
      return codecs.brotliDecompressSync(input, options);
    case "deflate": {
      // RFC 9110 §8.4.1.2: "deflate" is a zlib stream (RFC 1950) holding deflate data (RFC 1951).
      // Some servers send raw deflate without the zlib wrapper, and browsers accept both, so a
      // body that does not start with a zlib header, or fails as one, is tried as raw deflate.
      if (hasZlibHeader(input)) {
        try {
          return codecs.inflateSync(input, options);
        } catch (error) {
          if (isTooLarge(error)) throw error;
        }
      }
      return codecs.inflateRawSync(input, options);
    }
  }
}

/**
 * Decodes `body` per its Content-Encoding header. Stacked codings ("gzip, br") were applied in
 * the order listed, so they are undone from the last to the first (RFC 9110 §8.4). Every step's
 * output is held to min(maxOutputBytes, maxRatio * body.length): the ratio is measured against
 * the body as received, so stacking cannot multiply the allowance. A missing or empty header, or
 * only `identity`, returns the body as is. An empty body is returned as is whatever the coding
 * (a HEAD response or a 204 carries the header with no content).
 */
export function decodeContentEncoding(body: Uint8Array, contentEncoding: string | undefined, limits: InflateLimits, codecs: ContentCodecs): InflateResult {
  if (!(limits.maxOutputBytes >= 0) || !(limits.maxRatio >= 0)) throw new RangeError("content decoding: limits must be non-negative numbers");
  const parsed = parseCodings(contentEncoding ?? "");
  if ("unknown" in parsed) {
    return { ok: false, code: "unsupported_encoding", detail: `content-encoding "${printableToken(parsed.unknown)}" is not supported` };
  }
  const { codings } = parsed;
  if (codings.length === 0 || body.length === 0) return { ok: true, bytes: body };
  if (codings.length > MAX_CODINGS) {
    return { ok: false, code: "unsupported_encoding", detail: `${codings.length} stacked content-codings (at most ${MAX_CODINGS} are decoded)` };
  }

  const byRatio = Math.floor(limits.maxRatio * body.length);
  const cap = Math.min(limits.maxOutputBytes, byRatio);
  const capName = byRatio < limits.maxOutputBytes ? `${limits.maxRatio}x the ${body.length}-byte body` : `${limits.maxOutputBytes} bytes`;

  let bytes = body;
  for (let i = codings.length - 1; i >= 0; i--) {
    const coding = codings[i]!;
    try {
      // maxOutputLength must be at least 1; an output above `cap` is refused just below.
      bytes = inflateOne(codecs, coding, bytes, Math.max(1, cap));
    } catch (error) {
      if (isTooLarge(error)) return { ok: false, code: "decode_bomb", detail: `${coding} output exceeds ${capName}` };
      return { ok: false, code: "decode_error", detail: `${coding} body could not be decoded (${errorCode(error)})` };
    }
    if (bytes.length > cap) return { ok: false, code: "decode_bomb", detail: `${coding} output exceeds ${capName}` };
  }
  return { ok: true, bytes };
}
