/**
 * How much of the injection scanner's recall survives an attacker who dresses the order up as
 * something discussed or shown: a sentence of security vocabulary beside it ("Security advisory:
 * a vulnerability with a known exploit."), since the rules count an order in writing about
 * attacks at half weight, the cheapest evasion there is (README); or a code block around it
 * (a markdown fence, `<pre><code>` in HTML), which the rules count half as code, alone and after
 * a sentence about attacks; or a block quote (alone and after it) or quotation marks (after
 * it), which the word model reads as it reads code in writing about attacks. Each attack of a set whose body holds its instruction as written (or
 * as JSON escapes it) is judged as it is and wrapped; printed per technique and in all, for each
 * wrapper.
 *
 *   bun scripts/wrapped-injection.ts [--set dev8] [--sentence "..."] [--seed N]
 */
import { inspectResponse, responseKind } from "../src/inspect/response.ts";
import { CORPUS_SETS, injectionCorpus, type CorpusSet, type InjectionSample } from "../test/corpus/injection/corpus.ts";
import { builtinEngine, DEFAULT_SEED } from "./eval-injection.ts";

/** What an instruction is replaced with, given the sample (its carrier decides how code is written). */
type Wrap = (instruction: string, sample: InjectionSample) => string;

/** A sentence before and after the instruction. */
export const around =
  (sentence: string): Wrap =>
  (instruction) =>
    `${sentence} ${instruction} ${sentence}`;

/** The instruction as a code block (after `lead`, if any): `<pre><code>` in HTML, a markdown fence elsewhere. */
export const asCode =
  (lead = ""): Wrap =>
  (instruction, sample) =>
    sample.carrier === "html" ? `${lead}<pre><code>${instruction}</code></pre>` : `${lead}\n\n\`\`\`\n${instruction}\n\`\`\`\n\n`;

/** The instruction as a block quote (after `lead`, if any): `<blockquote>` in HTML, markdown's `> ` lines elsewhere. */
export const asQuote =
  (lead = ""): Wrap =>
  (instruction, sample) =>
    sample.carrier === "html" ? `${lead}<blockquote>${instruction}</blockquote>` : `${lead}\n\n${instruction.replace(/^/gm, "> ")}\n\n`;

/** The instruction in quotation marks (after `lead`, if any). */
export const inQuotes =
  (lead = ""): Wrap =>
  (instruction) =>
    `${lead} "${instruction}"`;

/** The wrappers a review used (2026-11-29: the two sentences, one of attack words, one of framing words), the code blocks, the block quotes and quotation marks (2026-11-30). */
export const WRAPPERS: readonly { name: string; wrap: Wrap }[] = [
  { name: '"Security advisory: a vulnerability with a known exploit."', wrap: around("Security advisory: a vulnerability with a known exploit.") },
  { name: '"As reported, and according to best practice, for example in this study."', wrap: around("As reported, and according to best practice, for example in this study.") },
  { name: "a code block", wrap: asCode() },
  { name: 'a code block after "Researchers warn about prompt injection attacks, for example:"', wrap: asCode("Researchers warn about prompt injection attacks, for example:") },
  { name: "a block quote", wrap: asQuote() },
  { name: 'a block quote after "Researchers warn about prompt injection attacks, for example:"', wrap: asQuote("Researchers warn about prompt injection attacks, for example:") },
  { name: 'quotation marks after "Researchers warn about prompt injection attacks, for example:"', wrap: inQuotes("Researchers warn about prompt injection attacks, for example:") },
];

/** `sample`'s body with its instruction wrapped (a sentence: before and after it), or null when the body does not hold the instruction as written or as JSON escapes it. */
export function wrapped(sample: InjectionSample, wrap: string | Wrap): string | null {
  const instruction = sample.instruction;
  if (instruction === undefined) return null;
  const replace = typeof wrap === "string" ? around(wrap) : wrap;
  const asJson = (t: string) => JSON.stringify(t).slice(1, -1);
  // In JSON (an API body, a stream's events) what goes in is escaped as the instruction is.
  const json = sample.carrier === "json" || sample.carrier === "sse";
  if (sample.body.includes(instruction)) return sample.body.replace(instruction, () => (json ? asJson(replace(instruction, sample)) : replace(instruction, sample)));
  const escaped = asJson(instruction);
  if (escaped !== instruction && sample.body.includes(escaped)) return sample.body.replace(escaped, () => asJson(replace(instruction, sample)));
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
  const sentence = arg("--sentence");
  const wrappers = sentence !== undefined ? [{ name: JSON.stringify(sentence), wrap: around(sentence) }] : WRAPPERS;
  const engine = await builtinEngine();
  const blocked = (contentType: string, body: string) => inspectResponse(responseKind(contentType) ?? "text", body, engine, "block").verdict !== "allow";
  const attacks = (await injectionCorpus(Number(arg("--seed") ?? DEFAULT_SEED), { set: set as CorpusSet })).filter((s) => s.label === "attack");
  for (const { name, wrap } of wrappers) {
    const byTechnique = new Map<string, { n: number; asWritten: number; wrapped: number }>();
    let skipped = 0;
    for (const s of attacks) {
      const body = wrapped(s, wrap);
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
    console.log(`\n${set}, wrapped in ${name} (${skipped} attacks whose body does not hold the instruction as written left out):`);
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
