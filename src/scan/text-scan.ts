/**
 * Scans one text with the rule pack through every decoded view (ARCHITECTURE.md: fragments are
 * also seen through decoding and normalising passes, bounded). A secret found in several views
 * is reported once, from the shallowest view, with the chain of decoders that revealed it.
 */
import { decodeViews, normaliseText, type DecodeLimits } from "./decode/index.ts";
import type { CompiledRules } from "./rules/compile.ts";

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

export function scanText(rules: CompiledRules, text: string, limits?: DecodeLimits): TextFinding[] {
  const out: TextFinding[] = [];
  const seen = new Set<string>();
  for (const view of decodeViews(text, limits)) {
    const normalised = normaliseText(view.text);
    const variants = normalised === view.text ? [view.text] : [view.text, normalised];
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
