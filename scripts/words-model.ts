/**
 * The built-in word model (src/scan/injection/words.ts), trained on the injection corpus's
 * tuning sets: dev .. dev7, dev9, dev10 and the older holdouts (holdout to holdout16), whose
 * figures had been looked at too often to stay honest measures (holdout3 and holdout4 joined on
 * 2026-11-28, when holdout8 was written; holdout5 to holdout11 on 2026-11-29, when holdout13 was:
 * trained on half of them, the model did better on the other half, README; holdout12 and
 * holdout13 when holdout15 was, with dev7, written for the model; dev9 when holdout16 was;
 * holdout14 to holdout16 and dev10 when holdout17 was: dev8, trained on by none, and dev10,
 * before it was trained on, did better). dev8, dev11 and dev12 are left out: with the model
 * averaged over three descents, training on them took 12 benign texts and 2 attacks off the
 * folds (126 and 5,572), but let a review's bypass through (a persona order with the DAN prompt
 * in inline code, injection-words.test.ts); with one descent, dev8 alone changed nothing and
 * dev8, dev11 and holdout20 together made the trade a threshold makes. Training on holdout17
 * and holdout18 too was measured when holdout20 was written and not taken (dev8 5 more benign
 * texts blocked and no more attacks, the bench's benign inputs 4 blocked for 2); training on
 * holdout20 (read since) when holdout21 was evaluated (dev8 3 fewer attacks, dev11 1 fewer
 * benign text), and on dev8, dev11 and holdout20 together (on the folds 19 more attacks and 10
 * more benign texts, the trade a threshold makes).
 * holdout17 to holdout31 are never trained on: holdout17 to holdout19 and holdout21 to holdout31
 * are what the model is measured by. Positives are the attack instructions as written (before any
 * hiding or carrier), negatives the benign samples' bodies (texts in their carrier pages, and
 * whole documents); and both get the texts the engine has the model read in each sample.
 *
 * Training is deterministic and takes about two and a half minutes; the result is kept in
 * node_modules/.cache/sluice/ under a SHA-256 of everything it is made from (the corpus
 * directory but for the unseen sets, the injection rules, src/scan and src/inspect, this
 * trainer's code, Bun's version), so a source checkout trains once per change of those; the
 * KEEP_MODELS used last are kept, older ones removed when a new one is written. build.ts
 * embeds it in dist/sluice; scripts/preload.ts registers it for everything run from source, so
 * both judge alike.
 *
 *   bun scripts/words-model.ts      trains (or finds) the model and prints where it is
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import type { ScoreTally } from "../src/scan/injection/engine.ts";
import { trainWordModel, wordModelBytes, wordModelFromBytes, type WordExample, type WordModel } from "../src/scan/injection/words.ts";

const ROOT = join(import.meta.dir, "..");
const CORPUS = join(ROOT, "test/corpus/injection");
/** The sets trained on; UNSEEN stay out (their data is not even in the cache's digest). */
export const TRAINING_SETS = ["dev", "dev2", "dev3", "dev4", "dev5", "dev6", "dev7", "dev9", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7", "holdout8", "holdout9", "holdout10", "holdout11", "holdout12", "holdout13", "holdout14", "holdout15", "holdout16", "dev10"] as const;
export const UNSEEN = ["holdout17", "holdout18", "holdout19", "holdout20", "holdout21", "holdout22", "holdout23", "holdout24", "holdout25", "holdout26", "holdout27", "holdout28", "holdout29", "holdout30", "holdout31"];
const SEED = 5;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

/** A digest of everything the model is made from (Bun's version too: its Unicode tables and YAML parser). */
function sourceDigest(): string {
  const h = createHash("sha256").update(`bun ${Bun.version}\u0000`);
  const unseen = UNSEEN.map((set) => join(CORPUS, "data", set) + "/");
  const corpus = filesUnder(CORPUS).filter((path) => !unseen.some((dir) => path.startsWith(dir)));
  // What decides the texts read around the rules' findings: the rules, the scanner and the
  // response reader, all of it.
  const scanner = ["rules/injection", "src/scan", "src/inspect"].flatMap((dir) => filesUnder(join(ROOT, dir)));
  for (const path of [...corpus, ...scanner, import.meta.path]) {
    h.update(path.slice(ROOT.length)).update("\u0000").update(readFileSync(path)).update("\u0000");
  }
  return h.digest("hex");
}

/**
 * The training examples: every training set's instructions and benign bodies, and the texts the
 * engine has the model read in each sample (around what the rules found: words.ts is asked about
 * these, so it learns them in their sample's label), each text once per label. `sets`: some of
 * the training sets only (scripts/folds-injection.ts); an unseen set, or one that is no
 * training set, is refused.
 */
export async function trainingExamples(sets: readonly string[] = TRAINING_SETS): Promise<WordExample[]> {
  const refused = sets.filter((set) => !(TRAINING_SETS as readonly string[]).includes(set));
  if (refused.length > 0) throw new Error(`the word model trains only on its training sets, not on ${refused.join(", ")}${refused.some((set) => UNSEEN.includes(set)) ? " (never on an unseen set)" : ""}`);
  const { injectionCorpus } = await import("../test/corpus/injection/corpus.ts");
  const { loadRuleFiles } = await import("../src/config/rule-files.ts");
  const { compileInjectionPack } = await import("../src/scan/injection/pack.ts");
  const { createInjectionEngine } = await import("../src/scan/injection/engine.ts");
  const { responseKind, responseSegments } = await import("../src/inspect/response.ts");
  // The built-in pack with a model of no opinion, over no threshold: every anchor's text is read.
  const blank: WordModel = { weights: new Float32Array(1 << 20), bias: 0 };
  const engine = createInjectionEngine({ rules: { ...compileInjectionPack(await loadRuleFiles("rules/injection/")), words: blank }, threshold: Number.MAX_SAFE_INTEGER });
  const examples: WordExample[] = [];
  const seen = new Set<string>();
  const add = (text: string, attack: boolean) => {
    const key = `${attack ? 1 : 0}${text}`;
    if (text.trim().length === 0 || seen.has(key)) return;
    seen.add(key);
    examples.push({ text, attack });
  };
  for (const set of sets as readonly (typeof TRAINING_SETS)[number][]) {
    for (const s of await injectionCorpus(SEED, { set })) {
      const attack = s.label === "attack";
      if (attack && s.instruction !== undefined) add(s.instruction, true);
      else if (!attack) add(s.body, false);
      const tally: ScoreTally = { counted: new Map(), score: 0 };
      engine.scan(responseSegments(responseKind(s.contentType) ?? "text", s.body), tally);
      for (const text of tally.wordsRead?.keys() ?? []) add(text, attack);
    }
  }
  return examples;
}

/**
 * The model and its bytes: from the cache when it is current, else trained now (and cached). The
 * model is read from the bytes either way, as dist/sluice reads them (its bias is stored as a
 * float32).
 */
export async function wordModelFile(): Promise<{ path: string; bytes: Uint8Array; model: WordModel; trained: boolean }> {
  const dir = join(ROOT, "node_modules/.cache/sluice");
  const path = join(dir, `words-${sourceDigest().slice(0, 32)}.bin`);
  const cached = Bun.file(path);
  if (await cached.exists()) {
    try {
      const bytes = new Uint8Array(await cached.arrayBuffer());
      const model = wordModelFromBytes(bytes);
      markUsed(path);
      return { path, bytes, model, trained: false };
    } catch (err) {
      // A damaged cache (or one pruned by another checkout's run as it was read) is trained
      // again, not a dead end.
      console.error(`sluice: the cached word model ${path} is unreadable (${err instanceof Error ? err.message : String(err)}); training it again`);
      rmSync(path, { force: true });
    }
  }
  console.error("sluice: training the word model on the injection corpus (once per change of corpus, rules, scanner or trainer, about two and a half minutes)");
  const bytes = wordModelBytes(trainWordModel(await trainingExamples()));
  mkdirSync(dir, { recursive: true });
  // Written aside and renamed into place: processes started together (a test run's) each train
  // and write, and none may read another's half-written file.
  const tmp = `${path}.${process.pid}.tmp`;
  await Bun.write(tmp, bytes);
  renameSync(tmp, path);
  pruneModelCache(dir, KEEP_MODELS, Date.now());
  return { path, bytes, model: wordModelFromBytes(bytes), trained: true };
}

/**
 * Marks a cached model used (its modification time: pruning keeps the models used last). A user
 * who may read the cache but not write it (a jailed command run as nobody, a read-only checkout)
 * still uses the model: nothing is marked.
 */
export function markUsed(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    // Not ours to touch.
  }
}

/** Models kept in the cache: the current one and those of the last few states of the source (a branch switched back to is not trained again). */
export const KEEP_MODELS = 4;
/** A half-written model older than this is left over from a process that died; younger, another process may still be writing it. */
const STALE_TMP_MS = 60 * 60 * 1000;

/**
 * Removes from `dir` all but the `keep` models used last (by modification time: a model found in
 * the cache is marked used), and half-written ones older than STALE_TMP_MS. Each is 4 MiB, and
 * every change of the corpus, rules or scanner makes one: unpruned, a working day's cache grew
 * to hundreds of megabytes. Files it does not name as models are left alone, and so are those it
 * may not remove. Returns the names removed.
 */
export function pruneModelCache(dir: string, keep: number, now: number): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const models: { name: string; used: number }[] = [];
  const removed: string[] = [];
  for (const name of names) {
    if (!/^words-[0-9a-f]{32}\.bin(?:\.\d+\.tmp)?$/.test(name)) continue;
    let used: number;
    try {
      used = statSync(join(dir, name)).mtimeMs;
    } catch {
      continue;
    }
    if (name.endsWith(".tmp")) {
      if (now - used > STALE_TMP_MS) removed.push(name);
    } else models.push({ name, used });
  }
  models.sort((a, b) => b.used - a.used || a.name.localeCompare(b.name));
  removed.push(...models.slice(keep).map((m) => m.name));
  return removed.filter((name) => {
    try {
      rmSync(join(dir, name), { force: true });
      return true;
    } catch {
      // Another user's, or a directory this one may not write: left for a run that may.
      return false;
    }
  });
}

export async function loadWordModel(): Promise<WordModel> {
  return (await wordModelFile()).model;
}

if (import.meta.main) {
  // Run as the entry point, this file's imports are not the preload's: .wat imports registered here too.
  Bun.plugin((await import("./wat.ts")).watPlugin);
  const t0 = performance.now();
  const { path, trained } = await wordModelFile();
  console.log(`${trained ? "trained" : "found"} ${path} in ${(performance.now() - t0).toFixed(0)} ms`);
}
