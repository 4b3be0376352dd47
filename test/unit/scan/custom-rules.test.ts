import { describe, expect, test } from "bun:test";
import { compileCustomRules, MAX_MATCHES_PER_RULE, type CustomRuleInput } from "../../../src/scan/rules/custom.ts";
import { RulePackError } from "../../../src/scan/rules/compile.ts";

const KEY = "q7w8e9r0t1y2u3i4o5p6a7s8";

function errorOf(rules: CustomRuleInput[]): RulePackError {
  try {
    compileCustomRules(rules);
  } catch (e) {
    expect(e).toBeInstanceOf(RulePackError);
    return e as RulePackError;
  }
  throw new Error("expected a RulePackError");
}

describe("compileCustomRules: matching", () => {
  test("finds every match, with UTF-16 offsets and a preview that hides the value", () => {
    const rules = compileCustomRules([{ id: "dlp.custom.acme-key", pattern: "acme_[a-z0-9]{24}" }]);
    expect(rules.rules.map((r) => [r.id, r.severity, r.path])).toEqual([["dlp.custom.acme-key", "high", "dlp.custom_rules[0]"]]);
    const text = `a=acme_${KEY} b=acme_${KEY.toUpperCase()} c=acme_${[...KEY].reverse().join("")}`;
    const found = rules.scan(text);
    expect(found.map((f) => text.slice(f.start, f.end))).toEqual([`acme_${KEY}`, `acme_${[...KEY].reverse().join("")}`]);
    expect(found[0]!.preview).toBe("acme…s8");
    expect(found[0]!.preview).not.toContain(KEY.slice(4, 20));
  });

  test("offsets stay UTF-16 after non-ASCII and astral characters (re2-wasm counts code points)", () => {
    const rules = compileCustomRules([{ id: "dlp.custom.acme-key", pattern: "acme_(?P<secret>[a-z0-9]{24})" }]);
    const text = `héllo 😀😀 ünïcødé 𝒜 acme_${KEY} and 日本 acme_${KEY}😀`;
    const found = rules.scan(text);
    expect(found).toHaveLength(2);
    for (const f of found) expect(text.slice(f.start, f.end)).toBe(KEY);
    expect(found[0]!.start).toBe(text.indexOf(KEY));
    expect(found[1]!.start).toBe(text.lastIndexOf(KEY));
  });

  test("a match that contains astral characters is spanned whole", () => {
    const rules = compileCustomRules([{ id: "dlp.custom.emoji-run", pattern: "<(?P<secret>[^<>]{6,})>" }]);
    const text = "😀 <ab😀cd😀ef> <short>";
    const found = rules.scan(text);
    expect(found.map((f) => text.slice(f.start, f.end))).toEqual(["ab😀cd😀ef"]);
  });

  test("the secret group, written (?P<secret>...) or (?<secret>...), is what the finding spans", () => {
    for (const pattern of [`token=(?P<secret>[a-z0-9]{24})\\b`, `token=(?<secret>[a-z0-9]{24})\\b`]) {
      const rules = compileCustomRules([{ id: "dlp.custom.token", pattern }]);
      const text = `x token=${KEY} y`;
      const [f] = rules.scan(text);
      expect(f === undefined ? null : text.slice(f.start, f.end)).toBe(KEY);
    }
  });

  test("a secret value that appears twice in the match: the whole match is reported", () => {
    const rules = compileCustomRules([{ id: "dlp.custom.twice", pattern: "(?P<secret>[a-z0-9]{24}):[a-z0-9]{24}" }]);
    const text = `${KEY}:${KEY}`;
    const [f] = rules.scan(text);
    expect(f).toBeDefined();
    expect([f!.start, f!.end]).toEqual([0, text.length]);
  });

  test("\\b and ^ see the character before a match found after an earlier one", () => {
    const rules = compileCustomRules([{ id: "dlp.custom.word", pattern: "(?m)^[a-z]{10}\\b" }]);
    const text = "abcdefghij\nxabcdefghij\nklmnopqrst";
    expect(rules.scan(text).map((f) => text.slice(f.start, f.end))).toEqual(["abcdefghij", "klmnopqrst"]);
  });

  test("case_insensitive", () => {
    const text = `ACME_${KEY.toUpperCase()}`;
    expect(compileCustomRules([{ id: "dlp.custom.a", pattern: "acme_[a-z0-9]{24}" }]).scan(text)).toEqual([]);
    expect(compileCustomRules([{ id: "dlp.custom.a", pattern: "acme_[a-z0-9]{24}", case_insensitive: true }]).scan(text)).toHaveLength(1);
  });

  test("keywords prefilter: the rule runs only when a keyword occurs, case-insensitively", () => {
    const rules = compileCustomRules([{ id: "dlp.custom.pin", pattern: "\\b[0-9]{8}\\b", keywords: ["PIN", "passcode"] }]);
    expect(rules.rules[0]!.keywords).toEqual(["pin", "passcode"]);
    expect(rules.scan("order 12345678 shipped")).toEqual([]);
    expect(rules.scan("Pin: 12345678")).toHaveLength(1);
    expect(rules.scan("PASSCODE 87654321")).toHaveLength(1);
  });

  test("allow: plain, case-insensitive substrings of the secret suppress it", () => {
    const rules = compileCustomRules([{ id: "dlp.custom.acme-key", pattern: "acme_(?P<secret>[a-z0-9]{24})", allow: ["TESTKEY"] }]);
    expect(rules.scan("acme_testkey0000aaaabbbbcccc")).toEqual([]);
    expect(rules.scan(`acme_${KEY}`)).toHaveLength(1);
  });

  test("entropy and documentation placeholders filter like the built-ins", () => {
    const rules = compileCustomRules([{ id: "dlp.custom.acme-key", pattern: "acme_(?P<secret>[a-z0-9]{24})", entropy: 3 }]);
    expect(rules.scan("acme_aaaaaaaabbbbbbbbaaaaaaaa")).toEqual([]); // low entropy
    expect(rules.scan("acme_xxxxxxxxxxxxxxxxxxxxxxxx")).toEqual([]); // placeholder
    expect(rules.scan(`acme_${KEY}`)).toHaveLength(1);
  });

  test("a pattern that is catastrophic for a backtracking engine runs in linear time and answers right", () => {
    const rules = compileCustomRules([
      { id: "dlp.custom.nested", pattern: "(a+)+$" },
      { id: "dlp.custom.nested-b", pattern: "(?P<secret>(a+)+b)$" },
    ]);
    const text = `${"a".repeat(100 * 1024)}b`;
    const found = rules.scan(text);
    expect(found.map((f) => [f.rule, f.start, f.end])).toEqual([["dlp.custom.nested-b", 0, text.length]]);
    expect(rules.scan(`${"a".repeat(100 * 1024)}!`)).toEqual([]);
    expect(rules.scan("a".repeat(100 * 1024)).map((f) => [f.rule, f.start, f.end])).toEqual([["dlp.custom.nested", 0, 100 * 1024]]);
  });

  test("past MAX_MATCHES_PER_RULE matches the rest of the text is one finding (bounded, fails closed)", () => {
    const rules = compileCustomRules([{ id: "dlp.custom.id", pattern: "ID-[0-9]{6}" }]);
    const one = (i: number) => `ID-${String(100000 + i * 7919).slice(-6)} `;
    const text = Array.from({ length: MAX_MATCHES_PER_RULE + 20 }, (_, i) => one(i)).join("");
    const found = rules.scan(text);
    expect(found).toHaveLength(MAX_MATCHES_PER_RULE + 1);
    const last = found.at(-1)!;
    expect(last.end).toBe(text.length);
    expect(last.start).toBe(MAX_MATCHES_PER_RULE * one(0).length);
  });

  test("severity and description default, and are kept when given", () => {
    const rules = compileCustomRules(
      [
        { id: "dlp.custom.a", pattern: "a{9}" },
        { id: "dlp.b-c", pattern: "b{9}", severity: "low", description: "B run" },
      ],
      "cfg.dlp.custom_rules",
    );
    expect(rules.rules.map((r) => [r.id, r.severity, r.description, r.path])).toEqual([
      ["dlp.custom.a", "high", "custom rule dlp.custom.a", "cfg.dlp.custom_rules[0]"],
      ["dlp.b-c", "low", "B run", "cfg.dlp.custom_rules[1]"],
    ]);
  });
});

describe("compileCustomRules: bad rules fail at load, all of them, each with its id", () => {
  test("backreference, lookahead, lookbehind, syntax error: one error listing every rule and RE2's reason", () => {
    const e = errorOf([
      { id: "dlp.custom.ok", pattern: "fine_[a-z]{8}" },
      { id: "dlp.custom.backref", pattern: "(['\"])[a-z]{8}\\1" },
      { id: "dlp.custom.lookahead", pattern: "key(?=[0-9])" },
      { id: "dlp.custom.lookbehind", pattern: "(?<!x)key" },
      { id: "dlp.custom.syntax", pattern: "key_([a-z]{8}" },
    ]);
    expect(e.issues.map((i) => [i.path, i.id])).toEqual([
      ["dlp.custom_rules[1]", "dlp.custom.backref"],
      ["dlp.custom_rules[2]", "dlp.custom.lookahead"],
      ["dlp.custom_rules[3]", "dlp.custom.lookbehind"],
      ["dlp.custom_rules[4]", "dlp.custom.syntax"],
    ]);
    expect(e.issues[0]!.message).toContain("invalid escape sequence: \\1");
    expect(e.issues[1]!.message).toContain("invalid perl operator: (?=");
    expect(e.issues[2]!.message).toContain("invalid perl operator: (?<");
    expect(e.issues[3]!.message).toContain("missing )");
    for (const i of e.issues) expect(i.message).toContain("not valid RE2");
    expect(e.message).toContain("dlp.custom.backref");
    expect(e.message).not.toContain("dlp.custom.ok");
  });

  test("bad ids, duplicates, empty-matching patterns and bad fields", () => {
    const e = errorOf([
      { id: "custom.acme", pattern: "a{8}" },
      { id: "dlp.Custom.Acme", pattern: "a{8}" },
      { id: "dlp.custom.dup", pattern: "a{8}" },
      { id: "dlp.custom.dup", pattern: "b{8}" },
      { id: "dlp.custom.empty", pattern: "a*" },
      { id: "dlp.custom.fields", pattern: "c{8}", entropy: 9, keywords: [""], severity: "urgent" as "high" },
    ]);
    const by = (id: string) => e.issues.filter((i) => i.id === id).map((i) => i.message);
    expect(by("custom.acme")[0]).toContain("must start with `dlp.custom.`");
    expect(by("dlp.Custom.Acme")).toHaveLength(1);
    expect(by("dlp.custom.dup")).toEqual(["duplicate rule id"]);
    expect(by("dlp.custom.empty")).toEqual(["pattern matches the empty string"]);
    expect(by("dlp.custom.fields")).toHaveLength(3);
  });

  test("ids with dots after custom. are fine", () => {
    expect(compileCustomRules([{ id: "dlp.custom.acme.prod-key", pattern: "k{9}" }]).rules).toHaveLength(1);
  });
});
