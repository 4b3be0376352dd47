/**
 * The fast paths of the scan engine must find exactly what the slow, obvious versions find:
 * the keyword automaton against indexOf, windowed rule matching against a whole-text scan, the
 * one-pass run decoder against the three decoders run separately.
 */
import { describe, expect, test } from "bun:test";
import { base32Decode, base64Decode, hexDecode } from "../../../src/scan/decode/index.ts";
import { decodeRunViews } from "../../../src/scan/decode/runs.ts";
import { compileRulePack } from "../../../src/scan/rules/compile.ts";
import { compileKeywords } from "../../../src/scan/rules/keywords.ts";
import { analysePattern, keywordAnchored, patternReach } from "../../../src/scan/rules/safety.ts";
import { loadRuleFiles } from "../../../src/config/rule-files.ts";
import { ClassRunIndex, classTable, forEachClassRun } from "../../../src/scan/class-runs.ts";
import { mulberry32 } from "../../helpers/mulberry32.ts";
import { scanText } from "../../../src/scan/text-scan.ts";
import { testBeyondAscii } from "../../../src/scan/ascii.ts";
import { byWideStretches } from "../../../src/scan/decode/normalise.ts";

const rand = mulberry32(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

describe("keyword automaton", () => {
  const keywords = ["ghp_", "gh", "hp_x", "sk-ant-", "ant", "token", "oken", "a", "://", "aaa"];
  const automaton = compileKeywords(keywords);
  test("counts and every position agree with indexOf on random text, case-insensitively, short or long (four chains)", () => {
    const alphabet = ["g", "h", "p", "_", "x", "s", "k", "-", "a", "n", "t", "o", "e", "T", "O", "K", "E", "N", "G", "H", ":", "/", "é", " "];
    for (let round = 0; round < 300; round++) {
      const text = Array.from({ length: 1 + Math.floor(rand() * (round % 2 === 0 ? 300 : 3000)) }, () => pick(alphabet)).join("");
      const lower = text.toLowerCase();
      const hits = automaton.scan(text);
      keywords.forEach((k, i) => {
        const at: number[] = [];
        for (let p = lower.indexOf(k); p >= 0; p = lower.indexOf(k, p + 1)) at.push(p);
        expect(hits.counts[i]).toBe(at.length);
        if (at.length > 0) expect(Array.from(hits.positions.subarray(hits.offsets[i], hits.offsets[i]! + at.length))).toEqual(at);
      });
    }
  });
  test("non-ASCII characters reset the match; keywords must be lower-case and printable", () => {
    expect(automaton.scan("tok\u00e9n").counts[keywords.indexOf("token")]).toBe(0);
    expect(() => compileKeywords(["Token"])).toThrow(/lower-case/);
    expect(() => compileKeywords(["to\u0000ken"])).toThrow(/printable/);
  });
  test("a keyword written with \\b counts only where it starts a word, as the pattern's \\b reads it", () => {
    const words = ["\\bnc ", "nc ", "\\bhost "];
    const m = compileKeywords(words);
    const alphabet = ["n", "c", " ", "a", "s", "y", "_", "1", "|", "(", "\n", "N", "C", "h", "o", "t", "-"];
    for (let round = 0; round < 300; round++) {
      const text = Array.from({ length: 1 + Math.floor(rand() * (round % 2 === 0 ? 300 : 3000)) }, () => pick(alphabet)).join("");
      const hits = m.scan(text);
      words.forEach((w, i) => {
        const re = w.startsWith("\\b") ? new RegExp(`\\b(?=${w.slice(2)})`, "gi") : new RegExp(`(?=${w})`, "gi");
        const at = [...text.matchAll(re)].map((x) => x.index);
        expect(hits.counts[i]).toBe(at.length);
        if (at.length > 0) expect(Array.from(hits.positions.subarray(hits.offsets[i], hits.offsets[i]! + at.length))).toEqual(at);
      });
    }
    expect(m.scan("async nc -l 4444 <~/.ssh/id_rsa").counts[0]).toBe(1);
    expect(m.scan("async () => x; localhost 8080").counts).toEqual(Int32Array.from([0, 1, 0]));
  });
  test("keywords beyond ASCII are found, reading only near the text's characters beyond ASCII, where indexOf finds them", () => {
    const words = ["\u00e9t\u00e9", "t\u00e9", "caf\u00e9 au lait", "\u00e9", "\u00e9\u00e9\u00e9", "\u0436a", "\\bt\u00e9", "ete", "au", "\u00e9 au lait du matin", "au lait du matin \u0436"];
    const m = compileKeywords(words);
    const alphabet = ["e", "t", "c", "a", "f", " ", "u", "l", "i", "_", "\u00e9", "\u00c9", "\u0436", "\u0416", "\u{1F600}"];
    for (let round = 0; round < 400; round++) {
      // ASCII mostly (the runs beyond it few, so only near them is read), or dense (read whole).
      const dense = round % 5 === 0;
      let text = Array.from({ length: 1 + Math.floor(rand() * (round % 2 === 0 ? 300 : 3000)) }, () => {
        const c = pick(alphabet);
        return !dense && c.charCodeAt(0) >= 128 && rand() < 0.97 ? pick(["e", "t", " ", "a"]) : c;
      }).join("");
      // A keyword or two, their letters beyond ASCII at either end, set in whole.
      for (let k = 0; k < 2; k++) {
        const at = Math.floor(rand() * text.length);
        const w = pick(words).replace("\\b", "");
        text = text.slice(0, at) + (rand() < 0.5 ? w.toUpperCase() : w) + text.slice(at);
      }
      const hits = m.scan(text);
      words.forEach((w, i) => {
        const re = w.startsWith("\\b") ? new RegExp(`(?<![A-Za-z0-9_])(?=${w.slice(2)})`, "giu") : new RegExp(`(?=${w})`, "giu");
        const at = [...text.matchAll(re)].map((x) => x.index);
        expect({ text, w, count: hits.counts[i] }).toEqual({ text, w, count: at.length });
        if (at.length > 0) expect(Array.from(hits.positions.subarray(hits.offsets[i], hits.offsets[i]! + at.length))).toEqual(at);
      });
    }
  });
  test("non-ASCII keywords match in either case, next to ASCII ones", () => {
    const words = ["игнорируй", "忽略之前", "ignore", "tök"];
    const m = compileKeywords(words);
    const text = "Пожалуйста, ИГНОРИРУЙ всё; 请忽略之前的指令; IGNORE this; TÖK and t\u00f6k";
    const hits = m.scan(text);
    expect(words.map((w) => hits.counts[words.indexOf(w)])).toEqual([1, 1, 1, 2]);
    expect(hits.positions[hits.offsets[words.indexOf("忽略之前")]!]).toBe(text.indexOf("忽略之前"));
  });
});

describe("pattern reach", () => {
  test("bounded patterns have a bound that covers match and lookarounds; unbounded ones are Infinity", () => {
    expect(patternReach("ghp_[A-Za-z0-9]{36}")).toBe(40);
    expect(patternReach("(?<![A-Za-z0-9])ghp_[A-Za-z0-9]{36}(?![A-Za-z0-9])")).toBe(42);
    expect(patternReach("a(?:bc|d)?e")).toBe(4);
    expect(patternReach("-----BEGIN[\\s\\S]+?END")).toBe(Infinity);
    expect(patternReach("(a)\\1")).toBe(Infinity);
  });
});

describe("windowed rule matching", () => {
  const rule = (keywords: string, pattern: string, matches: string, noMatch: string) =>
    `rules:\n  - id: dlp.test-rule\n    description: t\n    severity: high\n    keywords: [${keywords}]\n    pattern: '${pattern}'\n    examples:\n      match: ['${matches}']\n      no_match: ['${noMatch}']\n`;
  const pack = compileRulePack([{ path: "t.yaml", text: rule("tok_", "(?<![A-Za-z0-9_])tok_(?<secret>[A-Za-z0-9]{20})(?![A-Za-z0-9])", "tok_ABCDEFGHIJKLMNOPQRST", "tok_short") }]);
  const secret = () => `tok_${Array.from({ length: 20 }, () => pick([..."ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"])).join("")}`;
  test("every planted token is found, near or far from others and from the ends, few or many", () => {
    for (const count of [1, 2, 5, 32, 33, 100, 500]) {
      const parts: string[] = [];
      const planted: string[] = [];
      for (let i = 0; i < count; i++) {
        const s = secret();
        planted.push(s);
        parts.push("x ".repeat(Math.floor(rand() * 80)), s, pick([" ", "\n", "\"", ",", ""]) || " ");
      }
      const text = parts.join("");
      const found = pack.scan(text).map((f) => text.slice(f.start - 4, f.end));
      expect(found).toEqual(planted);
    }
  });
  test("a keyword glued to a word is not a match even when the window starts inside the word", () => {
    const text = `${"w".repeat(500)}tok_QWERTYUIOPASDFGHJKLz and tok_QWERTYUIOPASDFGHJKLZ`;
    expect(pack.scan(text).map((f) => f.start)).toEqual([text.lastIndexOf("tok_") + 4]);
  });
});

describe("class runs", () => {
  test("the skipping search finds exactly the maximal runs a regex finds, for every minimum length", () => {
    const members = classTable("0123456789 -");
    const alphabet = [..."0123456789 -ab\u00e9x"];
    for (let round = 0; round < 300; round++) {
      const text = Array.from({ length: Math.floor(rand() * 200) }, () => pick(alphabet)).join("");
      for (const min of [1, 2, 5, 13, 16]) {
        const got: number[][] = [];
        forEachClassRun(text, members, min, (s, e) => got.push([s, e]));
        const want = [...text.matchAll(new RegExp(`[0-9 -]{${min},}`, "g"))].map((m) => [m.index, m.index + m[0].length]);
        expect({ text, min, got }).toEqual({ text, min, got: want });
      }
    }
  });
});

describe("searching only what is beyond ASCII", () => {
  // ASCII mostly, now and then dense (more runs than are tested one by one), with surrogate
  // pairs, marks that compose with the ASCII letter before them, and Cyrillic beside Latin.
  const pieces = ["a", "e", "K", " ", "\n", "1", ".", "\u0301", "\u0308", "é", "ß", "\u200b", "\u00ad", "\u202e", "ｉ", "ﬁ", "а", "о", "Ι", "か", "\u3099", "ｶ", "\uff9e", "ᄀ", "\u1161", "©", "\u00a0", "\u{1d400}", "\u{e0069}", "ⓐ", "Å", "Ω", "\u0338", "<"];
  const texts = Array.from({ length: 3000 }, () => {
    const ascii = rand() < 0.8 ? 0.93 : 0.3;
    let text = "";
    for (let i = 0, n = Math.floor(rand() * 400); i < n; i++) text += rand() < ascii ? "abc eK1.\n<"[Math.floor(rand() * 10)] : pick(pieces);
    return text;
  });
  test("a pattern of characters beyond ASCII (and one on either side) is found where a search of the whole text finds it", () => {
    const patterns: [RegExp, number][] = [
      [/[\u200b-\u200f\u2060-\u2064\ufeff\u00ad\u180e\u202a-\u202e\u2066-\u2069\u{e0000}-\u{e007f}]/u, 0],
      [/[\u0400-\u04ff]/, 0],
      [/[\ud800-\udfff]/, 0],
      [/[\u00c0-\u024f]/, 0],
      [/[A-Za-z][\u0370-\u03ff\u0400-\u04ff]|[\u0370-\u03ff\u0400-\u04ff][A-Za-z]/, 1],
      [/\d[\u0300-\u036f]/, 1],
    ];
    for (const text of texts) for (const [pattern, reach] of patterns) expect({ text, pattern: pattern.source, found: testBeyondAscii(text, pattern, reach) }).toEqual({ text, pattern: pattern.source, found: pattern.test(text) });
  });
  test("NFKC of the stretches beyond ASCII, with the character before each, is NFKC of the whole", () => {
    for (const text of texts) expect({ text, out: byWideStretches(text, (t) => t.normalize("NFKC")) }).toEqual({ text, out: text.normalize("NFKC") });
  });
});

describe("patterns that cannot match ASCII text", () => {
  test("every match reads a character beyond ASCII: consumed, or required by a positive lookaround; not under folding that reaches ASCII", () => {
    expect(analysePattern("送信|転送").wide).toBe(true);
    expect(analysePattern("(?:post|Post)(?=[ぁ-ゖ])").wide).toBe(true);
    expect(analysePattern("(?:会話|cookie)[^\\n。]{0,40}?(?:送信|post(?=[ぁ-ゖ]))").wide).toBe(true);
    expect(analysePattern("[а-я]{2}", "i").wide).toBe(true);
    expect(analysePattern("post|送信").wide).toBe(false);
    expect(analysePattern("post(?![ぁ-ゖ])").wide).toBe(false);
    expect(analysePattern("(?:送信)?post").wide).toBe(false);
    expect(analysePattern("\\p{L}", "u").wide).toBe(false);
    expect(analysePattern("\u212a", "iu").wide).toBe(false);
    expect(analysePattern(".送").wide).toBe(true);
    // Escapes RegExp reads otherwise than as a code point (`\u{41}` is 41 u's without the u flag, `\xZZ` is xZZ) are any character.
    expect(analysePattern("\\u{41}送?").wide).toBe(false);
    expect(analysePattern("\\xZZ|送").wide).toBe(false);
    expect(analysePattern("\\u9001").wide).toBe(true);
  });

  test("the built-in rules judged so find nothing in ASCII text, and are still found in their own examples", async () => {
    const files = [...(await loadRuleFiles("rules/injection/")), ...(await loadRuleFiles("rules/mcp/"))];
    const rand = mulberry32(11);
    let wide = 0;
    for (const file of files) {
      const doc = Bun.YAML.parse(file.text) as { rules?: { id: string; pattern: string; flags?: string; examples: { match: string[] } }[] };
      for (const rule of doc.rules ?? []) {
        if (!analysePattern(rule.pattern, rule.flags ?? "").wide) continue;
        wide++;
        const re = new RegExp(rule.pattern, `g${rule.flags ?? ""}`);
        for (const example of rule.examples.match) {
          // The example's ASCII, and its other characters replaced by random ASCII.
          const ascii = example.replace(/[^\x00-\x7f]/gu, () => String.fromCharCode(32 + Math.floor(rand() * 95)));
          expect(ascii.match(re)).toBeNull();
        }
      }
    }
    expect(wide).toBeGreaterThan(8);
    // In text that is not all ASCII they run as before: each wide rule's examples are found.
    const pack = compileRulePack(files.filter((f) => f.path.includes("multilingual")), "inj");
    const multilingual = Bun.YAML.parse(files.find((f) => f.path.includes("multilingual"))!.text) as { rules: { id: string; pattern: string; flags?: string; examples: { match: string[] } }[] };
    for (const rule of multilingual.rules.filter((r) => analysePattern(r.pattern, r.flags ?? "").wide))
      for (const example of rule.examples.match) expect(pack.scan(`Plain ASCII first. ${example}`).map((f) => f.rule)).toContain(rule.id);
  });
});

describe("run class of a pattern", () => {
  test("what a match consumes (lookarounds excluded), its shortest length and first characters", () => {
    const card = analysePattern("(?<![0-9])(?:4\\d{3}|5[1-5]\\d{2})(?:[ -]?\\d{4}){3}(?![0-9])").runClass!;
    expect([...card.members.keys()].filter((c) => card.members[c]).map((c) => String.fromCharCode(c)).join("")).toBe(" -0123456789");
    expect(card.minLength).toBe(16);
    expect([...card.first.keys()].filter((c) => card.first[c]).map((c) => String.fromCharCode(c)).join("")).toBe("45");
    expect(analysePattern("ab|c{3}").runClass!.minLength).toBe(2);
    // Only where the parse is exact: not under case folding, not with \f, \v, \0, \cX or octal escapes.
    expect(analysePattern("tok_[a-z]{8}", "i").runClass).toBeNull();
    expect(analysePattern("\\d{4}\\f\\d{4}\\f\\d{4}").runClass).toBeNull();
    expect(analysePattern("a\\kb").unsafe).not.toEqual([]);
    // Anything that can consume a non-ASCII character has no run class.
    expect(analysePattern("[^a]{8}").runClass).toBeNull();
    expect(analysePattern("\\s{8}").runClass).toBeNull();
    expect(analysePattern("(a)\\1").runClass).toBeNull();
  });

  test("a rule run only around runs of its class finds every planted match, near the ends or far inside", () => {
    const yaml = `rules:\n  - id: dlp.test-digits\n    description: t\n    severity: high\n    keywords: ["1"]\n    pattern: '(?<![0-9A-Za-z])(?<secret>1\\d{3}(?:[ -]?\\d{4}){3})(?![0-9A-Za-z])'\n    examples:\n      match: ['1234 5678 9012 3456']\n      no_match: ['1234']\n`;
    const pack = compileRulePack([{ path: "t.yaml", text: yaml }]);
    for (let round = 0; round < 50; round++) {
      const parts: string[] = [];
      const planted: string[] = [];
      for (let i = 0; i < 1 + Math.floor(rand() * 6); i++) {
        const s = `1${Array.from({ length: 15 }, () => pick([..."0123456789"])).join("")}`.replace(/(\d{4})(?=\d)/g, `$1${pick([" ", "-", ""])}`);
        planted.push(s);
        parts.push(pick(["", "    ", "x ".repeat(Math.floor(rand() * 300)), " 12 34 56 ".repeat(20)]), s, pick([" ", "\n", "\"", ","]));
      }
      const text = parts.join("");
      expect(pack.scan(text).map((f) => text.slice(f.start, f.end))).toEqual(planted);
    }
  });
});

describe("one-pass run decoding", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const b64url = (s: string) => Buffer.from(s).toString("base64url");
  const b32 = (s: string) => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bits = "";
    for (const b of Buffer.from(s)) bits += b.toString(2).padStart(8, "0");
    let out = "";
    for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, "0"), 2)];
    return out;
  };
  const hex = (s: string, sep = "") => [...Buffer.from(s)].map((b) => b.toString(16).padStart(2, "0")).join(sep);
  const pieces = [
    () => b64("password=hunter2hunter2"),
    () => b64url("token: sk_live_abcdef012345"),
    () => b32("password: swordfish"),
    () => b32("password: swordfish").toLowerCase(),
    () => hex("sk_live_abcdef"),
    () => hex("sk_live_abcdef", ":"),
    () => hex("sk_live_abcdef", " "),
    () => hex("sk_live_abcdef", "-"),
    () => "550e8400-e29b-41d4-a716-446655440000",
    () => "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    () => "internationalization",
    () => `/api/v1/${b64url("secret value here!")}`,
    () => "plain words, commas; and = signs",
    () => "AAAAAAAAAAAAAAAAAAAAAAAA==",
  ];
  test("equals base64Decode, base32Decode and hexDecode run separately", () => {
    for (let round = 0; round < 400; round++) {
      const join = pick([" ", "\n", "\"", "=", ":", ""]);
      const text = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => pick(pieces)()).join(join);
      const views = decodeRunViews(text, 1 << 20);
      expect(views.base64).toBe(base64Decode(text, 1 << 20));
      expect(views.base32).toBe(base32Decode(text, 1 << 20));
      // Spaced hex runs are a second pass (runs.ts): they may differ only where one touches another hex run.
      if (join === "\n" || join === "\"" || join === "=") expect(views.hex).toBe(hexDecode(text, 1 << 20));
    }
  });
});

describe("normalised windows", () => {
  test("sparse non-ASCII: only windows around it are normalised, and a trick inside a secret is still seen through", async () => {
    const { normalisedWindows, scanText, NORMALISE_WINDOW } = await import("../../../src/scan/text-scan.ts");
    const { builtinRules } = await import("../../../src/config/load.ts");
    const { sampleSecret } = await import("../../helpers/dlp-samples.ts");
    const token = sampleSecret("dlp.github-token");
    const hidden = `${token.slice(0, 10)}\u200b${token.slice(10)}`;
    const filler = "plain ascii words and numbers 12345, nothing to see here. ".repeat(2000);
    const text = `${filler}café ${filler} key=${hidden} ${filler}`;
    const windows = normalisedWindows(text)!;
    expect(windows.length).toBeLessThan(text.length / 2);
    expect(windows.length).toBeGreaterThan(2 * NORMALISE_WINDOW);
    expect(windows).toContain(token);
    const found = scanText(await builtinRules(), text);
    expect(found.map((f) => [f.rule, f.via])).toEqual([["dlp.github-token", ["unicode"]]]);
    expect(normalisedWindows("all ascii")).toBeNull();
    const dense = "é".repeat(10) + filler.slice(0, 100);
    expect(normalisedWindows(dense)).toBe(dense.normalize("NFKD").replace(/\p{M}/gu, "").normalize("NFC"));
  });
});

describe("decoy encodings", () => {
  test("decoys that use up the view limit do not hide a deeply encoded secret (layered views)", async () => {
    const { builtinRules } = await import("../../../src/config/load.ts");
    const { sampleSecret } = await import("../../helpers/dlp-samples.ts");
    const { createDlpEngine } = await import("../../../src/scan/dlp.ts");
    const { bodyFragments } = await import("../../../src/inspect/fragments.ts");
    const token = sampleSecret("dlp.github-token");
    const b64 = (x: string) => Buffer.from(x).toString("base64");
    const decoys = { d1: "%41%42%43", d2: "&amp;&lt;x", d3: "\\u0041\\u0042", d4: "=41=42=43", d5: "0123456789abcdef0123456789abcdef0123", d6: "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZ", d7: "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=" };
    const engine = createDlpEngine({ rules: await builtinRules() });
    for (const t of [b64(b64(` ${token} `)), b64(b64(b64(` ${token} `))), `${encodeURIComponent(b64(` ${token} `))}%20`]) {
      const body = Buffer.from(JSON.stringify({ ...decoys, t }));
      // As fragments of a JSON body (the proxy), and as one text (sluice scan --as text).
      const fragments = bodyFragments("application/json", body).fragments;
      expect(engine.scan(fragments).map((h) => h.finding.rule)).toContain("dlp.github-token");
      expect(engine.scan([{ location: "text", text: body.toString() }]).map((h) => h.finding.rule)).toContain("dlp.github-token");
    }
  });
});

describe("TextGuard: early refusal never refuses what plausibleText accepts", () => {
  test("random, text, UTF-8 and mixed byte strings", async () => {
    const { TextGuard, plausibleText } = await import("../../../src/scan/decode/text.ts");
    const samples: Uint8Array[] = [];
    const words = ["hello", "wörld", "пароль", "密码", "token=", "\t", "\n", "ghp_", "ключ", "é"];
    for (let i = 0; i < 3000; i++) {
      const kind = i % 4;
      const len = 4 + Math.floor(rand() * 200);
      if (kind === 0) samples.push(Uint8Array.from({ length: len }, () => Math.floor(rand() * 256)));
      else if (kind === 1) samples.push(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 30) }, () => pick(words)).join(" ")));
      else {
        const text = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 30) }, () => pick(words)).join(" "));
        // Text with some random bytes spliced in (at most a few, or many).
        const noisy = Uint8Array.from(text);
        const flips = kind === 2 ? Math.floor(rand() * 3) : Math.floor(rand() * noisy.length);
        for (let f = 0; f < flips; f++) noisy[Math.floor(rand() * noisy.length)] = Math.floor(rand() * 256);
        samples.push(noisy);
      }
    }
    let refusedEarly = 0;
    for (const bytes of samples) {
      const guard = new TextGuard(bytes.length);
      const early = !bytes.every((b) => guard.add(b));
      if (early) {
        refusedEarly++;
        expect(plausibleText(bytes)).toBeNull();
      }
    }
    // It does refuse: most random samples stop early.
    expect(refusedEarly).toBeGreaterThan(500);
  });

  test("its tables (for decoders that check a few bytes at a time) refuse at exactly the same byte", async () => {
    const { TextGuard, CONTROL, BAD, UTF8_STEP, UTF8_INVALID, guardLimit } = await import("../../../src/scan/decode/text.ts");
    const words = ["hello", "wörld", "пароль", "密码", "\t", "\n", "é", "\u0000", "\u007f"];
    for (let i = 0; i < 3000; i++) {
      const bytes =
        i % 2 === 0
          ? Uint8Array.from({ length: 4 + Math.floor(rand() * 100) }, () => Math.floor(rand() * 256))
          : Uint8Array.from(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 20) }, () => pick(words)).join(rand() < 0.5 ? " " : "\u0080")));
      const guard = new TextGuard(bytes.length);
      const limit = guardLimit(bytes.length);
      let controls = 0;
      let bad = 0;
      let state = 0;
      bytes.forEach((b, at) => {
        controls += CONTROL[b]!;
        bad += BAD[b]!;
        state = UTF8_STEP[state * 256 + b]!;
        const tables = !(controls > limit || (state === UTF8_INVALID && bad > limit));
        expect({ bytes: Array.from(bytes), at, ok: tables }).toEqual({ bytes: Array.from(bytes), at, ok: guard.add(b) });
      });
    }
  });
});

describe("wrapped base64", () => {
  test("a token across a line wrap of base64 -w76 / PEM-width output is found; unwrapped lines alone are not joined", async () => {
    const { builtinRules } = await import("../../../src/config/load.ts");
    const { sampleSecret } = await import("../../helpers/dlp-samples.ts");
    const token = sampleSecret("dlp.github-token");
    const rules = await builtinRules();
    for (const width of [76, 64]) {
      for (let shift = 0; shift < 60; shift += 7) {
        const plain = `${"config line number one, nothing secret. ".repeat(2).slice(0, 40 + shift)} token=${token} and then more text after it.`;
        const b64 = Buffer.from(plain).toString("base64");
        const lines = b64.match(new RegExp(`.{1,${width}}`, "g"))!;
        for (const eol of ["\n", "\r\n"]) {
          const text = `payload:\n${lines.join(eol)}\nend`;
          expect({ width, shift, eol, found: scanText(rules, text).some((f) => f.rule === "dlp.github-token") }).toEqual({ width, shift, eol, found: true });
        }
      }
    }
    // Two unrelated runs on consecutive lines of different widths are not one block.
    const { decodeRunViews } = await import("../../../src/scan/decode/runs.ts");
    const a = Buffer.from("first line of some plain words here, ok").toString("base64");
    const b = Buffer.from("second").toString("base64");
    expect(decodeRunViews(`${a}\n${b}xx`, 1 << 20).base64).toBe(`${Buffer.from(a, "base64").toString()}\n${b}xx`);
    // A block shape that is not one base64 text (a digest above a path) keeps its lines apart.
    const path = `/api/v1/${Buffer.from("secret value here!").toString("base64url")}`;
    const text = `da39a3ee5e6b4b0d3255bfef95601890afd80709\n${path}`;
    expect(decodeRunViews(text, 1 << 20).base64).toBe(base64Decode(text, 1 << 20));
    expect(decodeRunViews(text, 1 << 20).base64).toBe("da39a3ee5e6b4b0d3255bfef95601890afd80709\n/api/v1/secret value here!");
  });
});

describe("every built-in pack finds exactly what its rules find run over the whole text", () => {
  // The fast paths together (the two-chain keyword automaton, anchored rules, keyword windows,
  // run windows) against the exhaustive reference: every rule's pattern over every text.
  const packs = [
    { prefix: "rules/dlp/", family: "dlp" as const },
    { prefix: "rules/injection/", family: "inj" as const },
    { prefix: "rules/mcp/", family: "mcp" as const },
    { prefix: "rules/mcp-args/", family: "mcp" as const },
  ];
  for (const { prefix, family } of packs) {
    test(`${prefix}: random texts of examples, keywords and noise, short and long`, async () => {
      const files = (await loadRuleFiles(prefix)).filter((f) => !f.path.includes("/cues/"));
      const fast = compileRulePack(files, family);
      const slow = compileRulePack(files, family, { exhaustive: true });
      const pieces = fast.rules.flatMap((r) => [...r.examples.match, ...r.examples.no_match, ...r.keywords, ...r.keywords.map((k) => k.toUpperCase())]);
      const noise = [" ", "\n", "\\n", "=", ":", '"', "'", "/", "-", "_", "x", "0", "A", "the ", "é", "\u200b", "&amp;", "%20"];
      const key = (f: { rule: string; start: number; end: number }) => `${f.rule}@${f.start}-${f.end}`;
      for (let round = 0; round < 150; round++) {
        const parts: string[] = [];
        const target = round % 3 === 0 ? 200 : 4000;
        for (let length = 0; length < target; ) {
          const p = rand() < 0.4 ? pick(pieces) : pick(noise);
          parts.push(p);
          length += p.length;
        }
        const text = parts.join("");
        expect({ text, found: fast.scan(text).map(key).sort() }).toEqual({ text, found: slow.scan(text).map(key).sort() });
      }
    });
  }
});

describe("keyword anchoring", () => {
  test("proved from the pattern: every way a match begins spells a keyword", () => {
    expect(keywordAnchored("(?<![a-z])ghp_[A-Za-z0-9]{36}", "", ["ghp_"])).toBe(true);
    expect(keywordAnchored("gh[us]_[0-9A-Za-z]{36}", "", ["ghu_", "ghs_"])).toBe(true);
    expect(keywordAnchored("(?:token|api[_-]?key)\\s*=", "i", ["token", "api_key", "apikey", "api-key"])).toBe(true);
    expect(keywordAnchored("eyJ[0-9A-Za-z]{8}", "", ["eyj"])).toBe(true);
    // A way the keywords miss (api.key), a keyword inside the match, an optional prefix, a
    // large class, a back-reference, unicode case folding: not anchored.
    expect(keywordAnchored("api[_.-]?key", "i", ["api_key", "apikey", "api-key"])).toBe(false);
    expect(keywordAnchored("-----BEGIN [A-Z ]{0,20}PRIVATE KEY", "", ["private key"])).toBe(false);
    expect(keywordAnchored("(?:x-)?token", "i", ["token"])).toBe(false);
    expect(keywordAnchored("[a-z]{3}_[a-z]{8}", "", ["abc_"])).toBe(false);
    expect(keywordAnchored("(tok)\\1", "", ["tok"])).toBe(false);
    expect(keywordAnchored("token", "iu", ["token"])).toBe(false);
    // Too many ways to begin: given up, not anchored.
    expect(keywordAnchored("[ab][ab][ab][ab][ab][ab][ab][ab][ab][ab]", "", ["aaaaaaaaaa"])).toBe(false);
  });
});

describe("SIMD class runs (class-runs.wat)", () => {
  test("equal the skipping search for several classes at once, at every length and minimum, ASCII or not", () => {
    const classes = ["0123456789 -", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-", "0123456789ABCDEFabcdef: ", "x"];
    const alphabet = [..."0123456789 -abx:+/_ZQ\n\t", "é", "Ł", "\u0141", "\u2028", "\u{1F600}", "\u010a"];
    // An index (a WebAssembly instance and its memory) per 8 rounds: the process has one.
    let index = new ClassRunIndex(0);
    let specs = classes.map((chars) => ({ members: classTable(chars), minLength: 1 }));
    let ids: number[] = [];
    for (let round = 0; round < 400; round++) {
      if (round % 8 === 0) {
        index = new ClassRunIndex(0);
        specs = classes.map((chars) => ({ members: classTable(chars), minLength: 1 + Math.floor(rand() * 64) }));
        ids = specs.map((s) => index.register(s));
      }
      // Lengths around the 64-character blocks; some texts beyond ASCII (Ł is 0x41 as a Latin-1
      // byte, \u010a a line break: written as no class's byte when the runs beyond ASCII are few,
      // searched in JavaScript when they are many), now and then with only a few such characters.
      const length = pick([0, 1, 15, 16, 63, 64, 65, 127, 128, 129, 1000, 5000]) + Math.floor(rand() * 3);
      const ascii = round % 4 !== 0;
      const few = round % 8 === 4;
      const text = Array.from({ length }, () => {
        const c = pick(alphabet);
        return (ascii || (few && rand() < 0.97)) && c.charCodeAt(0) >= 128 ? "a" : rand() < 0.3 ? "0" : c;
      }).join("");
      // Asked in any order, some twice, some not at all.
      const asked = specs.map((_, k) => k).filter(() => rand() < 0.8);
      for (const k of [...asked, ...asked].sort(() => rand() - 0.5)) {
        const want: number[] = [];
        forEachClassRun(text, specs[k]!.members, specs[k]!.minLength, (a, b) => want.push(a, b));
        expect({ text, min: specs[k]!.minLength, got: Array.from(index.runs(text, ids[k]!)) }).toEqual({ text, min: specs[k]!.minLength, got: want });
      }
    }
  });
  test("a long run across many blocks, one at the very end, none at all; identical classes shared; bad minimums refused", () => {
    const index = new ClassRunIndex(0);
    const a = index.register({ members: classTable("a"), minLength: 64 });
    expect(index.register({ members: classTable("a"), minLength: 64 })).toBe(a);
    expect(Array.from(index.runs(`${"a".repeat(1000)} ${"a".repeat(63)} ${"a".repeat(64)}`, a))).toEqual([0, 1000, 1065, 1129]);
    expect(Array.from(index.runs("b".repeat(300), a))).toEqual([]);
    // A class registered after a text was indexed is found in that text too.
    const b = index.register({ members: classTable("b"), minLength: 2 });
    expect(Array.from(index.runs("b".repeat(300), b))).toEqual([0, 300]);
    expect(() => index.register({ members: classTable("a"), minLength: 65 })).toThrow(/1 to 64/);
  });
});

