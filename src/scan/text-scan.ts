/**
 * Scans one text with the rule pack through every decoded view (ARCHITECTURE.md: fragments are
 * also seen through decoding and normalising passes, bounded). A secret found in several views
 * is reported once, from the shallowest view, with the chain of decoders that revealed it.
 */
import { decodeViews, normaliseText, type DecodeLimits, type DecodeReport } from "./decode/index.ts";
import type { CompiledRules } from "./rules/compile.ts";
import { isAscii } from "./ascii.ts";

export interface TextFinding {
  readonly rule: string;
  /** Never the value: a few characters of each end. */
  readonly preview: string;
  /** Decoders that revealed it, outermost first; empty when it was there as written. */
  readonly via: readonly string[];
  /** Offsets in the view it was found in (the original text when `via` is empty). */
  readonly start: number;
  readonly end: number;
}

/**
 * Around each run of non-ASCII characters this much text (each side) is normalised and scanned
 * again: more than a private-key block (an RSA-4096 PEM is about 3.2 KB), so a trick character
 * anywhere in a secret brings the whole secret into its window.
 */
export const NORMALISE_WINDOW = 4096;
const NON_ASCII_RUN = /[^\x00-\x7f]+/g;

/**
 * The normalised reading of `text` for a second scan, or null when it has no non-ASCII character
 * (normalising changes nothing then). Only windows around non-ASCII runs can differ from the
 * text as written, so when they cover less than half of it, only they are normalised, joined by
 * line breaks: a body with a few accented words is not scanned twice over.
 */
export function normalisedWindows(text: string): string | null {
  // All ASCII (one UTF-8 byte per character; counted natively): nothing to normalise.
  if (isAscii(text)) return null;
  NON_ASCII_RUN.lastIndex = 0;
  let m = NON_ASCII_RUN.exec(text);
  if (m === null) return null;
  const windows: [number, number][] = [];
  let covered = 0;
  for (; m !== null; m = NON_ASCII_RUN.exec(text)) {
    const from = Math.max(0, m.index - NORMALISE_WINDOW);
    const to = Math.min(text.length, m.index + m[0].length + NORMALISE_WINDOW);
    const last = windows[windows.length - 1];
    if (last !== undefined && from <= last[1]) {
      covered += to - last[1];
      last[1] = to;
    } else {
      windows.push([from, to]);
      covered += to - from;
    }
    if (covered * 2 >= text.length) return normaliseText(text);
  }
  return windows.map(([from, to]) => normaliseText(text.slice(from, to))).join("\n");
}

export function scanText(rules: CompiledRules, text: string, limits?: DecodeLimits, report?: DecodeReport): TextFinding[] {
  const out: TextFinding[] = [];
  const seen = new Set<string>();
  for (const view of decodeViews(text, limits, report)) {
    const normalised = normalisedWindows(view.text);
    const variants = normalised === null || normalised === view.text ? [view.text] : [view.text, normalised];
    for (const [i, variant] of variants.entries()) {
      for (const f of rules.scan(variant)) {
        const key = `${f.rule}\u0000${f.preview}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ rule: f.rule, preview: f.preview, via: i === 0 ? view.via : [...view.via, "unicode"], start: f.start, end: f.end });
      }
    }
  }
  return out;
}
