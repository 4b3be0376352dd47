/**
 * redactSecrets and clipText (scan/dlp.ts): text that goes into records whole (an agent's label, a
 * jail's command line) with every secret DLP finds cut out, however many there are and however
 * they overlap, and shortened only afterwards.
 */
import { describe, expect, test } from "bun:test";
import { builtinRules } from "../../../src/config/load.ts";
import { clipText, createDlpEngine, redactSecrets } from "../../../src/scan/dlp.ts";
import { sampleSecret } from "../../helpers/dlp-samples.ts";

const engine = createDlpEngine({ rules: await builtinRules() });
const key = sampleSecret("dlp.aws-access-key-id");
const ghp = sampleSecret("dlp.github-token");
const preview = (s: string) => `${s.slice(0, 4)}…${s.slice(-2)}`;
/** Another key id with the same first four and last two characters (the same preview): its middle reversed. */
const twin = `${key.slice(0, 4)}${[...key.slice(4, -2)].reverse().join("")}${key.slice(-2)}`;

describe("redactSecrets", () => {
  test("a clean text comes back as it was", () => {
    expect(redactSecrets("curl -sS http://web.test/ -o out.html", engine, "label")).toBe("curl -sS http://web.test/ -o out.html");
  });

  test("every secret is cut, each place it is written", () => {
    const out = redactSecrets(`deploy --key ${key} --token ${ghp} --again ${key}`, engine, "label");
    expect(out).toBe(`deploy --key ${preview(key)} --token ${preview(ghp)} --again ${preview(key)}`);
  });

  test("two different secrets with the same preview are both cut (a scan reports such a pair once)", () => {
    expect(twin).not.toBe(key);
    expect(engine.scan([{ location: "label", text: `--b ${twin}` }]).length).toBe(1);
    expect(engine.scan([{ location: "label", text: `--a ${key} --b ${twin}` }]).length).toBe(1);
    const out = redactSecrets(`--a ${key} --b ${twin}`, engine, "label");
    expect(out).toBe(`--a ${preview(key)} --b ${preview(twin)}`);
    expect(out).not.toContain(twin);
  });

  test("a secret found only after decoding withholds the whole text", () => {
    const hidden = Buffer.from(`aws_access_key_id = ${key}`).toString("base64");
    expect(redactSecrets(`job ${hidden}`, engine, "label")).toBe("[withheld: dlp.aws-access-key-id found in it]");
  });
});

describe("clipText", () => {
  test("short texts are kept; a cut inside a word drops the word", () => {
    expect(clipText("a b c", 10)).toBe("a b c");
    expect(clipText("alpha beta gamma", 12)).toBe("alpha beta…");
    expect(clipText("abcdefghijkl", 5)).toBe("…");
  });

  test("redacted first, clipped after: a secret across the limit leaves nothing of itself", () => {
    const text = `${"x ".repeat(240)}--key ${key} tail`;
    const at = text.indexOf(key);
    expect(at).toBeLessThan(500);
    expect(at + key.length).toBeGreaterThan(500);
    const label = clipText(redactSecrets(text, engine, "label"), 500);
    expect(label).not.toContain(key.slice(0, 8));
    expect(label).toContain(preview(key));
  });
});
