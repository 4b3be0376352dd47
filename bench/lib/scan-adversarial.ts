/**
 * Adversarial inputs for bench/scan.ts: for each rule, ~100 KiB built to make its pattern work
 * hard without (ideally) matching: the rule's keywords repeated, each followed by a near-miss
 * body derived from the rule's own `examples.match` (the secret cut short, or broken near its
 * end so the regex reads most of it before failing), plus keywords run together and keywords
 * followed by long runs of token characters. A piece the rule reports on its own is replaced by
 * the bare keyword; findings can still come from pieces side by side or from decoded views, and
 * bench/scan.ts shows how many.
 */
import type { CompiledRule, CompiledRules } from "../../src/scan/rules/compile.ts";
import { rng, type Rand } from "./scan-corpus.ts";

const TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const SEPARATORS = [" ", "\n", " = ", '": "', "&", "/"];

function run(r: Rand, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += TOKEN_CHARS[Math.floor(r() * TOKEN_CHARS.length)];
  return s;
}

/** Near-miss variants of each match example that the rule itself does not report. */
function nearMisses(rules: CompiledRules, rule: CompiledRule): string[] {
  const out: string[] = [];
  const foundBy = (text: string) => rules.scan(text).some((f) => f.rule === rule.id);
  for (const example of rule.examples.match) {
    const hit = rules.scan(example).find((f) => f.rule === rule.id);
    if (hit === undefined) continue;
    const before = example.slice(0, hit.start);
    const secret = example.slice(hit.start, hit.end);
    const after = example.slice(hit.end);
    const candidates = [
      before + secret.slice(0, -1) + after, // one character short
      before + secret.slice(0, Math.max(1, secret.length - 3)) + "~" + after, // broken near the end
      before + secret.slice(0, Math.ceil(secret.length / 2)) + " " + after, // cut in half
      before + secret + secret.slice(-1).repeat(2) + after, // too long
    ];
    for (const c of candidates) if (!foundBy(c)) out.push(c);
  }
  return out;
}

export interface AdversarialInput {
  readonly rule: string;
  readonly text: string;
  /** Near-miss variants built from the rule's examples (0: keywords and token runs only). */
  readonly nearMisses: number;
}

/** One input of about `size` characters per rule, the same on every run. */
export function adversarialInputs(rules: CompiledRules, size: number, seed: number): AdversarialInput[] {
  return rules.rules.map((rule, index) => {
    const r = rng(seed + index);
    const misses = nearMisses(rules, rule);
    const keywords = rule.keywords.length > 0 ? rule.keywords : [rule.id];
    const parts: string[] = [];
    let length = 0;
    let i = 0;
    while (length < size) {
      const kw = keywords[i % keywords.length]!;
      let piece: string;
      switch (i % 4) {
        case 0:
        case 1:
          piece = misses.length > 0 ? misses[i % misses.length]! : kw + run(r, 8 + Math.floor(r() * 56));
          break;
        case 2:
          piece = kw.repeat(8); // keywords run together
          break;
        default:
          piece = kw + run(r, 200 + Math.floor(r() * 300)) + "~"; // a long body that never ends right
      }
      piece += SEPARATORS[i % SEPARATORS.length];
      // A piece the rule reports is a hit, not a near miss: fall back to the bare keyword.
      if (rules.scan(piece).some((f) => f.rule === rule.id)) piece = kw + SEPARATORS[i % SEPARATORS.length];
      parts.push(piece);
      length += piece.length;
      i++;
    }
    return { rule: rule.id, text: parts.join("").slice(0, size), nearMisses: misses.length };
  });
}
