/**
 * Detection quality of the prompt-injection scanner on the labelled corpus (test/corpus/injection):
 * every sample is a whole response body judged as the proxy judges it (inspect/response.ts with
 * the built-in rules, the word model and the default threshold). Recall: attacks whose score
 * reaches the threshold; false-positive rate: benign bodies that reach it. Printed overall and
 * per category, technique, language and carrier.
 *
 * Forty-three sets (test/corpus/injection/corpus.ts): `dev`, the one the rules were written against;
 * `holdout`, written apart from the rules and never tuned against, though later rule work looked
 * at its aggregate figures; `holdout2`, an independent set written on 2026-11-28 by an author who
 * had not seen the rules, the scanner, the dev set or the first holdout, never tuned against but
 * its aggregate figures looked at after each round of rule work; `holdout3` to `holdout5`,
 * written the same way by two more authors each; `holdout6`, `holdout7` and `holdout8` by two
 * more each; `holdout9` by two more (its false positives read on 2026-11-29 to tune the cues);
 * `holdout10` by two more (its misses and false positives read on 2026-11-29); `holdout11` by two
 * more (its false positives read on 2026-11-29); `holdout12` and `holdout13` by two more each
 * (evaluated on 2026-11-29, their samples unread, then trained on); `holdout14` to `holdout16` by
 * two more each (evaluated, their samples unread, then trained on when holdout17 was written);
 * `holdout17` to `holdout19` by two more each (evaluated at the end of a round); `holdout20`
 * by two more (evaluated once, then its samples read on 2026-11-29); `holdout21` by two more
 * (evaluated at the end of a round); `holdout22` by two more (evaluated once, at the start of
 * 2026-11-29's fourth session, then its samples read); `holdout23` by two more (evaluated at
 * the end of that session's first round, then its false positives read); `holdout24` by two
 * more (evaluated at the end of its second, its false positives read since); `holdout25` by two
 * more (evaluated at the end of 2026-11-29's fifth session, its false positives read since);
 * `holdout26` by two more (evaluated at the end of 2026-11-30's first round); `holdout27` by two
 * more (evaluated at the end of that day's second session's first round, its false positives
 * read since); `holdout28` by two more (evaluated at the start of 2026-11-30's third session,
 * its false positives read since); `holdout29` by three more (evaluated at the end of that session's
 * first round, its false positives read since); `holdout30` by five more (evaluated at the end of
 * its second round, its false positives read since); and `holdout31`, the fresh one, by four more. `dev2` to `dev12` are more tuning sets, each written by other
 * authors to give rule work and the model more data than dev (tuning on them is allowed). The
 * word model (scripts/words-model.ts) is trained on dev .. dev7, dev9, dev10 and holdout to
 * holdout16, never on holdout17 to holdout31. All forty-three are printed, in that order,
 * unless --set names one; holdout17's to holdout19's, holdout21's, holdout24's to holdout31's
 * figures, and holdout22's and holdout23's first ones, are the honest ones (holdout31 not yet
 * evaluated).
 *
 * `technical` (printed last, or alone with --set technical): the DLP corpus's texts
 * (test/corpus/dlp: diffs, environment dumps, curl lines, configs and chat prompts holding
 * secrets, plain and encoded), none of them an injection, judged as response bodies: how often
 * technical text an agent reads would be blocked. A false-positive figure only.
 *
 *   bun scripts/eval-injection.ts [--set dev|dev2|...|dev12|holdout|holdout2|...|holdout31|technical] [--list] [--json] [--seed N]
 */
import { loadRuleFiles } from "../src/config/rule-files.ts";
import { inspectResponse, responseKind } from "../src/inspect/response.ts";
import { createInjectionEngine, type InjectionEngine } from "../src/scan/injection/engine.ts";
import { compileInjectionPack } from "../src/scan/injection/pack.ts";
import { builtinWordModel } from "../src/scan/injection/words.ts";
import { compileRulePack } from "../src/scan/rules/compile.ts";
import { buildCorpus } from "../test/corpus/dlp/index.ts";
import { CORPUS_SETS, injectionCorpus, type CorpusSet, type InjectionSample } from "../test/corpus/injection/corpus.ts";

export const TARGET_RECALL = 0.9;
export const TARGET_FP = 0.01;
export const DEFAULT_SEED = 5;

interface Tally { n: number; ok: number }
export interface InjectionEval {
  attacks: number;
  benign: number;
  recall: number;
  fpRate: number;
  byCategory: Record<string, Tally>;
  byTechnique: Record<string, Tally>;
  byLanguage: Record<string, Tally>;
  byCarrier: Record<string, Tally>;
  fpByCategory: Record<string, Tally>;
  misses: { id: string; category: string; technique: string; language: string; score: number; rules: string[]; body: string }[];
  falsePositives: { id: string; category: string; score: number; rules: string[]; body: string }[];
}

const bump = (m: Record<string, Tally>, k: string, ok: boolean) => {
  const t = (m[k] ??= { n: 0, ok: 0 });
  t.n++;
  if (ok) t.ok++;
};

export async function builtinEngine(): Promise<InjectionEngine> {
  return createInjectionEngine({ rules: { ...compileInjectionPack(await loadRuleFiles("rules/injection/")), words: builtinWordModel() } });
}

export async function evaluateInjection(engine: InjectionEngine, seed = DEFAULT_SEED, set: CorpusSet = "dev"): Promise<InjectionEval> {
  const samples: InjectionSample[] = await injectionCorpus(seed, { set });
  const r: InjectionEval = { attacks: 0, benign: 0, recall: 0, fpRate: 0, byCategory: {}, byTechnique: {}, byLanguage: {}, byCarrier: {}, fpByCategory: {}, misses: [], falsePositives: [] };
  let hits = 0;
  let fps = 0;
  for (const s of samples) {
    const kind = responseKind(s.contentType) ?? "text";
    const v = inspectResponse(kind, s.body, engine, "block");
    const over = v.verdict !== "allow";
    const rules = [...new Set(v.findings.map((f) => f.rule))];
    if (s.label === "attack") {
      r.attacks++;
      if (over) hits++;
      else r.misses.push({ id: s.id, category: s.category, technique: s.technique, language: s.language, score: v.score, rules, body: s.body });
      bump(r.byCategory, s.category, over);
      bump(r.byTechnique, s.technique, over);
      bump(r.byLanguage, s.language, over);
      bump(r.byCarrier, s.carrier, over);
    } else {
      r.benign++;
      if (over) {
        fps++;
        r.falsePositives.push({ id: s.id, category: s.category, score: v.score, rules, body: s.body });
      }
      bump(r.fpByCategory, s.category, over);
    }
  }
  r.recall = hits / r.attacks;
  r.fpRate = fps / r.benign;
  return r;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const clip = (s: string, n = 200) => (s.length > n ? `${s.slice(0, n)}…` : s).replace(/\r?\n/g, "⏎");

if (import.meta.main) {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const seed = Number(arg("--seed") ?? DEFAULT_SEED);
  const only = arg("--set");
  if (only !== undefined && only !== "technical" && !(CORPUS_SETS as readonly string[]).includes(only)) {
    console.error(`--set wants one of ${[...CORPUS_SETS, "technical"].join(", ")}`);
    process.exit(2);
  }
  const sets: CorpusSet[] = only === undefined ? [...CORPUS_SETS] : only === "technical" ? [] : [only as CorpusSet];
  const LABEL: Record<CorpusSet, string> = {
    dev: "dev set (rules written against it)",
    dev2: "dev2 set (second tuning set, separate author; tuning allowed)",
    dev3: "dev3 set (third tuning set, another author; tuning allowed)",
    dev4: "dev4 set (fourth tuning set, two more authors; tuning allowed)",
    dev5: "dev5 set (fifth tuning set, two more authors; tuning allowed)",
    dev6: "dev6 set (sixth tuning set, two more authors; tuning allowed)",
    dev7: "dev7 set (seventh tuning set, two more authors, written for the word model; tuning allowed)",
    dev8: "dev8 set (eighth tuning set, two more authors; tuning allowed; the word model does not train on it)",
    dev9: "dev9 set (ninth tuning set, two more authors; tuning allowed; the word model trains on it)",
    dev10: "dev10 set (tenth tuning set, two more authors; tuning allowed)",
    dev11: "dev11 set (eleventh tuning set, one more author; tuning allowed; the word model does not train on it)",
    dev12: "dev12 set (twelfth tuning set, two more authors; tuning allowed; the word model does not train on it)",
    holdout: "holdout set (never tuned against, but its figures were looked at)",
    holdout2: "holdout2 set (independent set, never tuned against, its figures looked at after rule rounds)",
    holdout3: "holdout3 set (independent set, never tuned on; the word model trains on it)",
    holdout4: "holdout4 set (independent set, never tuned on; the word model trains on it)",
    holdout5: "holdout5 set (independent set, never tuned on; the word model trains on it)",
    holdout6: "holdout6 set (independent set, never tuned on; the word model trains on it)",
    holdout7: "holdout7 set (independent set, never tuned on; the word model trains on it)",
    holdout8: "holdout8 set (independent set, never tuned on; the word model trains on it)",
    holdout9: "holdout9 set (independent set; its false positives were read to tune the cues; the word model trains on it)",
    holdout10: "holdout10 set (independent set; its misses and false positives were read to tune; the word model trains on it)",
    holdout11: "holdout11 set (independent set; its false positives were read to weigh engine changes; the word model trains on it)",
    holdout12: "holdout12 set (independent set, never tuned on; evaluated on 2026-11-29, then the word model trains on it)",
    holdout13: "holdout13 set (independent set, never tuned on; evaluated on 2026-11-29, then the word model trains on it)",
    holdout14: "holdout14 set (independent set, never tuned on; the word model trains on it since holdout17 was written)",
    holdout15: "holdout15 set (independent set, never tuned on; evaluated once, then the word model trains on it)",
    holdout16: "holdout16 set (independent set, never tuned on; evaluated once, then the word model trains on it)",
    holdout17: "holdout17 set (independent set, never tuned or trained on; evaluated at the end of one round)",
    holdout18: "holdout18 set (independent set, never tuned or trained on; evaluated at the end of one round)",
    holdout19: "holdout19 set (independent set, never tuned or trained on; evaluated at the end of one round)",
    holdout20: "holdout20 set (independent set, never trained on; evaluated once, then its samples read)",
    holdout21: "holdout21 set (independent set, never tuned or trained on; evaluated at the end of one round)",
    holdout22: "holdout22 set (independent set, never trained on; evaluated once, then its samples read)",
    holdout23: "holdout23 set (independent set, never trained on; evaluated at the end of one round, then its false positives read)",
    holdout24: "holdout24 set (independent set, never trained on; evaluated at the end of one round, then its false positives read)",
    holdout25: "holdout25 set (independent set, never trained on; evaluated at the end of one round, then its false positives read)",
    holdout26: "holdout26 set (independent set, never tuned or trained on; evaluated at the end of one round)",
    holdout27: "holdout27 set (independent set, never trained on; evaluated at the end of one round, then its false positives read)",
    holdout28: "holdout28 set (independent set, never trained on; evaluated at the start of a session, then its false positives read)",
    holdout29: "holdout29 set (independent set, never trained on; evaluated at the end of a round, then its false positives read)",
    holdout30: "holdout30 set (independent set, never trained on; evaluated at the end of a round, then its false positives read)",
    holdout31: "holdout31 set (fresh independent set, never tuned or trained on, not yet evaluated)",
  };
  const engine = await builtinEngine();
  for (const set of sets) {
    const t0 = performance.now();
    const r = await evaluateInjection(engine, seed, set);
    if (args.includes("--json")) {
      console.log(JSON.stringify({ set, ...r, misses: r.misses.length, falsePositives: r.falsePositives.length }));
      continue;
    }
    const table = (title: string, m: Record<string, Tally>) => {
      console.log(title);
      for (const [k, t] of Object.entries(m).sort()) console.log(`  ${k.padEnd(26)} ${pct(t.ok / t.n).padStart(8)}  (${t.ok}/${t.n})`);
    };
    console.log(`\n== ${LABEL[set]} (seed ${seed}): ${r.attacks} attacks, ${r.benign} benign, ${engine.ruleIds.length} rules, threshold ${engine.threshold}, ${(performance.now() - t0).toFixed(0)} ms`);
    table("recall by category", r.byCategory);
    table("recall by technique", r.byTechnique);
    table("recall by language", r.byLanguage);
    table("recall by carrier", r.byCarrier);
    table("false positives by benign category", r.fpByCategory);
    if (args.includes("--list")) {
      for (const m of r.misses) console.log(`MISS ${m.id} [${m.category}/${m.technique}/${m.language}] score ${m.score} ${m.rules.join(",")}: ${clip(m.body)}`);
      for (const f of r.falsePositives) console.log(`FP   ${f.id} [${f.category}] score ${f.score} ${f.rules.join(",")}: ${clip(f.body)}`);
    }
    console.log(`${set}: recall ${pct(r.recall)} (${r.attacks - r.misses.length}/${r.attacks}), target >= ${pct(TARGET_RECALL)} ${r.recall >= TARGET_RECALL ? "ok" : "MISS"}; false positives ${pct(r.fpRate)} (${r.falsePositives.length}/${r.benign}), target <= ${pct(TARGET_FP)} ${r.fpRate <= TARGET_FP ? "ok" : "MISS"}`);
  }
  if (only === undefined || only === "technical") {
    const t = await technicalFalsePositives(engine);
    if (args.includes("--json")) console.log(JSON.stringify({ set: "technical", texts: t.texts, blocked: t.blocked.length, fpRate: t.blocked.length / t.texts }));
    else {
      console.log(`\n== technical text (the DLP corpus: diffs, env dumps, curl lines, configs; none an injection)`);
      if (args.includes("--list")) for (const b of t.blocked) console.log(`FP   [${b.context}] score ${b.score} ${b.rules.join(",")}: ${clip(b.text)}`);
      console.log(`technical: ${t.blocked.length} of ${t.texts} texts judged injections (${pct(t.blocked.length / t.texts)})`);
    }
  }
}

/** The DLP corpus's texts (none an injection) judged as response bodies: which reach the threshold. */
async function technicalFalsePositives(engine: InjectionEngine): Promise<{ texts: number; blocked: { context: string; score: number; rules: string[]; text: string }[] }> {
  const { entries } = buildCorpus(compileRulePack(await loadRuleFiles("rules/dlp/")));
  const blocked: { context: string; score: number; rules: string[]; text: string }[] = [];
  for (const e of entries) {
    const v = inspectResponse("text", e.text, engine, "block");
    if (v.verdict !== "allow") blocked.push({ context: "context" in e ? e.context : e.kind, score: v.score, rules: [...new Set(v.findings.map((f) => f.rule))], text: e.text });
  }
  return { texts: entries.length, blocked };
}
