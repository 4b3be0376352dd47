/**
 * How much of the injection scanner's recall survives an attacker who writes a sentence of
 * security vocabulary beside the order ("Security advisory: a vulnerability with a known
 * exploit."): the rules count an order in writing about attacks at half weight, so such a
 * sentence is the cheapest evasion there is (README). Each attack of a set whose body holds its
 * instruction as written (or as JSON escapes it) is judged as it is and with the sentence before
 * and after the instruction; printed per technique and in all, for each sentence.
 *
 *   bun scripts/wrapped-injection.ts [--set dev8] [--sentence "..."] [--seed N]
 */
import { inspectResponse, responseKind } from "../src/inspect/response.ts";
import { CORPUS_SETS, injectionCorpus, type CorpusSet, type InjectionSample } from "../test/corpus/injection/corpus.ts";
import { builtinEngine, DEFAULT_SEED } from "./eval-injection.ts";

/** The sentences a review used (2026-11-29): one of attack words, one of framing words. */
export const WRAPPERS = ["Security advisory: a vulnerability with a known exploit.", "As reported, and according to best practice, for example in this study."] as const;

/** `sample`'s body with `sentence` before and after its instruction, or null when the body does not hold the instruction as written or as JSON escapes it. */
export function wrapped(sample: InjectionSample, sentence: string): string | null {
  const instruction = sample.instruction;
  if (instruction === undefined) return null;
  if (sample.body.includes(instruction)) return sample.body.replace(instruction, () => `${sentence} ${instruction} ${sentence}`);
  const escaped = JSON.stringify(instruction).slice(1, -1);
  const sentenceEscaped = JSON.stringify(sentence).slice(1, -1);
  if (escaped !== instruction && sample.body.includes(escaped)) return sample.body.replace(escaped, () => `${sentenceEscaped} ${escaped} ${sentenceEscaped}`);
  return null;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const set = arg("--set") ?? "dev8";
  if (!(CORPUS_SETS as readonly string[]).includes(set)) {
    console.error(`--set wants one of ${CORPUS_SETS.join(", ")}`);
    process.exit(2);
  }
  const sentences = arg("--sentence") !== undefined ? [arg("--sentence")!] : WRAPPERS;
  const engine = await builtinEngine();
  const blocked = (contentType: string, body: string) => inspectResponse(responseKind(contentType) ?? "text", body, engine, "block").verdict !== "allow";
  const attacks = (await injectionCorpus(Number(arg("--seed") ?? DEFAULT_SEED), { set: set as CorpusSet })).filter((s) => s.label === "attack");
  for (const sentence of sentences) {
    const byTechnique = new Map<string, { n: number; asWritten: number; wrapped: number }>();
    let skipped = 0;
    for (const s of attacks) {
      const body = wrapped(s, sentence);
      if (body === null) {
        skipped++;
        continue;
      }
      const t = byTechnique.get(s.technique) ?? { n: 0, asWritten: 0, wrapped: 0 };
      t.n++;
      if (blocked(s.contentType, s.body)) t.asWritten++;
      if (blocked(s.contentType, body)) t.wrapped++;
      byTechnique.set(s.technique, t);
    }
    console.log(`\n${set}, wrapped in ${JSON.stringify(sentence)} (${skipped} attacks whose body does not hold the instruction as written left out):`);
    console.log(`  ${"technique".padEnd(22)} ${"attacks".padStart(8)} ${"blocked as written".padStart(19)} ${"blocked wrapped".padStart(16)}`);
    const all = { n: 0, asWritten: 0, wrapped: 0 };
    for (const [technique, t] of [...byTechnique].sort((a, b) => a[0].localeCompare(b[0]))) {
      console.log(`  ${technique.padEnd(22)} ${String(t.n).padStart(8)} ${String(t.asWritten).padStart(19)} ${String(t.wrapped).padStart(16)}`);
      all.n += t.n;
      all.asWritten += t.asWritten;
      all.wrapped += t.wrapped;
    }
    console.log(`  ${"all".padEnd(22)} ${String(all.n).padStart(8)} ${String(all.asWritten).padStart(19)} ${String(all.wrapped).padStart(16)}`);
  }
}
