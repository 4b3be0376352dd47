/**
 * The `dlp` section compiled into DlpSettings. Pure: the built-in rule pack (compiled once per
 * process) and the known secrets' values (read by the loader) are passed in. Every problem is
 * reported with its key path, never with a secret value.
 */
import type { DlpSettings } from "../policy/policy.ts";
import { createDlpEngine, joinRules } from "../scan/dlp.ts";
import { compileKnownSecrets, type KnownSecret } from "../scan/known-secrets.ts";
import type { CompiledRules } from "../scan/rules/compile.ts";
import { RulePackError } from "../scan/rules/compile.ts";
import { compileCustomRules } from "../scan/rules/custom.ts";
import type { Config } from "./schema.ts";

type Issue = { path: string; message: string };

export function compileDlp(dlp: Config["dlp"], builtin: CompiledRules, knownSecrets: readonly KnownSecret[], issues: Issue[]): DlpSettings | null {
  if (!dlp.enabled) return null;
  let custom: CompiledRules | null = null;
  if (dlp.custom_rules.length > 0) {
    try {
      custom = compileCustomRules(dlp.custom_rules, "dlp.custom_rules");
    } catch (err) {
      // Paths written like the rest of the config's (`dlp.custom_rules.0`, not `[0]`).
      if (err instanceof RulePackError) for (const i of err.issues) issues.push({ path: i.path.replace(/\[(\d+)\]/g, ".$1"), message: `${i.id}: ${i.message}` });
      else issues.push({ path: "dlp.custom_rules", message: String(err) });
    }
  }
  const builtinIds = new Set(builtin.rules.map((r) => r.id));
  dlp.custom_rules.forEach((r, i) => {
    if (builtinIds.has(r.id)) issues.push({ path: `dlp.custom_rules.${i}.id`, message: `${r.id} is a built-in rule id; pick another (dlp.custom.<name>)` });
  });
  const rules = joinRules(builtin, custom);
  const ids = [...rules.rules.map((r) => r.id), "dlp.known-secret"];
  // A typo in a rule id would silently leave the rule at the default action: refuse it.
  for (const key of Object.keys(dlp.actions)) {
    const known = key.endsWith("*") ? ids.some((id) => id.startsWith(key.slice(0, -1))) : ids.includes(key);
    if (!known) issues.push({ path: `dlp.actions.${key}`, message: key.endsWith("*") ? "matches no rule" : "no such rule" });
  }
  dlp.disable.forEach((id, i) => {
    if (!ids.includes(id)) issues.push({ path: `dlp.disable.${i}`, message: `no such rule: ${id}` });
  });
  if (dlp.body.max_held_total < dlp.body.max_buffer) issues.push({ path: "dlp.body.max_held_total", message: "must be at least dlp.body.max_buffer" });
  if (dlp.body.overlap >= dlp.body.max_buffer) issues.push({ path: "dlp.body.overlap", message: "must be smaller than dlp.body.max_buffer" });
  const known = compileKnownSecrets(knownSecrets, { minLength: dlp.known_secrets.min_length });
  for (const name of known.skipped) issues.push({ path: "dlp.known_secrets", message: `${name} is shorter than min_length (${dlp.known_secrets.min_length}): too short to look for without false positives` });
  return {
    engine: createDlpEngine({ rules, known, defaultAction: dlp.action, actions: dlp.actions, disabled: dlp.disable }),
    maxBufferBytes: dlp.body.max_buffer,
    overlapBytes: dlp.body.overlap,
    maxHeldTotalBytes: dlp.body.max_held_total,
    inflate: { maxOutputBytes: dlp.body.max_decompressed, maxRatio: dlp.body.max_ratio },
  };
}
