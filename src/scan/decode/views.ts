import { base32Decode } from "./base32.ts";
import { base64Decode } from "./base64.ts";
import { hexDecode } from "./hex.ts";
import { htmlEntityDecode } from "./html.ts";
import { jsonUnescape } from "./json-escape.ts";
import { percentDecode } from "./percent.ts";
import { quotedPrintableDecode } from "./quoted-printable.ts";
import { decodeRunViews, type RunViews } from "./runs.ts";

export type DecoderName = "percent" | "json" | "html" | "qp" | "base64" | "base32" | "hex" | "layered";

/**
 * A decoding pass over a whole fragment: every run it recognises is replaced by its decoding,
 * the rest is kept. Returns null when nothing changed. `maxOut` caps the decoded bytes of the
 * run-based binary decoders; no decoder's output is ever longer than its input.
 */
export type Decoder = (text: string, maxOut: number) => string | null;

/** The passes, in the order they are tried (cheap, common ones first). */
export const DECODERS: readonly (readonly [DecoderName, Decoder])[] = [
  ["percent", percentDecode],
  ["json", jsonUnescape],
  ["html", htmlEntityDecode],
  ["qp", quotedPrintableDecode],
  ["base64", base64Decode],
  ["base32", base32Decode],
  ["hex", hexDecode],
];

export interface DecodeLimits {
  /** Longest decoder chain (`via.length`). Default 3. */
  maxDepth?: number;
  /** Most views returned, the original included. Default 16. */
  maxViews?: number;
  /**
   * Total length (UTF-16 code units) of all decoded views together, the original excluded.
   * Default: 4x the input, at least 64 KiB, at most 1 MiB. When this or maxViews stops the
   * search, at most 2 x maxDepth layered views follow, each no longer than the input.
   */
  maxBytes?: number;
}

export interface DecodedView {
  text: string;
  /** The decoders applied, outermost first: `["percent", "base64"]`; `[]` for the original. */
  via: DecoderName[];
}

export const DEFAULT_MAX_DEPTH = 3;
export const DEFAULT_MAX_VIEWS = 16;
const MIN_DEFAULT_BYTES = 64 * 1024;
const MAX_DEFAULT_BYTES = 1024 * 1024;

export function defaultMaxBytes(inputLength: number): number {
  return Math.min(MAX_DEFAULT_BYTES, Math.max(MIN_DEFAULT_BYTES, 4 * inputLength));
}

/**
 * The original text plus every distinct view reachable by chains of at most `maxDepth` decoders,
 * breadth first (so shallow views win when a limit is hit). Bounded three ways: the number of
 * views, the depth, and the total size of the decoded views; each pass is linear in its input,
 * so the work is at most (views x decoders) linear passes over text no longer than the budget.
 * A view equal to one already seen is dropped, so triple percent-encoding yields three views,
 * one per layer, not a combinatorial tree.
 */
/** Filled in by decodeViews when its limits cut the search short (layered views were added, or a view was dropped for the budget). */
export interface DecodeReport {
  truncated: boolean;
}

export function decodeViews(text: string, limits: DecodeLimits = {}, report?: DecodeReport): DecodedView[] {
  const maxDepth = Math.max(0, limits.maxDepth ?? DEFAULT_MAX_DEPTH);
  const maxViews = Math.max(1, limits.maxViews ?? DEFAULT_MAX_VIEWS);
  let budget = Math.max(0, limits.maxBytes ?? defaultMaxBytes(text.length));
  const views: DecodedView[] = [{ text, via: [] }];
  // Views are few: a list compared by identity and length first costs less than hashing each.
  const seen: string[] = [text];
  let truncated = false;
  let cut = false;
  search: for (let i = 0; i < views.length; i++) {
    const view = views[i]!;
    if (view.via.length >= maxDepth) continue;
    let runs: RunViews | undefined;
    for (const [name, decode] of DECODERS) {
      if (views.length >= maxViews || budget <= 0) {
        truncated = true;
        break search;
      }
      const outs: (string | null)[] = [];
      if (name === "base64" || name === "base32" || name === "hex") {
        runs ??= decodeRunViews(view.text, budget);
        outs.push(runs[name]);
        if (name === "base64") outs.push(runs.base64Wrapped);
      } else outs.push(decode(view.text, budget));
      for (const out of outs) {
        if (out === null || seen.includes(out)) continue;
        if (views.length >= maxViews) {
          truncated = true;
          break search;
        }
        if (out.length > budget) {
          // Dropped for the budget: the caller hears that the search was cut short (the DLP
          // fast path then scans fragment by fragment), without layered views past the budget.
          cut = true;
          continue;
        }
        seen.push(out);
        budget -= out.length;
        views.push({ text: out, via: [...view.via, name] });
      }
    }
  }
  if (truncated) views.push(...layeredViews(text, maxDepth, seen));
  if (report && (truncated || cut)) report.truncated = true;
  return views;
}

/**
 * When the search above stops at its limits, the text holds many encodings (decoys can be put
 * there on purpose, so that the one chain that reveals a secret is never reached). Then every
 * decoder is applied in turn in one pass, up to `maxDepth` passes: each pass peels a layer off
 * every encoded run at once, whatever the others are, so what breadth-first chains would reveal
 * is in these few views (at most 2 x maxDepth). Each is no longer than the text (no decoder
 * lengthens its input).
 */
function layeredViews(text: string, maxDepth: number, seen: string[]): DecodedView[] {
  const out: DecodedView[] = [];
  // Twice: without quoted-printable, and with it last. Its soft line break (`=` at a line end)
  // glues a line ending in `=` (base64 padding, `key=`) to the next one and misaligns a base64
  // run there, so a chain through such lines is only whole in the first.
  for (const withQp of [false, true]) {
    let current = text;
    for (let depth = 1; depth <= maxDepth; depth++) {
      let next = current;
      for (const [name, decode] of DECODERS) if (name !== "qp") next = decode(next, next.length) ?? next;
      if (withQp) next = quotedPrintableDecode(next) ?? next;
      if (next === current) break;
      current = next;
      if (seen.includes(next)) continue;
      seen.push(next);
      out.push({ text: next, via: Array.from({ length: depth }, () => "layered" as const) });
    }
  }
  return out;
}
