/**
 * Compiles rule packs once, at load (ARCHITECTURE.md, "Compile once, run many"): YAML parsed,
 * every rule validated, every pattern checked for catastrophic backtracking and compiled, the
 * keyword prefilter built. Every bad rule is reported in one error with its file and id; nothing
 * is parsed or compiled per scan.
 */
import { injectionRuleSchema, mcpRuleSchema, ruleSchema, type Rule, type RuleFamily, type Severity } from "./schema.ts";
import { compileKeywords, keywordText, type KeywordHits } from "./keywords.ts";
import { classRuns, forEachClassRun } from "../class-runs.ts";
import { analysePattern, keywordAnchored, type RunClass } from "./safety.ts";
import { cachedAutomaton, type AutomatonData } from "../automata-store.ts";
import { isAscii } from "../ascii.ts";
import { VALIDATORS, shannonEntropy, type ValidatorName } from "./validators.ts";

export interface Finding {
  /** Rule id, e.g. `dlp.github-token`. */
  readonly rule: string;
  /** UTF-16 offsets of the secret in the scanned text. */
  readonly start: number;
  readonly end: number;
  /** A few characters of each end of the secret, never the value. */
  readonly preview: string;
  /** Injection cue intents (scan/injection/cues.ts): the weight this match counts, when not the rule's own. */
  readonly weight?: number;
}

export interface CompiledRule {
  readonly id: string;
  readonly description: string;
  readonly severity: Severity;
  readonly keywords: readonly string[];
  readonly validator: ValidatorName | undefined;
  /** What a match adds to a response's score (injection rules only). */
  readonly weight: number | undefined;
  /**
   * Injection rules that weigh the same evidence (the cue intents): a response counts the group
   * once, at its highest weight, rather than each rule of it.
   */
  readonly group?: string;
  readonly examples: { readonly match: readonly string[]; readonly no_match: readonly string[] };
  /** Where the rule was defined, for messages. */
  readonly path: string;
}

export interface CompiledRules {
  readonly rules: readonly CompiledRule[];
  scan(text: string): Finding[];
}

export interface RulePackIssue {
  readonly path: string;
  /** Rule id when the rule has a readable one, else `rules[<index>]`. */
  readonly id: string;
  readonly message: string;
}

/** One or more rules failed to load; lists all of them. */
export class RulePackError extends Error {
  constructor(readonly issues: readonly RulePackIssue[]) {
    super(`invalid rule pack:\n${issues.map((i) => `  ${i.path}: ${i.id}: ${i.message}`).join("\n")}`);
    this.name = "RulePackError";
  }
}

/**
 * Placeholders common to every rule: documentation values and template variables are not
 * secrets. Tested against the secret (the captured group), so a real token next to a placeholder
 * is still found.
 */
const GLOBAL_PLACEHOLDERS: readonly RegExp[] = [
  /x{5,}/i, // xxxxxxxx, XXXX-XXXX
  /\*{3,}/, // masked values
  /\.\.\.|…/, // truncated in documentation: sk-ant-api03-...
  /^<[^>]*>$|<your[-_ ]/i, // <your-token>, <API_KEY>
  /^\$\{[^}]*\}$|^\$[A-Z_][A-Z0-9_]*$/, // ${API_KEY}, $API_KEY
  /^\$\([A-Za-z_][A-Za-z0-9_]*\)$/, // $(API_KEY): Kubernetes env references, make
  /^\{\{[^}]*\}\}$|\{\{/, // {{ token }}
  /^%[sv]$|^%\([a-z_]+\)s$/, // printf and Python %(name)s
  /example|placeholder|redacted|your[-_]?(?:api[-_]?)?(?:key|token|secret|password)/i,
  /^(?:0123456789|1234567890|abcdefgh)/i,
];

interface Matcher {
  readonly rule: CompiledRule;
  readonly regex: RegExp;
  /** The pattern, sticky: tried at the places a match can start (matchAt). */
  readonly sticky: RegExp;
  /**
   * Every match begins with one of the rule's keywords (keywordAnchored): the rule is then tried
   * only where a keyword starts.
   */
  readonly anchored: boolean;
  /** Upper bound on the characters a match reads (analysePattern); Infinity when unbounded or the keywords are context outside the match. */
  readonly reach: number;
  /** Every match reads a character beyond ASCII (analysePattern): not searched in ASCII text. */
  readonly wide: boolean;
  /** Ids in the keyword automaton; empty when the rule has a short keyword and runs on every text. */
  readonly keywordIds: readonly number[];
  /**
   * When every match is a run of at least RUN_PREFILTER_MIN_LENGTH characters of one ASCII class
   * (analysePattern): the class. The rule is then tried only where a match can start in such a
   * run when its keywords cannot place it.
   */
  readonly runs: RunClass | null;
  readonly validate: ((value: string) => boolean) | undefined;
  readonly entropy: number | undefined;
  /** Documentation placeholders (`xxxx`, `<your-token>`, "example") are not findings (secrets only). */
  readonly placeholders: boolean;
  readonly allow: readonly ((secret: string) => boolean)[];
}

function compileAllow(entry: string): (secret: string) => boolean {
  const m = /^\/(.+)\/([a-z]*)$/s.exec(entry);
  if (m !== null) {
    const re = new RegExp(m[1]!, m[2]!.replace(/[gy]/g, ""));
    return (s) => re.test(s);
  }
  const needle = entry.toLowerCase();
  return (s) => s.toLowerCase().includes(needle);
}

/**
 * One character repeated (00000000, aaaaaaaa) marks a filler in a token, but is normal inside
 * long encoded blobs (DER zeros are "AAAA..." in a private key), so only short secrets are tested.
 */
const REPEATED_RUN = /(.)\1{7,}/;
const REPEATED_RUN_MAX_LENGTH = 100;

function isPlaceholder(secret: string): boolean {
  for (const re of GLOBAL_PLACEHOLDERS) if (re.test(secret)) return true;
  return secret.length < REPEATED_RUN_MAX_LENGTH && REPEATED_RUN.test(secret);
}

/** First 4 and last 2 characters with "…" between; fewer for short secrets, so most stays hidden. */
export function previewOf(secret: string): string {
  const n = secret.length;
  if (n >= 12) return `${secret.slice(0, 4)}…${secret.slice(-2)}`;
  if (n >= 6) return `${secret.slice(0, 1)}…${secret.slice(-1)}`;
  return "…";
}

function zodMessages(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string[] {
  return error.issues.map((i) => (i.path.length > 0 ? `${i.path.map(String).join(".")}: ${i.message}` : i.message));
}

/** A rule file's YAML, or undefined (and an issue naming the file) when it does not parse. */
export function parseRuleYaml(file: { readonly path: string; readonly text: string }, issues: RulePackIssue[]): unknown {
  try {
    // Bun's native YAML parser: the `yaml` package built ~26 MB of garbage parsing the pack,
    // which stayed in the process's RSS for good.
    return Bun.YAML.parse(file.text);
  } catch (e) {
    issues.push({ path: file.path, id: "(file)", message: `YAML: ${(e as Error).message}` });
    return undefined;
  }
}

/**
 * Parses, validates and compiles rule files into one scanner, or throws a RulePackError. `family`
 * picks the schema: `dlp` (secrets: validators, entropy, documentation placeholders are not
 * findings) or `inj` (prompt injection: a weight per rule; a match is what it is, an "example"
 * URL in an exfiltration directive included).
 */
export function compileRulePack(files: readonly { path: string; text: string }[], family: RuleFamily = "dlp", options: { exhaustive?: boolean } = {}): CompiledRules {
  const schema = family === "dlp" ? ruleSchema : family === "mcp" ? mcpRuleSchema : injectionRuleSchema;
  const issues: RulePackIssue[] = [];
  const matchers: Omit<Matcher, "keywordIds">[] = [];
  const seen = new Map<string, string>();

  for (const file of files) {
    const doc = parseRuleYaml(file, issues);
    if (doc === undefined) continue;
    const rules = doc !== null && typeof doc === "object" && "rules" in doc ? (doc as { rules: unknown }).rules : undefined;
    if (!Array.isArray(rules) || rules.length === 0 || Object.keys(doc as object).length !== 1) {
      issues.push({ path: file.path, id: "(file)", message: "a rule file holds exactly one key, `rules`, a non-empty list" });
      continue;
    }
    rules.forEach((raw: unknown, index) => {
      const rawId = raw !== null && typeof raw === "object" && "id" in raw ? (raw as { id: unknown }).id : undefined;
      const id = typeof rawId === "string" ? rawId : `rules[${index}]`;
      const bad = (message: string) => issues.push({ path: file.path, id, message });
      const parsed = schema.safeParse(raw);
      if (!parsed.success) {
        for (const m of zodMessages(parsed.error)) bad(m);
        return;
      }
      const rule: Rule = parsed.data;
      const dup = seen.get(rule.id);
      if (dup !== undefined) {
        bad(`duplicate rule id (also in ${dup})`);
        return;
      }
      seen.set(rule.id, file.path);
      const matcher = compileRule(rule, file.path, bad);
      if (matcher !== null) matchers.push(matcher);
    });
  }
  if (issues.length > 0) throw new RulePackError(issues);
  // Exhaustive: every rule whose keywords occur runs over the whole text, without the anchor,
  // window and run shortcuts (the reference the tests hold those to).
  return buildScanner(options.exhaustive === true ? matchers.map((m) => ({ ...m, anchored: false, runs: null, reach: Infinity, wide: false })) : matchers);
}

/** What the safety analysis (safety.ts) says about a pattern, and whether every match begins with a keyword. */
interface PatternFacts {
  readonly unsafe: readonly string[];
  readonly reach: number;
  readonly runClass: RunClass | null;
  readonly anchored: boolean;
  /** Every match reads a character beyond ASCII (safety.ts): ASCII text is not searched. */
  readonly wide: boolean;
}

/** PatternFacts as plain data (automata-store.ts): an unbounded reach is -1, a class table 0/1 per code. */
const FACTS_CODEC = {
  toData: (f: PatternFacts): AutomatonData => ({
    unsafe: f.unsafe.length,
    reach: f.reach === Infinity ? -1 : f.reach,
    anchored: f.anchored ? 1 : 0,
    wide: f.wide ? 1 : 0,
    ...(f.runClass ? { runMin: f.runClass.minLength, runMembers: Uint16Array.from(f.runClass.members), runFirst: Uint16Array.from(f.runClass.first) } : {}),
  }),
  fromData: (d: AutomatonData): PatternFacts => ({
    // Built-in patterns are all safe (the build compiles them): a count here is only ever 0.
    unsafe: (d.unsafe as number) > 0 ? ["unsafe (prebuilt analysis)"] : [],
    reach: (d.reach as number) < 0 ? Infinity : (d.reach as number),
    anchored: d.anchored === 1,
    wide: d.wide === 1,
    runClass: typeof d.runMin === "number" ? { minLength: d.runMin, members: Uint8Array.from(d.runMembers as Uint16Array), first: Uint8Array.from(d.runFirst as Uint16Array) } : null,
  }),
};

/**
 * The pattern's facts: prebuilt for the built-in packs (the analysis parses every pattern twice,
 * ~20 ms of start-up), worked out now for anything else.
 */
function patternFacts(pattern: string, flags: string, keywords: readonly string[]): PatternFacts {
  return cachedAutomaton(
    "pattern-facts",
    [pattern, flags, ...keywords],
    () => {
      const a = analysePattern(pattern, flags);
      return { ...a, anchored: a.unsafe.length === 0 && keywordAnchored(pattern, flags, keywords) };
    },
    FACTS_CODEC,
  );
}

function compileRule(rule: Rule, path: string, bad: (message: string) => void): Omit<Matcher, "keywordIds"> | null {
  const flags = rule.flags ?? "";
  let regex: RegExp;
  try {
    // "d" for the offsets of the `secret` group, "g" to walk every match.
    regex = new RegExp(rule.pattern, `dg${flags}`);
  } catch (e) {
    bad(`pattern: ${(e as Error).message}`);
    return null;
  }
  // What the automaton reads of each keyword (keywords.ts WORD_START), and whether it must start a word.
  const keywords = rule.keywords.map(keywordText);
  const analysis = patternFacts(rule.pattern, flags, keywords.map((k) => k.text));
  const unsafe = analysis.unsafe;
  if (unsafe.length > 0) {
    bad(`pattern is unsafe: ${unsafe.join("; ")}`);
    return null;
  }
  if (regex.test("")) {
    bad("pattern matches the empty string");
    return null;
  }
  // Windowed search (buildScanner) needs every match to contain one of the keywords; a rule
  // whose keywords are context elsewhere in the text (an "SSN" label) runs over the whole text.
  let keywordInMatch = true;
  for (const example of rule.examples.match) {
    regex.lastIndex = 0;
    for (let m = regex.exec(example); m !== null && keywordInMatch; m = regex.exec(example)) {
      const lower = m[0].toLowerCase();
      const at = m.index;
      keywordInMatch = keywords.some(({ text, wordStart }) => {
        for (let i = lower.indexOf(text); i >= 0; i = lower.indexOf(text, i + 1)) if (!wordStart || !/\w/.test(example.charAt(at + i - 1))) return true;
        return false;
      });
    }
  }
  const allow: ((s: string) => boolean)[] = [];
  for (const entry of rule.allow) {
    try {
      allow.push(compileAllow(entry));
    } catch (e) {
      bad(`allow ${JSON.stringify(entry)}: ${(e as Error).message}`);
      return null;
    }
  }
  return {
    rule: {
      id: rule.id,
      description: rule.description,
      severity: rule.severity,
      keywords: rule.keywords,
      validator: "validator" in rule ? rule.validator : undefined,
      weight: "weight" in rule ? rule.weight : undefined,
      examples: rule.examples,
      path,
    },
    regex,
    sticky: new RegExp(rule.pattern, `dy${flags}`),
    anchored: analysis.anchored,
    reach: keywordInMatch ? analysis.reach : Infinity,
    wide: analysis.wide,
    runs: analysis.runClass !== null && analysis.runClass.minLength >= RUN_PREFILTER_MIN_LENGTH ? analysis.runClass : null,
    validate: "validator" in rule && rule.validator !== undefined ? VALIDATORS[rule.validator] : undefined,
    entropy: "entropy" in rule ? rule.entropy : undefined,
    placeholders: !("weight" in rule),
    allow,
  };
}

/**
 * Keywords shorter than this do not filter anything (a digit, a country code): a rule with one
 * runs on every text, and its pattern must be cheap on its own.
 */
export const MIN_KEYWORD_LENGTH = 3;

/** Two CJK characters (`发送`, `無視`) are as rare in text as three Latin letters. */
const usableKeyword = (written: string): boolean => {
  const k = keywordText(written).text;
  return k.length >= MIN_KEYWORD_LENGTH || (k.length === 2 && /[^\x00-\x7f]/.test(k));
};

/** Shortest class run worth a prefilter: runs of shorter matches are everywhere in text. */
export const RUN_PREFILTER_MIN_LENGTH = 8;

/**
 * One scan: the keyword automaton runs once over the text; a rule none of whose keywords occur
 * is skipped; an anchored rule (every match begins with a keyword) is tried only where its
 * keywords start; another rule with a bounded reach runs only in windows around its keywords
 * (2 x reach + 1 on each side, so a window holds every match containing the keyword with all it
 * reads, and a match cut by a window edge cannot hide one that does); a rule that cannot be
 * placed by keywords but whose matches are long runs of one character class (card numbers,
 * IBANs, WIF keys) is tried only where a match can start in such a run (the runs of all of them
 * found together, class-runs.ts); every other rule runs over the whole text.
 */
function buildScanner(partial: readonly Omit<Matcher, "keywordIds">[]): CompiledRules {
  const keywords: string[] = [];
  const keywordIndex = new Map<string, number>();
  const matchers: Matcher[] = partial.map((m) => {
    if (!m.rule.keywords.every(usableKeyword)) return { ...m, keywordIds: [] };
    const ids = m.rule.keywords.map((k) => {
      let i = keywordIndex.get(k);
      if (i === undefined) {
        i = keywords.length;
        keywords.push(k);
        keywordIndex.set(k, i);
      }
      return i;
    });
    return { ...m, keywordIds: ids };
  });
  const automaton = compileKeywords(keywords);
  const lengths = keywords.map((k) => keywordText(k).text.length);
  // Which rules each keyword can place, so a scan looks only at the rules whose keywords occur
  // (plus those without usable keywords), not at all of them.
  const rulesOfKeyword: number[][] = keywords.map(() => []);
  matchers.forEach((m, i) => {
    for (const k of m.keywordIds) rulesOfKeyword[k]!.push(i);
  });
  const selected = new Uint8Array(matchers.length);
  matchers.forEach((m, i) => {
    if (m.keywordIds.length === 0) selected[i] = 1;
  });
  const always = selected.slice();
  // The class runs of the rules placed by them come from the process's class-run index (SIMD,
  // class-runs.ts), which the decoders share; a class with runs longer than it takes is searched
  // on its own.
  const runIndex = matchers.map((m) => {
    // Only rules the keywords cannot place (anchored and windowed ones never look at runs).
    const placed = m.keywordIds.length > 0 && (m.anchored || m.reach !== Infinity);
    if (m.runs === null || placed || m.runs.minLength > 64) return -1;
    return classRuns.register({ members: m.runs.members, minLength: m.runs.minLength });
  });

  return {
    rules: matchers.map((m) => m.rule),
    scan(text: string): Finding[] {
      const findings: Finding[] = [];
      const hits = automaton.scan(text);
      const { counts, found, foundCount } = hits;
      selected.set(always);
      for (let i = 0; i < foundCount; i++) for (const r of rulesOfKeyword[found[i]!]!) selected[r] = 1;
      let ascii: boolean | null = null;
      for (let r = 0; r < matchers.length; r++) {
        if (selected[r] === 0) continue;
        const m = matchers[r]!;
        if (m.wide && (ascii ??= isAscii(text))) continue;
        let windowed = false;
        if (m.keywordIds.length > 0) {
          let total = 0;
          for (const k of m.keywordIds) total += counts[k]!;
          if (total === 0) continue;
          if (m.anchored) {
            matchAt(m, text, keywordStarts(m.keywordIds, hits, total), findings);
            continue;
          }
          if (m.reach !== Infinity) {
            // Windows around every occurrence (from its start to its end, wide as the longest
            // keyword), merged when they touch.
            const margin = 2 * m.reach + 1;
            let longest = 0;
            for (const k of m.keywordIds) longest = Math.max(longest, lengths[k]!);
            const starts = keywordStarts(m.keywordIds, hits, total);
            const spans: number[] = [];
            for (const at of starts) spans.push(Math.max(0, at - margin), Math.min(text.length, at + longest + margin));
            matchInSpans(m, text, spans, m.reach, findings);
            windowed = true;
          }
        }
        if (windowed) continue;
        if (m.runs !== null) {
          // Every match lies in a long enough class run and starts with one of `first` at least
          // minLength before the run's end (a run of blanks in indented code is not a card
          // number): the rule is tried there only.
          const { first, minLength } = m.runs;
          const starts: number[] = [];
          const visit = (start: number, end: number) => {
            for (let i = start; i <= end - minLength; i++) if (first[text.charCodeAt(i)] === 1) starts.push(i);
          };
          const k = runIndex[r]!;
          if (k < 0) forEachClassRun(text, m.runs.members, minLength, visit);
          else for (let i = 0, runs = classRuns.runs(text, k); i < runs.length; i += 2) visit(runs[i]!, runs[i + 1]!);
          if (starts.length > 0) matchAt(m, text, starts, findings);
          continue;
        }
        matchRule(m, text, 0, text.length, m.reach, findings);
      }
      return findings;
    },
  };
}

/** Reused by keywordStarts. */
let startsScratch = new Int32Array(256);

/** The start offsets of every occurrence of the keywords `ids` (`total` of them), ascending; valid until the next call. */
function keywordStarts(ids: readonly number[], hits: KeywordHits, total: number): Int32Array {
  const { counts, positions, offsets } = hits;
  if (ids.length === 1) return positions.subarray(offsets[ids[0]!]!, offsets[ids[0]!]! + total);
  if (startsScratch.length < total) startsScratch = new Int32Array(Math.max(total, 2 * startsScratch.length));
  let n = 0;
  for (const k of ids) {
    const c = counts[k]!;
    if (c === 0) continue;
    startsScratch.set(positions.subarray(offsets[k]!, offsets[k]! + c), n);
    n += c;
  }
  return startsScratch.subarray(0, n).sort();
}

/**
 * Tries a rule at each of `starts` (ascending) as a global scan would: the next match is looked
 * for only past the end of the last one. When every match starts at one of them (a keyword of an
 * anchored rule, a place in a class run), this finds exactly what running the pattern over the
 * whole text finds, without reading the rest of the text or cutting windows out of it.
 */
function matchAt(m: Matcher, text: string, starts: ArrayLike<number>, out: Finding[]): void {
  const sticky = m.sticky;
  let next = 0;
  for (let i = 0; i < starts.length; i++) {
    const at = starts[i]!;
    if (at < next) continue;
    sticky.lastIndex = at;
    const match = sticky.exec(text);
    if (match === null) continue;
    next = at + Math.max(1, match[0].length);
    accept(m, text, match, 0, out);
  }
}

/**
 * Runs a rule in the windows `spans` (start, end pairs sorted by start), merged where they touch;
 * `reach` bounds what one match reads (the windows' margins are 2 x reach + 1).
 */
function matchInSpans(m: Matcher, text: string, spans: readonly number[], reach: number, out: Finding[]): void {
  let from = spans[0]!;
  let to = spans[1]!;
  for (let i = 2; i < spans.length; i += 2) {
    const s = spans[i]!;
    const e = spans[i + 1]!;
    if (s <= to) to = Math.max(to, e);
    else {
      matchRule(m, text, from, to, reach, out);
      from = s;
      to = e;
    }
  }
  matchRule(m, text, from, to, reach, out);
}

/**
 * Runs one rule over `text[from, to)`. When the window is a cut of the text, a match touching a
 * cut edge (within the rule's reach, where a lookbehind or \b saw the cut, not the text) is not
 * reported; the margins of buildScanner keep every real match away from the edges.
 */
function matchRule(m: Matcher, text: string, from: number, to: number, reach: number, out: Finding[]): void {
  const whole = from === 0 && to === text.length;
  const view = whole ? text : text.slice(from, to);
  const guard = whole ? 0 : reach + 1;
  const re = m.regex;
  re.lastIndex = 0;
  for (let match = re.exec(view); match !== null; match = re.exec(view)) {
    if (match[0].length === 0) re.lastIndex++;
    if (!whole && ((from > 0 && match.index < guard) || (to < text.length && match.index + match[0].length > view.length - guard))) continue;
    accept(m, text, match, from, out);
  }
}

/** Adds the finding of `match` (found in a view starting at `from` in `text`) unless a check refuses it. */
function accept(m: Matcher, text: string, match: RegExpExecArray, from: number, out: Finding[]): void {
  const span = match.indices?.groups?.secret ?? match.indices?.[0];
  if (span === undefined) return;
  const start = span[0] + from;
  const end = span[1] + from;
  const secret = text.slice(start, end);
  if (secret.length === 0) return;
  if (m.validate !== undefined && !m.validate(secret)) return;
  if (m.entropy !== undefined && shannonEntropy(secret) < m.entropy) return;
  if (m.placeholders && isPlaceholder(secret)) return;
  if (m.allow.some((a) => a(secret))) return;
  out.push({ rule: m.rule.id, start, end, preview: previewOf(secret) });
}
