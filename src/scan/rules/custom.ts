/**
 * Custom DLP rules from the user's config (`dlp.custom_rules`), compiled with RE2 (re2-wasm).
 *
 * The built-in rules are JavaScript RegExps that we review and check for catastrophic
 * backtracking (safety.ts). A user's pattern is not reviewed, and a backtracking engine run on
 * text an agent controls is a denial of service waiting to happen: `(a+)+$` against 100 KiB of
 * "a" never finishes. RE2 matches in time linear in the input and refuses the constructs that
 * need backtracking (backreferences, lookaround), so a bad pattern fails at load, with its id,
 * instead of hanging a request (ARCHITECTURE.md, "Compile once, run many").
 *
 * re2-wasm is loaded on first use, not on import: it compiles an 840 KiB WebAssembly module,
 * which a config without custom rules should not pay for.
 */
import type { RE2 as RE2Type } from "re2-wasm";
import { previewOf, RulePackError, type CompiledRule, type CompiledRules, type Finding, type RulePackIssue } from "./compile.ts";
import { shannonEntropy } from "./validators.ts";

export interface CustomRuleInput {
  /** `dlp.custom.<name>` (dots allowed after `custom.`) or `dlp.<kebab-case>`. */
  id: string;
  description?: string;
  /** Default `high`. */
  severity?: "low" | "medium" | "high" | "critical";
  /** RE2 syntax (https://github.com/google/re2/wiki/Syntax); the secret is the group `(?P<secret>...)` if present. */
  pattern: string;
  /** Cheap prefilter: the rule runs only when one of these occurs in the text (case-insensitive). */
  keywords?: string[];
  /** Minimum Shannon entropy of the secret, in bits per character. */
  entropy?: number;
  /** Plain substrings, case-insensitive: a secret containing one is not reported. */
  allow?: string[];
  case_insensitive?: boolean;
}

const SEVERITIES = ["low", "medium", "high", "critical"] as const;
const ID = /^dlp\.(?:custom\.[a-z0-9]+(?:[-.][a-z0-9]+)*|[a-z0-9]+(?:-[a-z0-9]+)*)$/;

/**
 * Every match of one rule costs a call into the WebAssembly module, and each call copies the
 * rest of the text into it (re2-wasm has no streaming API), so text crafted to hold many matches
 * costs matches × length. Past this many matches of one rule, the rest of the text from the
 * next match on is reported as one finding: the scan stays bounded and fails closed.
 */
export const MAX_MATCHES_PER_RULE = 128;

/**
 * Documentation values and template variables, the same idea as compile.ts's global
 * placeholders (which it does not export): a minimal local copy, tested against the secret.
 */
const PLACEHOLDERS: readonly RegExp[] = [
  /x{5,}/i,
  /\*{3,}/,
  /\.\.\.|…/,
  /^<[^>]*>$|<your[-_ ]/i,
  /^\$\{[^}]*\}$|^\$[A-Z_][A-Z0-9_]*$/,
  /^\$\([A-Za-z_][A-Za-z0-9_]*\)$/,
  /\{\{/,
  /example|placeholder|redacted|your[-_]?(?:api[-_]?)?(?:key|token|secret|password)/i,
];

function isPlaceholder(secret: string): boolean {
  return PLACEHOLDERS.some((re) => re.test(secret));
}

interface CustomMatcher {
  readonly rule: CompiledRule;
  readonly regex: RE2Type;
  readonly keywords: readonly string[];
  readonly entropy: number | undefined;
  readonly allow: readonly string[];
}

let re2Class: typeof RE2Type | undefined;

function loadRe2(): typeof RE2Type {
  // require, not import: loaded (and its WebAssembly compiled) only when a custom rule exists.
  re2Class ??= (require("re2-wasm") as typeof import("re2-wasm")).RE2;
  return re2Class;
}

/** Validates and compiles custom rules into one scanner, or throws a RulePackError listing every bad rule. */
export function compileCustomRules(rules: readonly CustomRuleInput[], path = "dlp.custom_rules"): CompiledRules {
  const issues: RulePackIssue[] = [];
  const matchers: CustomMatcher[] = [];
  const seen = new Set<string>();

  rules.forEach((input, index) => {
    const where = `${path}[${index}]`;
    const id = typeof input.id === "string" && input.id.length > 0 ? input.id : `${path}[${index}]`;
    const before = issues.length;
    const bad = (message: string) => issues.push({ path: where, id, message });

    if (!ID.test(id)) bad("id must start with `dlp.custom.` or `dlp.` and be kebab-case (e.g. dlp.custom.acme-key)");
    else if (seen.has(id)) bad("duplicate rule id");
    seen.add(id);
    const severity = input.severity ?? "high";
    if (!(SEVERITIES as readonly string[]).includes(severity)) bad(`severity must be one of ${SEVERITIES.join(", ")}`);
    if (input.entropy !== undefined && !(typeof input.entropy === "number" && input.entropy > 0 && input.entropy <= 8)) {
      bad("entropy must be a number of bits per character, above 0 and at most 8");
    }
    const keywords = (input.keywords ?? []).map((k) => (typeof k === "string" ? k.toLowerCase() : ""));
    if (keywords.some((k) => k.length === 0)) bad("keywords must be non-empty strings");
    const allow = (input.allow ?? []).map((a) => (typeof a === "string" ? a.toLowerCase() : ""));
    if (allow.some((a) => a.length === 0)) bad("allow entries must be non-empty strings");

    let regex: RE2Type | undefined;
    if (typeof input.pattern !== "string" || input.pattern.length === 0) {
      bad("pattern must be a non-empty string");
    } else {
      try {
        const RE2 = loadRe2();
        // "u" is required by re2-wasm; "g" so that exec() starts at lastIndex.
        regex = new RE2(input.pattern, input.case_insensitive === true ? "giu" : "gu");
      } catch (e) {
        // re2-wasm says "Invalid regular expression: /<pattern>/gu: <RE2 error>"; keep the RE2 part.
        const message = (e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, "");
        bad(`pattern is not valid RE2 (backreferences and lookaround are not supported): ${message}`);
      }
      if (regex !== undefined) {
        regex.lastIndex = 0;
        if (regex.test("")) bad("pattern matches the empty string");
      }
    }
    if (issues.length > before || regex === undefined) return;

    matchers.push({
      rule: {
        id,
        description: input.description ?? `custom rule ${id}`,
        severity,
        keywords,
        validator: undefined,
      weight: undefined,
        examples: { match: [], no_match: [] },
        path: where,
      },
      regex,
      keywords,
      entropy: input.entropy,
      allow,
    });
  });
  if (issues.length > 0) throw new RulePackError(issues);

  return {
    rules: matchers.map((m) => m.rule),
    scan(text: string): Finding[] {
      const findings: Finding[] = [];
      if (matchers.length === 0 || text.length === 0) return findings;
      const lower = matchers.some((m) => m.keywords.length > 0) ? text.toLowerCase() : text;
      for (const m of matchers) {
        if (m.keywords.length > 0 && !m.keywords.some((k) => lower.includes(k))) continue;
        matchRule(m, text, findings);
      }
      return findings;
    },
  };
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** UTF-16 length of the first `codePoints` code points of the well-formed string `s`. */
function utf16Length(s: string, codePoints: number): number {
  let i = 0;
  for (let n = 0; n < codePoints && i < s.length; n++) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
  }
  return i;
}

function matchRule(m: CustomMatcher, text: string, out: Finding[]): void {
  const re = m.regex;
  let from = 0;
  for (let count = 0; from <= text.length; count++) {
    // re2-wasm counts offsets in code points, copies its whole input per call, and encodes a lone
    // surrogate wrongly. So search a well-formed slice (toWellFormed keeps the UTF-16 length)
    // that starts one code point before `from`, giving `\b` and `(?m)^` their left context, and
    // map the code-point offset back to UTF-16 within the slice.
    let left = from;
    if (left > 0) left -= left >= 2 && isLowSurrogate(text.charCodeAt(left - 1)) && isHighSurrogate(text.charCodeAt(left - 2)) ? 2 : 1;
    const slice = text.slice(left).toWellFormed();
    re.lastIndex = left < from ? 1 : 0;
    const match = re.exec(slice);
    if (match === null) return;
    const whole = match[0] ?? "";
    const astral = SURROGATE.test(slice);
    const start = left + (astral ? utf16Length(slice, match.index) : match.index);
    const end = start + whole.length;
    if (count >= MAX_MATCHES_PER_RULE) {
      out.push({ rule: m.rule.id, start, end: text.length, preview: previewOf(text.slice(start)) });
      return;
    }
    // RE2 has no empty matches for a compiled rule except at assertions (`\b`); step past them.
    from = end > start ? end : start + (isHighSurrogate(text.charCodeAt(start)) ? 2 : 1);
    const secretValue = match.groups?.secret;
    let spanStart = start;
    let spanEnd = end;
    if (secretValue !== undefined && secretValue.length > 0) {
      // re2-wasm returns group values, not offsets. A value found once in the match is exact;
      // found more than once, the whole match is reported, so a redaction covers every copy.
      const at = whole.indexOf(secretValue);
      if (at >= 0 && whole.indexOf(secretValue, at + 1) < 0) {
        spanStart = start + at;
        spanEnd = spanStart + secretValue.length;
      }
    }
    const secret = text.slice(spanStart, spanEnd);
    if (secret.length === 0) continue;
    if (m.entropy !== undefined && shannonEntropy(secret) < m.entropy) continue;
    if (isPlaceholder(secret)) continue;
    const lowerSecret = m.allow.length > 0 ? secret.toLowerCase() : secret;
    if (m.allow.some((a) => lowerSecret.includes(a))) continue;
    out.push({ rule: m.rule.id, start: spanStart, end: spanEnd, preview: previewOf(secret) });
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}
