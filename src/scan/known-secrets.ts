/**
 * Known-secret detection (issue 4): the operator's own secrets (environment variables, secret
 * files) found wherever they appear in outgoing text, as written or encoded.
 *
 * Every value is turned, once at construction, into the literal strings it can take on the wire
 * ("needles"): the value itself; its UTF-8 bytes as hex (lower, upper, and with ":" or " "
 * between bytes); as base64 (RFC 4648 §4) and base64url (§5) at each of the three byte
 * alignments it can have inside a longer blob; and percent-encoded (RFC 3986 §2.1), fully and in
 * the usual partial forms. All needles go into ONE RegExp, so a scan is a single left-to-right
 * pass over the text whatever the number of secrets ("Compile once, run many").
 *
 * Values never leave this module: they live only in the closure of `scan` (no property of the
 * returned object holds them or a hash of them), a finding carries the secret's name, and no
 * error message is built from them.
 */

export interface KnownSecret {
  /** Where the value came from, e.g. `env:OPENAI_API_KEY` or `file:/run/secrets/db`; safe to show. */
  readonly name: string;
  readonly value: string;
}

/** How the value was written where it was found. */
export type KnownSecretForm = "raw" | "base64" | "base64url" | "hex" | "percent";

export interface KnownSecretMatch {
  readonly rule: "dlp.known-secret";
  readonly name: string;
  readonly form: KnownSecretForm;
  /** UTF-16 offsets of the matched (possibly encoded) text in the scanned string. */
  readonly start: number;
  readonly end: number;
  /** `known:<name>`: never any character of the value, nor a hash of it (a hash of a short or low-entropy value can be guessed offline). */
  readonly preview: string;
}

export interface KnownSecretScanner {
  /** Number of secrets compiled into the scanner (skipped ones excluded). */
  readonly size: number;
  scan(text: string): KnownSecretMatch[];
  /**
   * The name of a secret whose first `min` or more characters (but not all) end `text`, as
   * written; null when none does. For text that goes out in pieces (WebSocket messages): the
   * piece that starts a secret is refused, not only the one that completes it.
   */
  partialAtEnd(text: string, min?: number): string | null;
  /** Redaction is not offered here: the caller redacts by the offsets. */
  redact?: never;
}

export interface KnownSecretOptions {
  /** Values with fewer code points are refused (too many false positives) and listed in `skipped`. Default 8. */
  readonly minLength?: number;
}

export const KNOWN_SECRET_RULE = "dlp.known-secret";
export const DEFAULT_MIN_LENGTH = 8;
/**
 * Encoded forms shorter than this are dropped: only reachable with a small `minLength`, and a
 * 4-character base64 fragment would match ordinary text. The raw form is always kept.
 */
const MIN_ENCODED_NEEDLE = 8;

interface Needle {
  readonly text: string;
  readonly name: string;
  readonly form: KnownSecretForm;
}

const utf8 = new TextEncoder();
const HEX_LOWER = "0123456789abcdef";
const HEX_UPPER = "0123456789ABCDEF";
const B64_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function hexOf(bytes: Uint8Array, digits: string, separator: string): string {
  const parts: string[] = [];
  for (const b of bytes) parts.push(digits[b >> 4]! + digits[b & 15]!);
  return parts.join(separator);
}

/** Standard base64 (RFC 4648 §4) without padding. */
function base64Of(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64_STD[n >> 18]! + B64_STD[(n >> 12) & 63]! + B64_STD[(n >> 6) & 63]! + B64_STD[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64_STD[n >> 18]! + B64_STD[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64_STD[n >> 18]! + B64_STD[(n >> 12) & 63]! + B64_STD[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * The base64 characters that depend only on the secret's bytes when the secret starts `shift`
 * bytes (0, 1, 2) into a 3-byte group of a longer blob: `Bearer <secret>` or `user:<secret>`
 * encoded as a whole puts it at any alignment. Character j covers bits [6j, 6j+6) of the stream;
 * it is stable when those bits all belong to the secret, i.e. 6j >= 8*shift and
 * 6j + 6 <= 8*(shift + n). The partial characters at either end (which also depend on the
 * neighbouring bytes, or on the padding) are dropped; at most 4 bits of the first byte and 4 of
 * the last go unchecked.
 */
function stableBase64(bytes: Uint8Array, shift: number): string {
  const shifted = new Uint8Array(shift + bytes.length);
  shifted.set(bytes, shift);
  const first = Math.ceil((8 * shift) / 6);
  const end = Math.floor((8 * (shift + bytes.length)) / 6);
  return base64Of(shifted).slice(first, end);
}

/** Bytes outside `keep` become %XX (RFC 3986 §2.1); a space becomes `space` when given. */
function percentOf(bytes: Uint8Array, keep: RegExp | null, digits: string, space: string | null): string {
  let out = "";
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    if (b < 0x80 && keep !== null && keep.test(ch)) out += ch;
    else if (b === 0x20 && space !== null) out += space;
    else out += "%" + digits[b >> 4]! + digits[b & 15]!;
  }
  return out;
}

/** RFC 3986 §2.3 unreserved characters: what a strict encoder leaves as is. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
/** What ECMAScript encodeURIComponent leaves as is (unreserved plus `!'()*`). */
const URI_COMPONENT = /^[A-Za-z0-9\-._~!'()*]$/;
/** What application/x-www-form-urlencoded leaves as is (WHATWG URL, "urlencoded serializer"); space is `+`. */
const FORM = /^[A-Za-z0-9*\-._]$/;

/** Every wire form of one value, raw first (first wins when two forms are the same string). */
function formsOf(value: string): [KnownSecretForm, string][] {
  const bytes = utf8.encode(value);
  const forms: [KnownSecretForm, string][] = [["raw", value]];
  for (const digits of [HEX_LOWER, HEX_UPPER]) {
    for (const sep of ["", ":", " "]) forms.push(["hex", hexOf(bytes, digits, sep)]);
  }
  for (let shift = 0; shift < 3; shift++) {
    const std = stableBase64(bytes, shift);
    forms.push(["base64", std]);
    forms.push(["base64url", std.replace(/\+/g, "-").replace(/\//g, "_")]);
  }
  for (const digits of [HEX_UPPER, HEX_LOWER]) {
    forms.push(["percent", percentOf(bytes, null, digits, null)]);
    forms.push(["percent", percentOf(bytes, UNRESERVED, digits, null)]);
    forms.push(["percent", percentOf(bytes, URI_COMPONENT, digits, null)]);
    forms.push(["percent", percentOf(bytes, FORM, digits, "+")]);
  }
  return forms.filter(([form, text]) => text.length > 0 && (form === "raw" || text.length >= MIN_ENCODED_NEEDLE));
}

const METACHARACTERS = /[\\^$.*+?()[\]{}|/-]/g;
function escapeLiteral(text: string): string {
  return text.replace(METACHARACTERS, "\\$&");
}

/**
 * The alternation of all needles, factored by common prefix (a trie written as a pattern):
 * `abc(?:d|ef)` rather than `abcd|abcef`. It matches exactly the same strings as the flat
 * alternation; a needle that is a prefix of another becomes an optional tail, `ab(?:c)?`, whose
 * greedy `?` prefers the longer needle (longest first). Factoring keeps the pattern smaller and,
 * on Bun 1.4.5, reached full speed from the first scan, where the flat alternation of 4000
 * needles ran its first 10 MiB at ~150 MB/s before its steady ~1-2 GB/s.
 * `sorted` is sorted by UTF-16 code unit and has no duplicates, so a range's common prefix is the
 * common prefix of its first and last needle. Recursion happens only at branch points.
 */
function trieSource(sorted: readonly string[], lo: number, hi: number, depth: number): string {
  const first = sorted[lo]!;
  if (hi - lo === 1) return escapeLiteral(first.slice(depth));
  const last = sorted[hi - 1]!;
  let common = depth;
  while (common < first.length && common < last.length && first.charCodeAt(common) === last.charCodeAt(common)) common++;
  const prefix = escapeLiteral(first.slice(depth, common));
  // After sorting, a needle that ends at `common` is the first of the range.
  const ends = first.length === common;
  const start = ends ? lo + 1 : lo;
  const branches: string[] = [];
  for (let i = start; i < hi; ) {
    const unit = sorted[i]!.charCodeAt(common);
    let j = i + 1;
    while (j < hi && sorted[j]!.charCodeAt(common) === unit) j++;
    branches.push(trieSource(sorted, i, j, common));
    i = j;
  }
  const alternation = branches.length === 1 && !ends ? branches[0]! : `(?:${branches.join("|")})`;
  return prefix + alternation + (ends ? "?" : "");
}

/**
 * Compiles the known values into one scanner. Values shorter than `minLength` code points are
 * refused and their names listed in `skipped`. Two secrets with the same value report the first
 * name. Throws (without any value in the message) if the pattern cannot be compiled.
 */
export function compileKnownSecrets(
  secrets: readonly KnownSecret[],
  options: KnownSecretOptions = {},
): KnownSecretScanner & { readonly skipped: readonly string[] } {
  const minLength = options.minLength ?? DEFAULT_MIN_LENGTH;
  if (!Number.isInteger(minLength) || minLength < 1) throw new RangeError("known secrets: minLength must be a positive integer");

  const skipped: string[] = [];
  const needles = new Map<string, Needle>();
  const raw: KnownSecret[] = [];
  let size = 0;
  for (const { name, value } of secrets) {
    let codePoints = 0;
    for (const _ of value) if (++codePoints >= minLength) break;
    if (codePoints < minLength) {
      skipped.push(name);
      continue;
    }
    size++;
    raw.push({ name, value });
    for (const [form, text] of formsOf(value)) {
      if (!needles.has(text)) needles.set(text, { text, name, form });
    }
  }

  const sorted = [...needles.keys()].sort();
  let pattern: RegExp | null = null;
  if (sorted.length > 0) {
    try {
      pattern = new RegExp(trieSource(sorted, 0, sorted.length, 0), "g");
      // Compile now (JavaScriptCore compiles a RegExp on its first use), not on the first body.
      pattern.test("");
      pattern.lastIndex = 0;
    } catch {
      // The engine's message quotes the pattern, which is made of the values.
      throw new Error(`known secrets: could not compile the matcher for ${size} secrets (${sorted.length} forms)`);
    }
  }
  const re = pattern;

  function scan(text: string): KnownSecretMatch[] {
    const out: KnownSecretMatch[] = [];
    if (re === null || text.length === 0) return out;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const needle = needles.get(m[0])!;
      out.push({ rule: KNOWN_SECRET_RULE, name: needle.name, form: needle.form, start: m.index, end: m.index + m[0].length, preview: `known:${needle.name}` });
    }
    re.lastIndex = 0;
    return out;
  }

  function partialAtEnd(text: string, min = DEFAULT_MIN_LENGTH): string | null {
    for (const { name, value } of raw) {
      for (let k = Math.min(value.length - 1, text.length); k >= min; k--) {
        if (text.endsWith(value.slice(0, k))) return name;
      }
    }
    return null;
  }

  return Object.freeze({ size, skipped: Object.freeze(skipped), scan, partialAtEnd });
}
