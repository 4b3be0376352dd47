/**
 * Detection quality of the DLP rules on the labelled corpus (test/corpus/dlp): recall (the
 * planted secret found by its expected rule) overall, per family and per encoding, and the
 * false-positive rate (any finding on a benign entry) overall and per kind.
 *
 *   bun scripts/eval-dlp.ts [--list] [--json] [--seed N]
 */
import { loadRuleFiles } from "../src/config/rule-files.ts";
import { compileRulePack, type CompiledRules } from "../src/scan/rules/compile.ts";
import { scanText } from "../src/scan/text-scan.ts";
import { buildCorpus, DEFAULT_SEED, familyOf, type CorpusEntry } from "../test/corpus/dlp/index.ts";

export const TARGET_RECALL = 0.98;
export const TARGET_FP = 0.005;

interface Tally { n: number; ok: number }
export interface EvalResult {
  planted: number;
  benign: number;
  recall: number;
  fpRate: number;
  byFamily: Record<string, Tally>;
  byEncoding: Record<string, Tally>;
  byRule: Record<string, Tally>;
  fpByKind: Record<string, Tally>;
  /** Per rule family (file): benign entries on which a rule of that family fired, of all benign. */
  fpByFamily: Record<string, Tally>;
  misses: { rule: string; encoding: string; context: string; found: string[]; text: string }[];
  falsePositives: { kind: string; rules: string[]; text: string }[];
  gaps: readonly string[];
}

const bump = (m: Record<string, Tally>, k: string, ok: boolean) => {
  const t = (m[k] ??= { n: 0, ok: 0 });
  t.n++;
  if (ok) t.ok++;
};

export function evaluate(rules: CompiledRules, seed = DEFAULT_SEED): EvalResult {
  const { entries, gaps } = buildCorpus(rules, { seed });
  const r: EvalResult = { planted: 0, benign: 0, recall: 0, fpRate: 0, byFamily: {}, byEncoding: {}, byRule: {}, fpByKind: {}, fpByFamily: {}, misses: [], falsePositives: [], gaps };
  let hit = 0;
  let fp = 0;
  const familyOfRule = new Map(rules.rules.map((x) => [x.id, familyOf(x.path)]));
  const families = [...new Set(familyOfRule.values())];
  for (const e of entries as CorpusEntry[]) {
    const found = scanText(rules, e.text);
    if (e.label === "secret") {
      r.planted++;
      const ok = found.some((f) => f.rule === e.rule);
      if (ok) hit++;
      else r.misses.push({ rule: e.rule, encoding: e.encoding, context: e.context, found: found.map((f) => f.rule), text: e.text });
      bump(r.byFamily, e.family, ok);
      bump(r.byEncoding, e.encoding, ok);
      bump(r.byRule, e.rule, ok);
    } else {
      r.benign++;
      const bad = found.length > 0;
      if (bad) {
        fp++;
        r.falsePositives.push({ kind: e.kind, rules: found.map((f) => `${f.rule}${f.via.length ? ` via ${f.via.join(">")}` : ""}`), text: e.text });
      }
      bump(r.fpByKind, e.kind, bad);
      const fired = new Set(found.map((f) => familyOfRule.get(f.rule) ?? "?"));
      for (const family of families) bump(r.fpByFamily, family, fired.has(family));
    }
  }
  r.recall = hit / r.planted;
  r.fpRate = fp / r.benign;
  return r;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const clip = (s: string, n = 220) => (s.length > n ? `${s.slice(0, n)}…` : s).replace(/\r?\n/g, "⏎");

if (import.meta.main) {
  const args = process.argv.slice(2);
  const seedArg = args.indexOf("--seed");
  const seed = seedArg >= 0 ? Number(args[seedArg + 1]) : DEFAULT_SEED;
  const rules = compileRulePack(await loadRuleFiles("rules/dlp/"));
  const t0 = performance.now();
  const r = evaluate(rules, seed);
  const ms = performance.now() - t0;
  if (args.includes("--json")) {
    console.log(JSON.stringify({ ...r, misses: r.misses.length, falsePositives: r.falsePositives.length }, null, 2));
    process.exit(0);
  }
  const mark = (ok: boolean) => (ok ? "ok  " : "MISS");
  console.log(`DLP corpus (seed ${seed}): ${r.planted} planted secrets, ${r.benign} benign entries, ${rules.rules.length} rules, ${ms.toFixed(0)} ms`);
  console.log(`recall  ${pct(r.recall)}  (${r.planted - r.misses.length}/${r.planted})   target >= ${pct(TARGET_RECALL)}  ${mark(r.recall >= TARGET_RECALL)}`);
  console.log(`FP rate ${pct(r.fpRate)}  (${r.falsePositives.length}/${r.benign})   target <= ${pct(TARGET_FP)}  ${mark(r.fpRate <= TARGET_FP)}`);
  const table = (title: string, m: Record<string, Tally>, fpMode = false) => {
    console.log(`\n${title}`);
    for (const [k, t] of Object.entries(m).sort()) {
      const rate = t.ok / t.n;
      const ok = fpMode ? rate <= TARGET_FP : rate >= TARGET_RECALL;
      console.log(`  ${k.padEnd(22)} ${pct(rate).padStart(8)}  (${t.ok}/${t.n})  ${ok ? "" : fpMode ? "> target" : "< target"}`);
    }
  };
  table("recall by family", r.byFamily);
  table("recall by encoding", r.byEncoding);
  const weak = Object.fromEntries(Object.entries(r.byRule).filter(([, t]) => t.ok < t.n));
  if (Object.keys(weak).length > 0) table("rules below 100% recall", weak);
  table("false positives by kind", r.fpByKind, true);
  table("false positives by rule family", r.fpByFamily, true);
  if (r.gaps.length > 0) console.log(`\ncorpus gaps (no fresh token derivable from the rule's examples): ${r.gaps.join(", ")}`);
  if (args.includes("--list")) {
    console.log(`\nmisses (${r.misses.length}):`);
    for (const m of r.misses) console.log(`  ${m.rule} [${m.encoding}, ${m.context}] found=${m.found.join(",") || "-"}\n    ${clip(m.text)}`);
    console.log(`\nfalse positives (${r.falsePositives.length}):`);
    for (const f of r.falsePositives) console.log(`  ${f.kind}: ${f.rules.join(", ")}\n    ${clip(f.text)}`);
  }
}
