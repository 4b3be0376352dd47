/**
 * The prompt-injection engine: the `inj.*` rule pack run over every reading (readings.ts) of
 * every segment of a response (a page's visible text and each hidden carrier, a JSON string, an
 * event of a stream), scored. Pure; compiled once per policy.
 *
 * Score: each rule that matches anywhere adds its weight once; a match inside a hidden carrier
 * (html.ts), in Unicode tag characters, in an encoded segment or behind an obfuscation adds the
 * weight of the carrier rule below once more, because text a person cannot see (or a model is
 * asked to decode) carrying an instruction is itself the attack. The response is over the line
 * when the score reaches the threshold.
 */
import type { DecodeLimits } from "../decode/index.ts";
import { previewOf, type CompiledRules } from "../rules/compile.ts";
import type { Carrier } from "./html.ts";
import { readingsOf, type Reading, type ReadingName } from "./readings.ts";

/** One piece of a response to scan, where it came from, and whether a person would see it. */
export interface SegmentIn {
  /** `body.html`, `body.json.results[0].snippet`, `body.sse[3]`, ... */
  readonly location: string;
  readonly carrier: Carrier | "text";
  readonly text: string;
  /** Raw range of a hidden carrier in the body (html.ts), so `strip` can cut it out whole. */
  readonly range?: readonly [start: number, end: number];
}

export interface InjectionFinding {
  readonly rule: string;
  readonly weight: number;
  readonly location: string;
  readonly carrier: Carrier | "text";
  /** The reading it was found in (`raw`: as written). */
  readonly reading: ReadingName;
  readonly via?: readonly string[];
  /** A few characters of each end of the match. */
  readonly preview: string;
  /** The match as written (reading `raw`), for `strip`; null when it was found in another reading. */
  readonly literal: string | null;
  readonly range?: readonly [start: number, end: number];
}

export interface InjectionResult {
  readonly score: number;
  readonly findings: readonly InjectionFinding[];
}

export interface InjectionEngine {
  readonly threshold: number;
  readonly ruleIds: readonly string[];
  scan(segments: readonly SegmentIn[]): InjectionResult;
}

/**
 * Rules of the engine itself, for what carries an instruction rather than what it says. Their
 * weights add once per response, on top of the instruction rule's own.
 */
export const CARRIER_RULES = {
  hidden: { id: "inj.hidden-content", weight: 40 },
  tags: { id: "inj.unicode-tag-smuggling", weight: 50 },
  encoded: { id: "inj.encoded-instructions", weight: 30 },
  obfuscated: { id: "inj.obfuscated-instructions", weight: 20 },
} as const;

const OBFUSCATIONS: ReadonlySet<ReadingName> = new Set(["invisible-removed", "invisible-as-space", "bidi-reversed", "folded", "leetspeak", "spaced-letters"]);
/** Carriers read together as one text: what a person sees, and code (never a hidden carrier). */
const SHOWN: ReadonlySet<string> = new Set(["visible", "text", "code", "script"]);

/**
 * Distinct discussion cues (cues.ts) from which a shown text is read as writing about prompt
 * injection (a security article, a detector's docs): what is found in it counts half, as one
 * finding, and what it quotes half again. Hidden carriers never get this: nobody hides an
 * explanation.
 */
export const DISCUSSION_MIN = 2;
/** What the findings in a text that discusses injection are counted under, together. */
const DISCUSSED = "\u0000discussed";

/** How far isQuoted looks for the quotation marks around a match. */
const QUOTE_REACH = 300;

/** Quotation marks that open (and the ones that close them) around quoted text on one line. */
const QUOTES: readonly (readonly [string, string])[] = [["\u201c", "\u201d"], ["\u00ab", "\u00bb"], ["\u300c", "\u300d"], ["\u201e", "\u201c"]];

/**
 * Whether text[start, end) sits inside a quotation on its line: an odd number of `"` before it
 * and one after it, or an opening curly, guillemet or corner quote before it not closed before
 * it and its closing one after it.
 */
export function isQuoted(text: string, start: number, end: number): boolean {
  // At most QUOTE_REACH characters each side: a quotation is a sentence, and a bounded look keeps
  // a megabyte on one line linear.
  const from = Math.max(0, start - QUOTE_REACH);
  const lineStart = Math.max(from, text.lastIndexOf("\n", start - 1) + 1);
  const to = Math.min(text.length, end + QUOTE_REACH);
  const lineEndAt = text.indexOf("\n", end);
  const before = text.slice(lineStart, start);
  const after = text.slice(end, lineEndAt < 0 || lineEndAt > to ? to : lineEndAt);
  if ((before.split('"').length - 1) % 2 === 1 && after.includes('"')) return true;
  for (const [open, close] of QUOTES) {
    const o = before.lastIndexOf(open);
    if (o >= 0 && before.indexOf(close, o + 1) < 0 && after.includes(close)) return true;
  }
  return false;
}

/**
 * Between two shown segments when they are read as one text: a blank line for the pattern rules,
 * and a NUL, which the cue matcher takes as the end of one text and the start of another
 * (cues.ts): two JSON values are two texts.
 */
const SEGMENT_SEPARATOR = "\n\n\u0000\n\n";

/** Findings listed per response; the score counts every rule whatever this cap. */
const MAX_FINDINGS = 64;

/** A finding of `rule` for `match`, found in `reading` of `segment`. */
function findingOf(rule: string, weight: number, segment: SegmentIn, reading: Reading, match: string, literal: string | null): InjectionFinding {
  return {
    rule,
    weight,
    location: segment.location,
    carrier: segment.carrier,
    reading: reading.name,
    ...(reading.via ? { via: reading.via } : {}),
    preview: previewOf(match),
    literal,
    ...(segment.range ? { range: segment.range } : {}),
  };
}

export interface InjectionOptions {
  /** The pack (pack.ts); `discussion` (cues.ts), when given, marks text that writes about attacks. */
  readonly rules: CompiledRules & { discussion?(text: string): number; readonly vocabulary?: ReadonlySet<string> };
  /** Default 50. */
  readonly threshold?: number;
  /** Rule ids (the carrier rules included) that add nothing. */
  readonly disabled?: ReadonlySet<string>;
  readonly decodeLimits?: DecodeLimits;
}

export function createInjectionEngine(options: InjectionOptions): InjectionEngine {
  const weights = new Map(options.rules.rules.map((r) => [r.id, r.weight ?? 0] as const));
  // What a rule's weight is counted under: its group (cues.ts) or itself.
  const countedAs = new Map(options.rules.rules.map((r) => [r.id, r.group ?? r.id] as const));
  const threshold = options.threshold ?? 50;

  return {
    threshold,
    ruleIds: [...weights.keys(), ...Object.values(CARRIER_RULES).map((r) => r.id)],
    scan(segments: readonly SegmentIn[]): InjectionResult {
      const findings: InjectionFinding[] = [];
      // Each rule counts once, at the highest weight it was found with.
      const counted = new Map<string, number>();
      let score = 0;
      const count = (rule: string, weight: number) => {
        if (options.disabled?.has(rule)) return;
        const before = counted.get(rule) ?? 0;
        if (weight <= before) return;
        counted.set(rule, weight);
        score += weight - before;
      };
      const seen = new Set<string>();
      /**
       * Scans one text (a segment, or several joined) in every reading. `at(offset)` names the
       * segment a match as written starts in; matches in other readings are put on `first`.
       */
      const scanUnit = (text: string, at: (offset: number) => SegmentIn, first: SegmentIn, discussion: boolean) => {
        // A rule found in an earlier reading (the text as written first) is not found again in
        // a later one: a later reading repeats the plain text around what it changed, and an
        // instruction written plainly is not an obfuscated one.
        const found = new Set<string>();
        for (const reading of readingsOf(text, options.decodeLimits, options.rules.vocabulary)) {
          const here = new Set<string>();
          for (const f of options.rules.scan(reading.text)) {
            if (found.has(f.rule)) continue;
            here.add(f.rule);
            const segment = reading.name === "raw" ? at(f.start) : first;
            // Shown as code, an instruction is more often discussed than given: half weight. In a
            // text that discusses injection, half weight, and what it quotes half again. (A cue
            // intent's span runs from its first cue to the one that completed it: quoted when
            // that last cue is.) Quotation marks alone say nothing: instructions quote too.
            const quoted =
              discussion && reading.name === "raw" && (f.weight !== undefined ? isQuoted(reading.text, f.end - 1, f.end) : isQuoted(reading.text, f.start, f.end));
            const full = f.weight ?? weights.get(f.rule) ?? 0;
            const weight = Math.ceil(full / ((segment.carrier === "code" ? 2 : 1) * (discussion ? 2 : 1) * (quoted ? 2 : 1)));
            // In a text that discusses injection, everything found counts as one finding: the
            // strongest. An article quotes several attacks; it performs none.
            if (!options.disabled?.has(f.rule)) count(discussion ? DISCUSSED : (countedAs.get(f.rule) ?? f.rule), weight);
            const match = reading.text.slice(f.start, f.end);
            const carrier =
              !SHOWN.has(segment.carrier)
                ? CARRIER_RULES.hidden
                : reading.name === "unicode-tags"
                  ? CARRIER_RULES.tags
                  : reading.name === "decoded"
                    ? CARRIER_RULES.encoded
                    : OBFUSCATIONS.has(reading.name)
                      ? CARRIER_RULES.obfuscated
                      : null;
            // The carrier is a finding of its own, listed once per response.
            if (carrier !== null && !counted.has(carrier.id) && !options.disabled?.has(carrier.id)) {
              count(carrier.id, carrier.weight);
              findings.push(findingOf(carrier.id, carrier.weight, segment, reading, match, null));
            }
            const key = `${f.rule}\u0000${segment.location}\u0000${segment.carrier}\u0000${reading.name === "raw" ? match : reading.name}`;
            if (seen.has(key) || findings.length >= MAX_FINDINGS) continue;
            seen.add(key);
            findings.push(findingOf(f.rule, weight, segment, reading, match, reading.name === "raw" ? match : null));
          }
          for (const r of here) found.add(r);
        }
      };
      // What a person sees (a page's text, JSON values, stream events) is read as one text, the
      // pieces a blank line apart: one pass of each reading rather than one per value. Each
      // hidden carrier is read on its own, so a finding keeps its carrier and its range.
      const shown = segments.filter((s) => SHOWN.has(s.carrier) && s.text.trim().length > 0);
      if (shown.length > 0) {
        const starts: number[] = [];
        let joined = "";
        for (const s of shown) {
          if (joined.length > 0) joined += SEGMENT_SEPARATOR;
          starts.push(joined.length);
          joined += s.text;
        }
        const at = (offset: number): SegmentIn => {
          let lo = 0;
          let hi = starts.length - 1;
          while (lo < hi) {
            const mid = (lo + hi + 1) >> 1;
            if (starts[mid]! <= offset) lo = mid;
            else hi = mid - 1;
          }
          return shown[lo]!;
        };
        scanUnit(joined, at, shown[0]!, (options.rules.discussion?.(joined) ?? 0) >= DISCUSSION_MIN);
      }
      for (const segment of segments) {
        if (SHOWN.has(segment.carrier) || segment.text.trim().length === 0) continue;
        scanUnit(segment.text, () => segment, segment, false);
      }
      return { score, findings };
    },
  };
}
