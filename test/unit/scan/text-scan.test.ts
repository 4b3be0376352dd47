import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compileRulePack } from "../../../src/scan/rules/compile.ts";
import { scanText } from "../../../src/scan/text-scan.ts";

const rules = compileRulePack([{ path: "rules/dlp/source-hosting.yaml", text: readFileSync(join(import.meta.dir, "../../../rules/dlp/source-hosting.yaml"), "utf8") }]);
const TOKEN = "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";

describe("scanText", () => {
  test("a secret seen in several views is reported once, from the shallowest", () => {
    const twice = `${TOKEN} and again ${Buffer.from(TOKEN).toString("base64")}`;
    const found = scanText(rules, twice).filter((f) => f.rule === "dlp.github-token");
    expect(found.length).toBe(1);
    expect(found[0]!.via).toEqual([]);
  });

  test("Unicode tricks are seen through: zero-width characters inside the token", () => {
    const hidden = `${TOKEN.slice(0, 10)}\u200b${TOKEN.slice(10)}`;
    const found = scanText(rules, hidden).find((f) => f.rule === "dlp.github-token");
    expect(found?.via).toEqual(["unicode"]);
  });

  test("nothing in clean text", () => {
    expect(scanText(rules, "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 by someone")).toEqual([]);
  });
});
