/**
 * Every example of every DLP rule runs as its own test, named by rule id (ARCHITECTURE.md, "Rules
 * are data with their own examples"); then the compiler's refusals and the validators.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { compileRulePack, previewOf, RulePackError } from "../../../src/scan/rules/compile.ts";
import { unsafePatternReasons } from "../../../src/scan/rules/safety.ts";
import {
  base58check,
  base58checkEncode,
  base62,
  crc32,
  crc32Github,
  luhn,
  mod97,
  shannonEntropy,
} from "../../../src/scan/rules/validators.ts";

const DLP_DIR = join(import.meta.dir, "../../../rules/dlp");
const files = readdirSync(DLP_DIR)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((f) => ({ path: `rules/dlp/${f}`, text: readFileSync(join(DLP_DIR, f), "utf8") }));
const pack = compileRulePack(files);

describe("rules/dlp: every example of every rule", () => {
  test("the pack loads and is not empty", () => {
    expect(files.length).toBeGreaterThan(0);
    expect(pack.rules.length).toBeGreaterThanOrEqual(30);
  });

  for (const rule of pack.rules) {
    rule.examples.match.forEach((example, i) => {
      test(`${rule.id} matches example ${i + 1}`, () => {
        const found = pack.scan(example).filter((f) => f.rule === rule.id);
        expect(found.length).toBeGreaterThan(0);
        for (const f of found) {
          const secret = example.slice(f.start, f.end);
          // The preview never holds the value.
          expect(f.preview).not.toBe(secret);
          expect(f.preview.length).toBeLessThan(Math.max(secret.length, 2));
        }
      });
    });
    rule.examples.no_match.forEach((example, i) => {
      test(`${rule.id} does not match no_match example ${i + 1}`, () => {
        expect(pack.scan(example).filter((f) => f.rule === rule.id)).toEqual([]);
      });
    });
  }
});

describe("scan", () => {
  test("a finding locates the secret group and previews 4 + 2 characters", () => {
    const line = `GITHUB_TOKEN=${makeGithubToken("ghp", "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1")}`;
    const [f] = pack.scan(line).filter((x) => x.rule === "dlp.github-token");
    expect(f).toBeDefined();
    expect(line.slice(f!.start, f!.end)).toStartWith("ghp_");
    expect(f!.end).toBe(line.length);
    expect(f!.preview).toBe(`ghp_…${line.slice(-2)}`);
  });

  test("rules whose keywords are absent do not run", () => {
    expect(pack.scan("nothing to see here, just prose about tokens and keys")).toEqual([]);
  });

  test("short secrets show less", () => {
    expect(previewOf("abcdefghijklmnop")).toBe("abcd…op");
    expect(previewOf("abcdefgh")).toBe("a…h");
    expect(previewOf("abc")).toBe("…");
  });

  test("global placeholders are suppressed for every rule", () => {
    const rule = ruleYaml({ id: "dlp.any-value", pattern: "value=(?<secret>[^\\s]{4,64})", match: "value=s3cr3tS3cr3t", noMatch: "value=none" });
    const rules = compileRulePack([{ path: "t.yaml", text: rule }]);
    for (const placeholder of ["xxxxxxxx", "<your-token>", "${API_KEY}", "{{ token }}", "MYEXAMPLEKEY", "********", "REDACTED", "sk-abc...", "$API_KEY"]) {
      expect(rules.scan(`value=${placeholder}`)).toEqual([]);
    }
    expect(rules.scan("value=s3cr3tS3cr3t")).toHaveLength(1);
  });
});

function ruleYaml(o: { id: string; pattern: string; match: string; noMatch: string; extra?: string }): string {
  return [
    "rules:",
    `  - id: ${o.id}`,
    "    description: test rule",
    "    severity: high",
    "    keywords: [value]",
    `    pattern: '${o.pattern.replaceAll("'", "''")}'`,
    ...(o.extra === undefined ? [] : [`    ${o.extra}`]),
    "    examples:",
    `      match: ['${o.match}']`,
    `      no_match: ['${o.noMatch}']`,
  ].join("\n");
}

function refusal(text: string, path = "rules/dlp/t.yaml"): RulePackError {
  try {
    compileRulePack([{ path, text }]);
  } catch (e) {
    if (e instanceof RulePackError) return e;
    throw e;
  }
  throw new Error("compiled");
}

describe("compileRulePack refuses bad rules, all at once, with path and id", () => {
  test("bad ids", () => {
    for (const id of ["github-token", "dlp.GitHub", "dlp.github_token", "inj.thing", "dlp.-x"]) {
      const e = refusal(ruleYaml({ id, pattern: "value", match: "value", noMatch: "v" }));
      expect(e.issues[0]!.message).toContain("kebab-case");
      expect(e.message).toContain("rules/dlp/t.yaml");
    }
  });

  test("unsafe patterns", () => {
    for (const pattern of ["value(a+)+", "value(a*)*", "value(.*)*", "value(?:\\w+\\s?)*!", "value(a|ab)*c", "value(\\w|\\d)+", "value\\w+\\w*", "value.*\\s*x"]) {
      const e = refusal(ruleYaml({ id: "dlp.bad", pattern, match: "value", noMatch: "v" }));
      expect(e.issues).toHaveLength(1);
      expect(e.issues[0]!.id).toBe("dlp.bad");
      expect(e.issues[0]!.message).toContain("unsafe");
    }
  });

  test("safe patterns with bounded repetition pass the check", () => {
    for (const pattern of ["(?:[a-z]{4}){2,7}", "(?:-[a-z]+)?", "a+b+", "(?:ab|cd)+", "[a-z]+\\d+", "x(?=y+)", "(?<![a-z])ab"]) {
      expect(unsafePatternReasons(pattern)).toEqual([]);
    }
  });

  test("missing examples, unknown keys, upper-case keywords, invalid regex — all listed together", () => {
    const text = [
      "rules:",
      "  - id: dlp.no-examples",
      "    description: d",
      "    severity: high",
      "    keywords: [a]",
      "    pattern: 'a'",
      "    examples: { match: [], no_match: [b] }",
      "  - id: dlp.extra-key",
      "    description: d",
      "    severity: high",
      "    keywords: [Upper]",
      "    pattern: 'a'",
      "    sevrity: low",
      "    examples: { match: [a], no_match: [b] }",
      "  - id: dlp.bad-regex",
      "    description: d",
      "    severity: urgent",
      "    keywords: [a]",
      "    pattern: '(a'",
      "    examples: { match: [a], no_match: [b] }",
      "  - id: dlp.bad-regex-2",
      "    description: d",
      "    severity: low",
      "    keywords: [a]",
      "    pattern: '(a'",
      "    examples: { match: [a], no_match: [b] }",
    ].join("\n");
    const e = refusal(text);
    const ids = new Set(e.issues.map((i) => i.id));
    expect([...ids].sort()).toEqual(["dlp.bad-regex", "dlp.bad-regex-2", "dlp.extra-key", "dlp.no-examples"]);
    expect(e.message).toContain("examples.match");
    expect(e.message).toContain("sevrity");
    expect(e.message).toContain("lower-case");
    expect(e.issues.find((i) => i.id === "dlp.bad-regex-2")!.message).toContain("pattern");
  });

  test("duplicate ids across files and broken YAML", () => {
    const one = ruleYaml({ id: "dlp.dup", pattern: "value", match: "value", noMatch: "v" });
    try {
      compileRulePack([
        { path: "a.yaml", text: one },
        { path: "b.yaml", text: one },
        { path: "c.yaml", text: "rules: [" },
      ]);
      throw new Error("compiled");
    } catch (e) {
      expect(e).toBeInstanceOf(RulePackError);
      const issues = (e as RulePackError).issues;
      expect(issues.map((i) => i.path)).toEqual(["b.yaml", "c.yaml"]);
      expect(issues[0]!.message).toContain("a.yaml");
    }
  });

  test("a pattern that matches the empty string", () => {
    expect(refusal(ruleYaml({ id: "dlp.empty", pattern: "(?:value)?", match: "value", noMatch: "v" })).issues[0]!.message).toContain("empty");
  });
});

/** Builds a GitHub-format token from 30 characters of "entropy" (GitHub's documented layout). */
function makeGithubToken(prefix: string, random30: string): string {
  return `${prefix}_${random30}${base62(crc32(random30), 6)}`;
}

describe("validators", () => {
  test("crc32 matches the standard check value", () => {
    // CRC-32/ISO-HDLC check value for "123456789".
    expect(crc32("123456789")).toBe(0xcbf43926);
  });

  test("luhn", () => {
    expect(luhn("4539 1488 0343 6467")).toBe(true);
    expect(luhn("4539148803436468")).toBe(false);
    expect(luhn("79927398713")).toBe(false); // the textbook example is too short for a card
    expect(luhn("378282246310005")).toBe(true);
    expect(luhn("4539-1488-0343-6467")).toBe(true);
    expect(luhn("abcd")).toBe(false);
  });

  test("mod97 with per-country length", () => {
    expect(mod97("GB82 WEST 1234 5698 7654 32")).toBe(true); // ISO 13616 specimen
    expect(mod97("DE89370400440532013000")).toBe(true);
    expect(mod97("DE89370400440532013001")).toBe(false);
    expect(mod97("DE8937040044053201300")).toBe(false); // one digit short for DE
    expect(mod97("ZZ89370400440532013000")).toBe(false); // unknown country
    expect(mod97("gb82west12345698765432")).toBe(true);
  });

  test("crc32-github", () => {
    const token = makeGithubToken("ghp", "0123456789abcdefghijABCDEFGHIJ");
    expect(crc32Github(token)).toBe(true);
    for (const p of ["gho", "ghu", "ghs", "ghr"]) expect(crc32Github(makeGithubToken(p, "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0"))).toBe(true);
    expect(crc32Github(`${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`)).toBe(false);
    expect(crc32Github(makeGithubToken("ghx", "0123456789abcdefghijABCDEFGHIJ"))).toBe(false);
    expect(crc32Github("ghp_short")).toBe(false);
  });

  test("base58check", () => {
    // The Bitcoin genesis coinbase address.
    expect(base58check("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")).toBe(true);
    expect(base58check("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb")).toBe(false);
    expect(base58check("0OIl")).toBe(false);
    const wif = base58checkEncode(Uint8Array.from([0x80, ...new Array<number>(32).fill(7), 1]));
    expect(wif).toMatch(/^[KL]/);
    expect(base58check(wif)).toBe(true);
  });

  test("shannon entropy", () => {
    expect(shannonEntropy("")).toBe(0);
    expect(shannonEntropy("aaaa")).toBe(0);
    expect(shannonEntropy("abcd")).toBe(2);
  });
});
