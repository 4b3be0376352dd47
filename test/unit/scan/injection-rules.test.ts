/**
 * Every example of every prompt-injection rule (rules/injection/*.yaml) runs as its own test,
 * named by rule id: a match example is found by its rule in the text as written or in one of the
 * engine's readings (NFKC, invisibles removed, look-alikes, leetspeak, ...), a no_match example
 * in none of them.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readingsOf } from "../../../src/scan/injection/readings.ts";
import { compileRulePack } from "../../../src/scan/rules/compile.ts";

const DIR = join(import.meta.dir, "../../../rules/injection");
const files = readdirSync(DIR)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((f) => ({ path: `rules/injection/${f}`, text: readFileSync(join(DIR, f), "utf8") }));
const pack = compileRulePack(files, "inj");
const foundBy = (text: string, rule: string) => readingsOf(text).some((r) => pack.scan(r.text).some((f) => f.rule === rule));

describe("rules/injection: every example of every rule", () => {
  test("the pack loads: at least 40 rules, each with a weight", () => {
    expect(pack.rules.length).toBeGreaterThanOrEqual(40);
    for (const r of pack.rules) expect(r.weight).toBeGreaterThan(0);
  });

  for (const rule of pack.rules) {
    rule.examples.match.forEach((example, i) => {
      test(`${rule.id} matches example ${i + 1}`, () => expect(foundBy(example, rule.id)).toBe(true));
    });
    rule.examples.no_match.forEach((example, i) => {
      test(`${rule.id} does not match counter-example ${i + 1}`, () => expect(foundBy(example, rule.id)).toBe(false));
    });
  }
});

describe("injection rule schema", () => {
  test("a rule without a weight, with a dlp id or with a validator is refused at load, with its id", () => {
    const bad = (body: string) => () => compileRulePack([{ path: "t.yaml", text: `rules:\n  - ${body}` }], "inj");
    const base = "description: d\n    severity: high\n    keywords: [x]\n    pattern: 'xx'\n    examples: { match: ['xx'], no_match: ['y'] }";
    expect(bad(`id: inj.no-weight\n    ${base}`)).toThrow(/inj\.no-weight.*weight/s);
    expect(bad(`id: dlp.wrong-family\n    weight: 10\n    ${base}`)).toThrow(/inj\./);
    expect(bad(`id: inj.validator\n    weight: 10\n    validator: luhn\n    ${base}`)).toThrow(/validator/);
  });
});
