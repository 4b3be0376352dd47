import { BASE32_RUN, decodeBase32Run } from "./base32.ts";
import { decodeBase64Candidate } from "./base64.ts";
import { decodeHexRun, HEX_RUN } from "./hex.ts";

/**
 * A run of the base64 alphabets (both, RFC 4648 §4-5) and up to six `=`. Every base64, base32
 * (§6, padding up to six) and plain or dash-separated hex run is inside one, so a single pass
 * over the text finds the candidates of all three decoders: three regex passes over every body
 * cost three times one.
 */
// The look-behind starts matches only where a run starts: the same matches (a maximal run is
// found from its first character), without retrying from inside every short word (~20% faster).
const ALPHABET_RUN = /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,6}/g;
/** Hex pairs separated by `:` or a space: the separators are outside the base64 alphabet (hex.ts). */
const SPACED_HEX = /[0-9A-Fa-f]{2}([: ])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){6,}/g;
const TRAILING_PAD = /=+$/;
/** Narrowest line width taken for wrapped base64 (PEM uses 64, MIME and `base64` 76). */
const MIN_WRAP_WIDTH = 40;

/** Quick tests on one run, so most runs (identifiers, paths, ids) reach no decoder's regex. */
const HAS_BASE32 = /[A-Z2-7]{16}|[a-z2-7]{16}/;
const HAS_HEX = /[0-9A-Fa-f]{16}|[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-/;
/** Hex of one case with dashes (UUIDs, digests): never plausible as base64 (base64.ts). */
const HEX_SHAPED = /^(?:[0-9a-f-]+|[0-9A-F-]+)$/;

export interface RunViews {
  base64: string | null;
  base32: string | null;
  hex: string | null;
}

type Span = readonly [start: number, end: number, text: string];

/** `text` with the spans (sorted, non-overlapping) replaced, or null when there are none. */
function splice(text: string, spans: readonly Span[]): string | null {
  if (spans.length === 0) return null;
  let out = "";
  let last = 0;
  for (const [start, end, replacement] of spans) {
    out += text.slice(last, start) + replacement;
    last = end;
  }
  return out + text.slice(last);
}

/** Pushes the decodable matches of `re` inside `run` (at `at` in the text) as spans; returns the budget left. */
function decodeWithin(run: string, at: number, re: RegExp, decode: (run: string, maxOut: number) => string | null, left: number, out: Span[]): number {
  re.lastIndex = 0;
  for (let m = re.exec(run); m !== null; m = re.exec(run)) {
    const d = decode(m[0], left);
    if (d === null || d === m[0]) continue;
    left -= d.length;
    out.push([at + m.index, at + m.index + m[0].length, d]);
  }
  return left;
}

/**
 * The base64, base32 and hex views of `text` (each as base64Decode, base32Decode and hexDecode
 * would produce it), from one pass over the text. Each decoder may decode up to `maxOut`. Hex
 * pairs spaced by `:` or blanks are found by a second pass; where such a run touches another hex
 * run (`..:65:66736b5f..`), the one found first is decoded and the other left as written, where
 * hexDecode's single leftmost scan might split them differently.
 */
export function decodeRunViews(text: string, maxOut: number): RunViews {
  const b64: Span[] = [];
  const b32: Span[] = [];
  const hex: Span[] = [];
  const b64Budget = { left: maxOut };
  let b32Left = maxOut;
  let hexLeft = maxOut;
  // Base64 wrapped at a fixed width (76 by `base64` and MIME, 64 by PEM): lines of one length,
  // a multiple of 4, one line break between them. A secret across a wrap is in neither line.
  const wrapped: Span[] = [];
  let block: { start: number; end: number; width: number; lines: string[] } | null = null;
  const closeBlock = () => {
    if (block !== null && block.lines.length >= 2) {
      const d = decodeBase64Candidate(block.lines.join(""), b64Budget);
      if (d !== null) wrapped.push([block.start, block.end, d]);
    }
    block = null;
  };
  ALPHABET_RUN.lastIndex = 0;
  for (let m = ALPHABET_RUN.exec(text); m !== null; m = ALPHABET_RUN.exec(text)) {
    const run = m[0];
    const at = m.index;
    const gap = block === null ? -1 : at - block.end;
    const afterBreak = gap === 1 ? text.charCodeAt(at - 1) === 0x0a : gap === 2 && text.charCodeAt(at - 2) === 0x0d && text.charCodeAt(at - 1) === 0x0a;
    if (block !== null && afterBreak && block.lines[block.lines.length - 1]!.length === block.width && run.length <= block.width) {
      block.lines.push(run);
      block.end = at + run.length;
    } else {
      closeBlock();
      if (run.length >= MIN_WRAP_WIDTH && run.length % 4 === 0) block = { start: at, end: at + run.length, width: run.length, lines: [run] };
    }
    if (HEX_SHAPED.test(run)) {
      // A digest or an id: only hex can hold text here. A run of digits alone is one hex run.
      if (run.indexOf("-") >= 0) {
        if (HAS_HEX.test(run)) hexLeft = decodeWithin(run, at, HEX_RUN, decodeHexRun, hexLeft, hex);
      } else {
        const d = decodeHexRun(run, hexLeft);
        if (d !== null) {
          hexLeft -= d.length;
          hex.push([at, at + run.length, d]);
        }
      }
      continue;
    }
    const pad = run.charCodeAt(run.length - 1) === 61 ? (TRAILING_PAD.exec(run)?.[0].length ?? 0) : 0;
    const base64Run = pad > 2 ? run.slice(0, run.length - pad + 2) : run;
    const d64 = decodeBase64Candidate(base64Run, b64Budget, true);
    if (d64 !== null) b64.push([at, at + base64Run.length, d64]);
    if (HAS_BASE32.test(run)) b32Left = decodeWithin(run, at, BASE32_RUN, decodeBase32Run, b32Left, b32);
    if (HAS_HEX.test(run)) hexLeft = decodeWithin(run, at, HEX_RUN, decodeHexRun, hexLeft, hex);
  }
  closeBlock();
  if (wrapped.length > 0) {
    // A decoded block replaces the lines it is made of.
    const inBlock = (span: Span) => wrapped.some(([from, to]) => span[0] < to && span[1] > from);
    const merged = [...b64.filter((span) => !inBlock(span)), ...wrapped].sort((a, b) => a[0] - b[0]);
    b64.length = 0;
    b64.push(...merged);
  }
  if (text.includes(":") || text.includes(" ")) {
    const spaced: Span[] = [];
    SPACED_HEX.lastIndex = 0;
    for (let m = SPACED_HEX.exec(text); m !== null; m = SPACED_HEX.exec(text)) {
      const d = decodeHexRun(m[0], hexLeft);
      if (d === null) continue;
      hexLeft -= d.length;
      spaced.push([m.index, m.index + m[0].length, d]);
    }
    if (spaced.length > 0) {
      // Merge by position; a spaced run overlapping a run already replaced is dropped.
      const merged = [...hex, ...spaced].sort((a, b) => a[0] - b[0]);
      hex.length = 0;
      for (const span of merged) if (hex.length === 0 || span[0] >= hex[hex.length - 1]![1]) hex.push(span);
    }
  }
  return { base64: splice(text, b64), base32: splice(text, b32), hex: splice(text, hex) };
}
