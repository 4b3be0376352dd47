/**
 * The labelled DLP corpus: secrets planted one per entry, in request-like texts and encoded
 * forms, and benign look-alikes. Deterministic for a seed; built from the rule pack it measures
 * (tokens are derived from each rule's examples, see tokens.ts).
 */
import type { CompiledRules } from "../../../src/scan/rules/compile.ts";
import { BENIGN_KINDS, benignEntries, type BenignKind } from "./benign.ts";
import { CONTEXTS, wrap, type Context } from "./contexts.ts";
import { ENCODINGS, encode, type Encoding } from "./encodings.ts";
import { createRng } from "./rng.ts";
import { freshToken, learnTemplates } from "./tokens.ts";

export interface PlantedEntry {
  readonly label: "secret";
  readonly rule: string;
  /** Rule file name, e.g. `ai-providers`. */
  readonly family: string;
  readonly encoding: Encoding;
  readonly context: Context;
  readonly text: string;
}

export interface BenignLabelled {
  readonly label: "benign";
  readonly kind: BenignKind;
  readonly text: string;
}

export type CorpusEntry = PlantedEntry | BenignLabelled;

export interface Corpus {
  readonly entries: readonly CorpusEntry[];
  /** Rules for which no fresh token could be derived (their examples do not round-trip). */
  readonly gaps: readonly string[];
}

export const DEFAULT_SEED = 0x51c3;

export function familyOf(path: string): string {
  return path.replace(/^.*\//, "").replace(/\.ya?ml$/, "");
}

export function buildCorpus(rules: CompiledRules, options: { seed?: number; perEncoding?: number; benignPerKind?: number } = {}): Corpus {
  const rng = createRng(options.seed ?? DEFAULT_SEED);
  const perEncoding = options.perEncoding ?? 2;
  const templates = learnTemplates(rules, rng);
  const entries: CorpusEntry[] = [];
  const gaps: string[] = [];
  for (const rule of rules.rules) {
    if (!rule.id.startsWith("dlp.")) continue;
    const list = templates.get(rule.id) ?? [];
    if (list.length === 0) {
      gaps.push(rule.id);
      continue;
    }
    let n = 0;
    for (const encoding of ENCODINGS) {
      for (let k = 0; k < perEncoding; k++, n++) {
        const t = list[n % list.length]!;
        const token = freshToken(rules, t, rng);
        if (token === null) {
          if (!gaps.includes(rule.id)) gaps.push(rule.id);
          continue;
        }
        const snippet = t.before + token + t.after;
        const context = rng.pick(CONTEXTS);
        const value = encode(encoding, snippet, token);
        const raw = encoding !== "plain" && encoding !== "zero-width";
        entries.push({ label: "secret", rule: rule.id, family: familyOf(rule.path), encoding, context, text: wrap(context, value, raw, rng) });
      }
    }
  }
  const planted = entries.length;
  const perKind = options.benignPerKind ?? Math.ceil((planted * 1.25) / BENIGN_KINDS.length);
  for (const b of benignEntries(rules, rng, perKind)) entries.push({ label: "benign", kind: b.kind, text: b.text });
  return { entries, gaps };
}
