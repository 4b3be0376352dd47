import { afterEach, describe, expect, test } from "bun:test";
import { mulberry32 } from "../../helpers/mulberry32.ts";
import { compileKnownSecrets, type KnownSecret, type KnownSecretMatch } from "../../../src/scan/known-secrets.ts";

// Made-up values, generated for the test; none is a live credential.
const OPENAI: KnownSecret = { name: "env:OPENAI_API_KEY", value: "sk-test-7fQx2LmN9pR4vW8zK3cJ" };
const DB: KnownSecret = { name: "file:/run/secrets/db", value: "hunter2-Correct-Horse" };

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const b64url = (s: string) => Buffer.from(s, "utf8").toString("base64url");
const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");
const pctAll = (s: string, upper = true) =>
  [...Buffer.from(s, "utf8")].map((b) => "%" + (upper ? b.toString(16).toUpperCase() : b.toString(16)).padStart(2, "0")).join("");

function only(matches: KnownSecretMatch[]): KnownSecretMatch {
  expect(matches).toHaveLength(1);
  return matches[0]!;
}

function randomToken(next: () => number, length: number, alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"): string {
  let s = "";
  for (let i = 0; i < length; i++) s += alphabet[Math.floor(next() * alphabet.length)];
  return s;
}

describe("known secrets: each form", () => {
  const scanner = compileKnownSecrets([OPENAI, DB]);

  test("raw, with offsets, name and a preview that holds no character of the value", () => {
    const text = `curl -H "x-key: ${OPENAI.value}" https://api.example`;
    const m = only(scanner.scan(text));
    expect(m).toEqual({ rule: "dlp.known-secret", name: OPENAI.name, form: "raw", start: text.indexOf(OPENAI.value), end: text.indexOf(OPENAI.value) + OPENAI.value.length, preview: "known:env:OPENAI_API_KEY" });
  });

  test("raw is case-sensitive", () => {
    expect(scanner.scan(OPENAI.value.toUpperCase())).toEqual([]);
    expect(scanner.scan(OPENAI.value.toLowerCase())).toEqual([]);
  });

  test.each([
    ["hex lower", hex(OPENAI.value)],
    ["hex upper", hex(OPENAI.value).toUpperCase()],
    ["hex with colons", hex(OPENAI.value).match(/../g)!.join(":")],
    ["hex with spaces, upper", hex(OPENAI.value).toUpperCase().match(/../g)!.join(" ")],
  ])("%s", (_label, encoded) => {
    const m = only(scanner.scan(`data=${encoded};`));
    expect(m.form).toBe("hex");
    expect(m.name).toBe(OPENAI.name);
  });

  test.each([
    ["base64 padded", b64(OPENAI.value), "base64"],
    ["base64 unpadded", b64(OPENAI.value).replace(/=+$/, ""), "base64"],
    ["base64url of a value whose encoding has no + or / (reported as base64: the same string)", b64url(DB.value), "base64"],
  ])("%s", (_label, encoded, form) => {
    const m = only(scanner.scan(`{"blob":"${encoded}"}`));
    expect(m.form).toBe(form as KnownSecretMatch["form"]);
  });

  test("base64 and base64url differ only when the encoding has + or /: both are found", () => {
    // Chosen so that the standard encoding contains "+" and "/" (checked below).
    const secret: KnownSecret = { name: "env:BINARYISH", value: "ab>>>?>?>?cd~~~" };
    const s = compileKnownSecrets([secret]);
    expect(b64(secret.value)).toMatch(/[+/]/);
    expect(only(s.scan(b64(secret.value))).form).toBe("base64");
    expect(only(s.scan(b64url(secret.value))).form).toBe("base64url");
  });

  test("percent: every byte encoded, upper and lower hex", () => {
    expect(only(scanner.scan(`q=${pctAll(OPENAI.value)}`)).form).toBe("percent");
    expect(only(scanner.scan(`q=${pctAll(OPENAI.value, false)}`)).form).toBe("percent");
  });

  test("percent: the usual partial encodings (encodeURIComponent, form encoding)", () => {
    const secret: KnownSecret = { name: "env:PASSWORD", value: "p@ss w0rd/with&odd=chars!" };
    const s = compileKnownSecrets([secret]);
    const component = encodeURIComponent(secret.value);
    const form = new URLSearchParams({ p: secret.value }).toString().slice(2);
    expect(component).not.toBe(secret.value);
    expect(form).toContain("+");
    expect(only(s.scan(`https://h/?p=${component}`)).form).toBe("percent");
    expect(only(s.scan(`p=${form}&x=1`)).form).toBe("percent");
    expect(only(s.scan(`p=${component.toLowerCase()}`)).form).toBe("percent");
  });
});

describe("known secrets: embedded inside a longer base64 blob", () => {
  const scanner = compileKnownSecrets([OPENAI]);

  test.each([0, 1, 2])("at byte alignment %i, standard and URL-safe", (alignment) => {
    for (let pad = alignment; pad < 12; pad += 3) {
      const plain = "x".repeat(pad) + OPENAI.value + "-trailing-bytes";
      for (const encoded of [b64(plain), b64url(plain)]) {
        const m = only(scanner.scan(`payload=${encoded}`));
        expect(m.name).toBe(OPENAI.name);
        expect(["base64", "base64url"]).toContain(m.form);
      }
    }
  });

  test("the secret at the end of the blob, padded or not", () => {
    for (const prefix of ["", "a", "ab", "abc"]) {
      const encoded = b64(prefix + OPENAI.value);
      expect(only(scanner.scan(encoded)).name).toBe(OPENAI.name);
      expect(only(scanner.scan(encoded.replace(/=+$/, ""))).name).toBe(OPENAI.name);
    }
  });

  test("Basic auth header (user:password)", () => {
    const header = `Authorization: Basic ${b64(`alice:${DB.value}`)}`;
    const m = only(compileKnownSecrets([DB]).scan(header));
    expect(m.name).toBe(DB.name);
    expect(m.form).toBe("base64");
    expect(m.start).toBeGreaterThan(header.indexOf("Basic "));
  });

  test("a bearer header encoded as a whole", () => {
    expect(only(scanner.scan(b64(`Authorization: Bearer ${OPENAI.value}\r\n`))).name).toBe(OPENAI.name);
  });
});

describe("known secrets: what must not match", () => {
  const scanner = compileKnownSecrets([OPENAI, DB]);

  test("a different secret in every form", () => {
    const other = "sk-test-7fQx2LmN9pR4vW8zK3cX"; // same but the last character
    const text = [other, hex(other), hex(other).toUpperCase(), b64(other), b64url(other), pctAll(other), b64(`user:${other}`)].join("\n");
    expect(scanner.scan(text)).toEqual([]);
  });

  test("a prefix of the secret only, in every form", () => {
    const prefix = OPENAI.value.slice(0, -1);
    const text = [prefix, hex(prefix), hex(prefix).toUpperCase(), pctAll(prefix), encodeURIComponent(prefix)].join("\n");
    expect(scanner.scan(text)).toEqual([]);
    for (const pad of ["", "a", "ab"]) {
      expect(scanner.scan(b64(pad + prefix))).toEqual([]);
      expect(scanner.scan(b64url(pad + prefix))).toEqual([]);
    }
  });

  test("clean text and the empty string", () => {
    expect(scanner.scan("")).toEqual([]);
    expect(scanner.scan("GET /v1/models HTTP/1.1\r\nHost: api.example\r\n\r\n".repeat(100))).toEqual([]);
  });
});

describe("known secrets: compile options and hygiene", () => {
  test("values shorter than minLength are refused and named in skipped", () => {
    const s = compileKnownSecrets([{ name: "env:SHORT", value: "abc1234" }, OPENAI, { name: "env:EMPTY", value: "" }]);
    expect(s.skipped).toEqual(["env:SHORT", "env:EMPTY"]);
    expect(s.size).toBe(1);
    expect(s.scan("abc1234 abc1234")).toEqual([]);
    const loose = compileKnownSecrets([{ name: "env:SHORT", value: "abc1234" }], { minLength: 4 });
    expect(loose.skipped).toEqual([]);
    expect(only(loose.scan("x abc1234 y")).name).toBe("env:SHORT");
  });

  test("minLength counts code points, not UTF-16 units", () => {
    const s = compileKnownSecrets([{ name: "env:EMOJI", value: "🔑🔑🔑🔑" }], { minLength: 5 });
    expect(s.skipped).toEqual(["env:EMOJI"]);
  });

  test("an empty list scans to nothing", () => {
    const s = compileKnownSecrets([]);
    expect(s.size).toBe(0);
    expect(s.scan("anything")).toEqual([]);
  });

  test("a bad minLength is refused", () => {
    expect(() => compileKnownSecrets([OPENAI], { minLength: 0 })).toThrow(RangeError);
  });

  test("the scanner exposes no value: not as a property, not through JSON or inspection", () => {
    const s = compileKnownSecrets([OPENAI, DB]);
    const shown = [JSON.stringify(s), Bun.inspect(s), Object.keys(s).join(","), Object.getOwnPropertyNames(s).join(","), String(s.scan)].join("\n");
    for (const secret of [OPENAI, DB]) {
      expect(shown).not.toContain(secret.value);
      expect(shown).not.toContain(hex(secret.value));
      expect(shown).not.toContain(b64(secret.value).slice(0, 12));
    }
    expect(Object.keys(s).sort()).toEqual(["partialAtEnd", "scan", "size", "skipped"]);
    expect(Object.isFrozen(s)).toBe(true);
  });

  test("partialAtEnd: the beginning of a secret (8 characters or more, not all of it) ending a text", () => {
    const s = compileKnownSecrets([OPENAI, DB]);
    expect(s.partialAtEnd(`key=${OPENAI.value.slice(0, 8)}`)).toBe(OPENAI.name);
    expect(s.partialAtEnd(`x ${DB.value.slice(0, DB.value.length - 1)}`)).toBe(DB.name);
    expect(s.partialAtEnd(`key=${OPENAI.value.slice(0, 7)}`)).toBeNull();
    // The whole secret is scan()'s to find; a beginning not at the end is nothing.
    expect(s.partialAtEnd(`key=${OPENAI.value}`)).toBeNull();
    expect(s.partialAtEnd(`${OPENAI.value.slice(0, 10)} and more`)).toBeNull();
  });

  test("two names with the same value: one match, the first name", () => {
    const s = compileKnownSecrets([OPENAI, { name: "env:OPENAI_KEY_COPY", value: OPENAI.value }]);
    expect(only(s.scan(OPENAI.value)).name).toBe(OPENAI.name);
  });
});

describe("known secrets: awkward values", () => {
  test("regex metacharacters are literal", () => {
    const secret: KnownSecret = { name: "env:META", value: "a.b*c+d?e(f)[g]{h}|i^j$k\\l/m-n" };
    const s = compileKnownSecrets([secret]);
    expect(only(s.scan(`x=${secret.value}`)).form).toBe("raw");
    expect(s.scan("aXb*c+d?e(f)[g]{h}|i^j$k\\l/m-n")).toEqual([]); // "." is not a wildcard
    expect(s.scan("a.bbbbc+d?e(f)[g]{h}|i^j$k\\l/m-n")).toEqual([]);
    expect(only(s.scan(b64(`k:${secret.value}`))).name).toBe("env:META");
    expect(only(s.scan(pctAll(secret.value))).form).toBe("percent");
  });

  test("unicode values: raw, and the UTF-8 bytes as base64, hex and percent", () => {
    const secret: KnownSecret = { name: "file:/run/secrets/unicode", value: "clé-secrète-🔑-密码" };
    const s = compileKnownSecrets([secret]);
    expect(only(s.scan(`[${secret.value}]`)).form).toBe("raw");
    expect(only(s.scan(hex(secret.value))).form).toBe("hex");
    expect(only(s.scan(hex(secret.value).toUpperCase())).form).toBe("hex");
    expect(only(s.scan(pctAll(secret.value))).form).toBe("percent");
    expect(only(s.scan(encodeURIComponent(secret.value))).form).toBe("percent");
    for (const pad of ["", "a", "ab"]) {
      expect(only(s.scan(b64(pad + secret.value + "zz"))).name).toBe(secret.name);
      expect(only(s.scan(b64url(pad + secret.value + "zz"))).name).toBe(secret.name);
    }
  });

  test("a secret that is a prefix of another: the longer one wins where both fit", () => {
    const short: KnownSecret = { name: "env:SHORT", value: "prefix-secret-1234" };
    const long: KnownSecret = { name: "env:LONG", value: "prefix-secret-1234-and-more" };
    const s = compileKnownSecrets([short, long]);
    expect(only(s.scan(`a ${long.value} b`)).name).toBe("env:LONG");
    expect(only(s.scan(`a ${short.value} b`)).name).toBe("env:SHORT");
  });
});

describe("known secrets: many secrets, one pass", () => {
  const realExec = RegExp.prototype.exec;
  afterEach(() => {
    RegExp.prototype.exec = realExec;
  });

  test("500 secrets: every one found in every form, and the scan runs one RegExp over the text", () => {
    const next = mulberry32(4);
    const secrets: KnownSecret[] = Array.from({ length: 500 }, (_, i) => ({ name: `env:KEY_${i}`, value: `tok_${randomToken(next, 32)}` }));
    const s = compileKnownSecrets(secrets);
    expect(s.size).toBe(500);

    const encoders = [(v: string) => v, hex, b64, b64url, pctAll, (v: string) => b64(`user:${v}`)];
    const parts = secrets.map((sec, i) => `line ${i}: ${encoders[i % encoders.length]!(sec.value)} ;`);
    const text = parts.join("\n");

    const used = new Set<RegExp>();
    let calls = 0;
    RegExp.prototype.exec = function (this: RegExp, input: string) {
      used.add(this);
      calls++;
      return realExec.call(this, input);
    };
    const found = s.scan(text);
    RegExp.prototype.exec = realExec;

    expect(found.map((m) => m.name)).toEqual(secrets.map((sec) => sec.name));
    expect(used.size).toBe(1);
    // One exec per match plus the final one that finds nothing: a single left-to-right pass.
    expect(calls).toBe(found.length + 1);
  });
});
