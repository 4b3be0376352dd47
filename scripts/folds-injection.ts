/**
 * The injection scanner on text its word model has not seen, without spending a holdout: for
 * each fold (some of the model's training sets), a model is trained on the other training sets
 * the way scripts/words-model.ts trains the built-in one, and the engine with that model judges
 * the fold's sets. A change to the rules, the engine or the trainer is measured here before it
 * is taken (the README's "on the folds" figures); the held-out sets (holdout17 on) stay for the
 * end of a round.
 *
 * Each fold trains a model (about two minutes); nothing is cached. The default folds are the two
 * the README's figures use: holdout14 to holdout16 and dev10, then holdout10 to holdout13.
 *
 *   bun scripts/folds-injection.ts [--folds a,b,c:d,e] [--seed N]
 */
import { loadRuleFiles } from "../src/config/rule-files.ts";
import { createInjectionEngine } from "../src/scan/injection/engine.ts";
import { compileInjectionPack } from "../src/scan/injection/pack.ts";
import { trainWordModel, wordModelBytes, wordModelFromBytes } from "../src/scan/injection/words.ts";
import type { CorpusSet } from "../test/corpus/injection/corpus.ts";
import { DEFAULT_SEED, evaluateInjection } from "./eval-injection.ts";
import { TRAINING_SETS, trainingExamples } from "./words-model.ts";

export const DEFAULT_FOLDS: readonly (readonly string[])[] = [
  ["holdout14", "holdout15", "holdout16", "dev10"],
  ["holdout10", "holdout11", "holdout12", "holdout13"],
];

/** Parses `--folds` (sets by commas, folds by colons): each set a training set, none in two folds. */
export function parseFolds(spec: string): string[][] {
  const folds = spec.split(":").map((fold) => fold.split(",").map((set) => set.trim()).filter((set) => set.length > 0));
  const seen = new Set<string>();
  for (const fold of folds) {
    if (fold.length === 0) throw new Error("--folds: an empty fold");
    for (const set of fold) {
      if (!(TRAINING_SETS as readonly string[]).includes(set)) throw new Error(`--folds: ${set} is not one of the word model's training sets (${TRAINING_SETS.join(", ")})`);
      if (seen.has(set)) throw new Error(`--folds: ${set} is in two folds`);
      seen.add(set);
    }
  }
  return folds;
}

if (import.meta.main) {
  // Run as the entry point, this file's imports are not the preload's: .wat imports registered here too.
  Bun.plugin((await import("./wat.ts")).watPlugin);
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  let folds: readonly (readonly string[])[];
  try {
    folds = arg("--folds") === undefined ? DEFAULT_FOLDS : parseFolds(arg("--folds")!);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  }
  const seed = Number(arg("--seed") ?? DEFAULT_SEED);
  const pack = compileInjectionPack(await loadRuleFiles("rules/injection/"));
  const pct = (a: number, b: number) => `${a}/${b}`.padStart(11) + `${((100 * a) / b).toFixed(1)}%`.padStart(7);
  let attacks = 0;
  let caught = 0;
  let benign = 0;
  let blocked = 0;
  for (const [k, fold] of folds.entries()) {
    const t0 = performance.now();
    const rest = TRAINING_SETS.filter((set) => !fold.includes(set));
    // Read back from its bytes, as dist/sluice reads the built-in model (the bias a float32).
    const words = wordModelFromBytes(wordModelBytes(trainWordModel(await trainingExamples(rest))));
    const engine = createInjectionEngine({ rules: { ...pack, words } });
    console.log(`fold ${k + 1}: a model of ${rest.length} sets, trained in ${((performance.now() - t0) / 1000).toFixed(0)} s, judges ${fold.join(", ")}`);
    console.log(`  ${"set".padEnd(10)} ${"attacks caught".padStart(18)} ${"benign blocked".padStart(18)}`);
    let a = 0;
    let c = 0;
    let b = 0;
    let f = 0;
    for (const set of fold) {
      const r = await evaluateInjection(engine, seed, set as CorpusSet);
      const hit = r.attacks - r.misses.length;
      const fp = r.falsePositives.length;
      console.log(`  ${set.padEnd(10)} ${pct(hit, r.attacks)} ${pct(fp, r.benign)}`);
      a += r.attacks;
      c += hit;
      b += r.benign;
      f += fp;
    }
    console.log(`  ${"fold".padEnd(10)} ${pct(c, a)} ${pct(f, b)}`);
    attacks += a;
    caught += c;
    benign += b;
    blocked += f;
  }
  console.log(`folds: attacks caught ${caught}/${attacks} (${((100 * caught) / attacks).toFixed(2)}%), benign blocked ${blocked}/${benign} (${((100 * blocked) / benign).toFixed(2)}%)`);
}
