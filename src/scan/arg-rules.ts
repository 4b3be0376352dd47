/**
 * MCP argument rules (rules/mcp-args): what an agent's tool call asks a shell or exec tool to
 * do, judged over the JSON arguments of `tools/call`. Every string in the arguments is read as
 * a shell would read it (shell.ts: quotes, `$IFS`, slicing, printf, base64 piped to sh, ...), and
 * every reading is scanned by the rule pack: destructive commands, reverse shells, download and
 * execute, credential files, persistence. A rule's weight says what a match means alone: 50 and
 * more blocks, less warns (the injection scale, rules/injection).
 *
 * The pack is compiled by the rule compiler of the other packs (scan/rules/compile.ts), as an
 * `mcp` family (the injection format: a weight per rule, no validators), its ids `mcp.arg-...`.
 */
import { compileRulePack, parseRuleYaml, RulePackError, type CompiledRules, type RulePackIssue } from "./rules/compile.ts";
import { shellReadings } from "./shell.ts";

export type ArgRules = CompiledRules;

export interface ArgFinding {
  /** Rule id, `mcp.arg-...`. */
  readonly rule: string;
  /** The rule's weight: 50 and more blocks alone. */
  readonly weight?: number;
  /** Which reading of the string matched (shellReadings): 0 as written, higher de-obfuscated. */
  readonly reading: number;
  /** A few characters of each end of the match, never the command. */
  readonly preview: string;
  /** Where the string is in the arguments: `command`, `options.env.X`, `argv` (joined), `args[2]`, `` for a bare string; a key that is not a name is `*`. */
  readonly path: string;
}

/** Reported when the arguments are too large or deep to judge in full (fail closed). */
export const ARG_LIMIT_RULE = "mcp.arg-limits";
/** Strings judged per call, their characters in total, and the nesting walked. */
export const MAX_ARG_STRINGS = 1024;
export const MAX_ARG_CHARS = 1024 * 1024;
export const MAX_ARG_DEPTH = 32;

const ARG_ID = /^mcp\.arg-[a-z0-9]+(?:-[a-z0-9]+)*$/;

/**
 * Parses, validates and compiles the argument rule files, or throws a RulePackError naming every
 * bad rule by its file and `mcp.arg-` id.
 */
export function compileArgRules(files: readonly { path: string; text: string }[]): ArgRules {
  const issues: RulePackIssue[] = [];
  for (const file of files) {
    const doc = parseRuleYaml(file, issues);
    const rules = doc !== null && typeof doc === "object" && "rules" in doc ? (doc as { rules: unknown }).rules : undefined;
    if (!Array.isArray(rules)) continue; // Not a rule file: the compiler reports it with its own message.
    rules.forEach((raw: unknown, index) => {
      const id = raw !== null && typeof raw === "object" && "id" in raw && typeof raw.id === "string" ? raw.id : "";
      if (!ARG_ID.test(id)) issues.push({ path: file.path, id: id || `rules[${index}]`, message: "must be kebab-case and start with `mcp.arg-` (e.g. mcp.arg-reverse-shell)" });
    });
  }
  if (issues.length > 0) throw new RulePackError(issues);
  return compileRulePack(files, "mcp");
}

/** Each pack's rule weights, built once per pack rather than per tool call. */
const WEIGHTS = new WeakMap<ArgRules, ReadonlyMap<string, number | undefined>>();

/** Object keys that are names (`command`, `cwd`, `PROMPT_COMMAND`) are not judged; others are. */
const PLAIN_KEY = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * The findings of `rules` in the JSON arguments of one tool call: every string (an array of
 * strings is an argv and is joined with spaces first), read as a shell would (shellReadings).
 * A rule is reported once per string, at the first reading that matched. Past MAX_ARG_STRINGS,
 * MAX_ARG_CHARS or MAX_ARG_DEPTH the rest is not read and an ARG_LIMIT_RULE finding says so.
 */
export function judgeArguments(rules: ArgRules, args: unknown): ArgFinding[] {
  let weights = WEIGHTS.get(rules);
  if (weights === undefined) {
    weights = new Map(rules.rules.map((r) => [r.id, r.weight]));
    WEIGHTS.set(rules, weights);
  }
  const findings: ArgFinding[] = [];
  let strings = 0;
  let chars = 0;
  let limited: string | null = null;

  const judge = (text: string, path: string): void => {
    strings++;
    chars += text.length;
    if (strings > MAX_ARG_STRINGS || chars > MAX_ARG_CHARS) {
      limited ??= path;
      return;
    }
    const seen = new Set<string>();
    shellReadings(text).forEach((reading, index) => {
      for (const f of rules.scan(reading)) {
        if (seen.has(f.rule)) continue;
        seen.add(f.rule);
        const weight = f.weight ?? weights.get(f.rule);
        findings.push(weight === undefined ? { rule: f.rule, reading: index, preview: f.preview, path } : { rule: f.rule, weight, reading: index, preview: f.preview, path });
      }
    });
  };

  const walk = (value: unknown, path: string, depth: number): void => {
    if (limited !== null) return;
    if (typeof value === "string") return judge(value, path);
    if (value === null || typeof value !== "object") return;
    if (depth >= MAX_ARG_DEPTH) {
      limited ??= path;
      return;
    }
    if (Array.isArray(value)) {
      if (value.length > 0 && value.every((v) => typeof v === "string")) return judge(value.join(" "), path);
      value.forEach((v, i) => walk(v, `${path}[${i}]`, depth + 1));
      return;
    }
    for (const [key, v] of Object.entries(value)) {
      // A key that is not a name may be the command itself: the path says `*`, not the key.
      const plain = PLAIN_KEY.test(key);
      const at = path === "" ? (plain ? key : "*") : `${path}.${plain ? key : "*"}`;
      if (!plain) judge(key, at);
      walk(v, at, depth + 1);
    }
  };

  walk(args, "", 0);
  if (limited !== null) findings.push({ rule: ARG_LIMIT_RULE, weight: 100, reading: 0, preview: "…", path: limited });
  return findings;
}
