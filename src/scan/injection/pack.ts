/**
 * The injection pack as loaded from rules/injection/: pattern rules (files with `rules:`,
 * scan/rules/compile.ts), cue lexicons (`lexicon:`) and cue intents (`intents:`, cues.ts),
 * compiled into one scanner with the shape of a rule pack. A file is what its one top-level key
 * says; an id defined twice, in either kind, is an error. The rules of one pattern file form a
 * group (CompiledRule.group), as the cue intents do: a response counts a group once.
 */
import { compileRulePack, parseRuleYaml, RulePackError, type CompiledRules, type RulePackIssue } from "../rules/compile.ts";
import { keywordText } from "../rules/keywords.ts";
import { compileCues, CUE_GROUP, type CueRules } from "./cues.ts";

export type InjectionPack = CueRules;

/**
 * Compiled cue lexicons and intents by their files' paths and texts: the injection pack and the
 * MCP tool pack (the same files plus rules/mcp) share them, and building their automata is most
 * of a pack's compile time. Compiling is pure, so a second compile of the same files reuses the
 * first (a scan uses the scanner's scratch buffers synchronously, so sharing one is safe).
 */
const compiledCues = new Map<string, CueRules>();

export function compileInjectionPack(files: readonly { path: string; text: string }[]): InjectionPack {
  const ruleFiles: { path: string; text: string }[] = [];
  const lexicons: { path: string; doc: unknown }[] = [];
  const intents: { path: string; doc: unknown }[] = [];
  const issues: RulePackIssue[] = [];
  let cueKey = "";
  for (const file of files) {
    const doc = parseRuleYaml(file, issues);
    if (doc === undefined) continue;
    const keys = doc !== null && typeof doc === "object" ? Object.keys(doc) : [];
    if (keys.length === 1 && (keys[0] === "lexicon" || keys[0] === "intents")) {
      (keys[0] === "lexicon" ? lexicons : intents).push({ path: file.path, doc });
      cueKey += `${file.path}\u0000${file.text}\u0000`;
    } else ruleFiles.push(file);
  }
  if (issues.length > 0) throw new RulePackError(issues);
  const packs: CompiledRules[] = [];
  const errors: RulePackIssue[] = [];
  // rules/mcp/ (tool poisoning) is written in this format with `mcp.` ids: compiled beside it
  // when a caller loads both (the engine that judges MCP tool definitions).
  const mcpFiles = ruleFiles.filter((f) => f.path.startsWith("rules/mcp/"));
  const injFiles = ruleFiles.filter((f) => !f.path.startsWith("rules/mcp/"));
  const compileMcp = (): CompiledRules => (mcpFiles.length === 0 ? { rules: [], scan: () => [] } : compileRulePack(mcpFiles, "mcp"));
  for (const compile of [() => joinPacks(compileRulePack(injFiles, "inj"), compileMcp()), () => compiledCues.get(cueKey) ?? remember(cueKey, compileCues(lexicons, intents))]) {
    try {
      packs.push(compile());
    } catch (e) {
      if (!(e instanceof RulePackError)) throw e;
      errors.push(...e.issues);
    }
  }
  const seen = new Map<string, string>();
  for (const rule of packs.flatMap((p) => p.rules)) {
    const other = seen.get(rule.id);
    if (other !== undefined) errors.push({ path: rule.path, id: rule.id, message: `duplicate rule id (also in ${other})` });
    seen.set(rule.id, rule.path);
  }
  if (errors.length > 0) throw new RulePackError(errors);
  const [patterns, cues] = packs as [CompiledRules, CueRules];
  // The pattern rules of one file weigh one kind of evidence (several spellings of a chat
  // template, of a jailbreak): a response counts each file once, at its strongest rule. A file
  // named `cue-*.yaml` writes a move of the cue intents as fixed phrases: it counts with them.
  const grouped = patterns.rules.map((r) => ({ ...r, group: groupOf(r) }));
  // What a leetspeak word may read as (readings.ts): the words of the lexicons and of the rules' keywords.
  const vocabulary = new Set(cues.vocabulary);
  for (const r of patterns.rules) for (const k of r.keywords) for (const w of keywordText(k).text.split(/[^a-z]+/)) if (w.length >= 3) vocabulary.add(w);
  return {
    rules: [...grouped, ...cues.rules],
    discussionCues: (text) => cues.discussionCues(text),
    relayCues: (text) => cues.relayCues(text),
    exampleCues: (text) => cues.exampleCues(text),
    cuesOf: (text) => cues.cuesOf(text),
    completionsOf: (text) => cues.completionsOf(text),
    vocabulary,
    scan: (text) => {
      const a = patterns.scan(text);
      const b = cues.scan(text);
      return b.length === 0 ? a : a.length === 0 ? b : a.concat(b);
    },
  };
}

function remember(key: string, cues: CueRules): CueRules {
  // Only the built-in packs come here more than once; a config's own files are few and small.
  if (compiledCues.size >= 4) compiledCues.clear();
  compiledCues.set(key, cues);
  return cues;
}

/** What a pattern rule counts under: its file, or the cue intents for a `cue-*.yaml` file of inj rules. */
function groupOf(rule: { id: string; path: string }): string {
  const name = rule.path.replace(/^.*\//, "").replace(/\.yaml$/, "");
  if (rule.id.startsWith("mcp.")) return `mcp.${name}`;
  return name.startsWith(CUE_FILE_PREFIX) ? CUE_GROUP : `inj.${name}`;
}

/** Pattern rule files (`rules/injection/cue-*.yaml`) whose rules count with the cue intents. */
export const CUE_FILE_PREFIX = "cue-";

/** Two compiled pattern packs as one. */
function joinPacks(a: CompiledRules, b: CompiledRules): CompiledRules {
  if (b.rules.length === 0) return a;
  return { rules: [...a.rules, ...b.rules], scan: (text) => [...a.scan(text), ...b.scan(text)] };
}
