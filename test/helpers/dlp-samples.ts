/**
 * Realistic secrets for tests, taken from the rule pack's own match examples (so they carry
 * valid checksums and shapes) and cut out by the rule itself.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { compileRulePack, type CompiledRules } from "../../src/scan/rules/compile.ts";
import { ROOT } from "./sluice.ts";

let pack: CompiledRules | null = null;

/** The secret in the first match example of `ruleId` that the rule finds. */
export function sampleSecret(ruleId: string): string {
  if (pack === null) {
    const dir = join(ROOT, "rules/dlp");
    pack = compileRulePack(readdirSync(dir).filter((f) => f.endsWith(".yaml")).map((f) => ({ path: f, text: readFileSync(join(dir, f), "utf8") })));
  }
  const rule = pack.rules.find((r) => r.id === ruleId);
  if (!rule) throw new Error(`no rule ${ruleId}`);
  for (const ex of rule.examples.match) {
    const f = pack.scan(ex).find((x) => x.rule === ruleId);
    if (f) return ex.slice(f.start, f.end);
  }
  throw new Error(`no example of ${ruleId} is found by the rule`);
}
