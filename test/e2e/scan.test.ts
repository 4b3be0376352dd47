/**
 * `sluice scan` through the compiled binary: the embedded rule pack, the decoders, the JSON
 * output that never carries a value, and the exit codes of the ARCHITECTURE.md contract.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, tempDir } from "../helpers/sluice.ts";

// A fake token with a valid GitHub CRC32 checksum (from the rule's own examples).
const TOKEN = "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";

async function scan(input: string, args: string[] = ["-"]): Promise<{ code: number; out: string; err: string; findings: { rule: string; via: string[]; preview: string }[] }> {
  const proc = Bun.spawn([BIN, "scan", ...args], { stdin: new Blob([input]), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  let findings: { rule: string; via: string[]; preview: string }[] = [];
  try {
    findings = (JSON.parse(out) as { findings: typeof findings }).findings;
  } catch {
    // usage errors print no JSON
  }
  return { code, out, err, findings };
}

describe("sluice scan", () => {
  test("a token as written is found (exit 1), and the output never contains it", async () => {
    const r = await scan(`deploy with token ${TOKEN} now`);
    expect(r.code).toBe(1);
    expect(r.findings.map((f) => f.rule)).toContain("dlp.github-token");
    expect(r.out).not.toContain(TOKEN);
  });

  test("encoded forms are found through the decoders, with the chain that revealed them", async () => {
    const forms: [string, string][] = [
      [`payload=${Buffer.from(`t=${TOKEN}`).toString("base64")}`, "base64"],
      [`q=${encodeURIComponent(encodeURIComponent(`token ${TOKEN}`))}`, "percent"],
      [`hex ${Buffer.from(TOKEN).toString("hex")}`, "hex"],
      [`"\\u0067\\u0068\\u0070\\u005f${TOKEN.slice(4)}"`, "json"],
    ];
    for (const [input, decoder] of forms) {
      const r = await scan(input);
      const hit = r.findings.find((f) => f.rule === "dlp.github-token");
      expect({ decoder, found: hit !== undefined, via: hit?.via.includes(decoder) }).toEqual({ decoder, found: true, via: true });
      expect(r.out).not.toContain(TOKEN);
    }
  });

  test("clean text and placeholders exit 0", async () => {
    const r = await scan("id 123e4567-e89b-12d3-a456-426614174000, sha 9fceb02d0ae598e95dc970b74767f19372d61af8, GITHUB_TOKEN=<your-token>");
    expect(r.code).toBe(0);
    expect(r.findings).toEqual([]);
  });

  test("a file argument works; usage and input errors exit 2", async () => {
    const dir = tempDir();
    const file = join(dir, "env.txt");
    writeFileSync(file, `GITHUB_TOKEN=${TOKEN}\n`);
    expect((await scan("", [file])).code).toBe(1);
    const missing = await scan("", [join(dir, "missing.txt")]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("ENOENT");
    expect((await scan("", ["--as", "mcp", "-"])).code).toBe(2);
    expect((await scan("", ["a", "b"])).code).toBe(2);
  });
});
