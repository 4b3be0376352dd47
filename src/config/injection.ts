/**
 * The `injection` section compiled into InjectionSettings. Pure: the built-in rule pack is
 * compiled once per process and passed in. Every problem is reported with its key path.
 */
import { compileHostPatterns } from "../net/host-pattern.ts";
import type { InjectionSettings } from "../policy/policy.ts";
import { CARRIER_RULES, createInjectionEngine, UNCONFIRMED_RULE, type InjectionOptions } from "../scan/injection/engine.ts";
import { WORD_RULE } from "../scan/injection/words.ts";
import type { Config } from "./schema.ts";

type Issue = { path: string; message: string };

type Pack = InjectionOptions["rules"];

const EMPTY: Pack = { rules: [], scan: () => [] };

export function compileInjection(inj: Config["injection"], body: Config["dlp"]["body"], builtin: Pack | null, issues: Issue[]): InjectionSettings | null {
  if (!inj.enabled) return null;
  const pack = builtin ?? EMPTY;
  const ids = new Set([...pack.rules.map((r) => r.id), ...Object.values(CARRIER_RULES).map((r) => r.id), ...(pack.words ? [WORD_RULE.id, UNCONFIRMED_RULE] : [])]);
  inj.disable.forEach((id, i) => {
    if (!ids.has(id)) issues.push({ path: `injection.disable.${i}`, message: `no such rule: ${id}` });
  });
  const disabled = new Set(inj.disable);
  // The pack's discussion count and vocabulary go with it (pack.ts); only its rules are filtered.
  const rules: Pack =
    disabled.size === 0 ? pack : { ...pack, rules: pack.rules.filter((r) => !disabled.has(r.id)), scan: (text) => pack.scan(text).filter((f) => !disabled.has(f.rule)) };
  return {
    engine: createInjectionEngine({ rules, threshold: inj.threshold, disabled }),
    action: inj.action,
    exempt: inj.exempt_hosts.length > 0 ? compileHostPatterns(inj.exempt_hosts, { purpose: "allow" }) : null,
    maxBufferBytes: inj.max_buffer,
    oversize: inj.oversize,
    inflate: { maxOutputBytes: body.max_decompressed, maxRatio: body.max_ratio },
  };
}
