/**
 * Custom DLP rules run on RE2 (re2-wasm), whose loader reads a .wasm file at run time. This
 * proves a `bun build --compile` binary carries that file (build.ts, embedRe2Wasm) instead of
 * reading it from the node_modules it was built from: the entry is built from a copy of src/
 * and of re2-wasm in a temporary directory, that copy of re2-wasm is deleted, and only then is
 * the binary run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { embedRe2Wasm } from "../../build.ts";
import { watPlugin } from "../../scripts/wat.ts";

const ROOT = resolve(import.meta.dir, "../..");
let dir = "";

const ENTRY = `
import { compileCustomRules } from "./src/scan/rules/custom.ts";
const rules = compileCustomRules([
  { id: "dlp.custom.acme-key", pattern: "acme_(?P<secret>[a-z0-9]{24})", keywords: ["acme_"] },
]);
let bad = "";
try {
  compileCustomRules([{ id: "dlp.custom.backref", pattern: "(a)\\\\1" }]);
} catch (e) {
  bad = (e as Error).message;
}
const text = await Bun.stdin.text();
process.stdout.write(JSON.stringify({ findings: rules.scan(text), bad }));
`;

/** Builds ENTRY into a binary with the plugins of build.ts (or all but embedRe2Wasm), then hides the package copy. */
async function buildEntry(name: string, plugins: Bun.BunPlugin[]): Promise<string> {
  const work = join(dir, name);
  mkdirSync(join(work, "node_modules"), { recursive: true });
  cpSync(join(ROOT, "src"), join(work, "src"), { recursive: true });
  cpSync(join(ROOT, "node_modules", "re2-wasm"), join(work, "node_modules", "re2-wasm"), { recursive: true });
  for (const pkg of ["yaml", "zod", "tldts"]) {
    if (existsSync(join(ROOT, "node_modules", pkg))) symlinkSync(join(ROOT, "node_modules", pkg), join(work, "node_modules", pkg));
  }
  writeFileSync(join(work, "entry.ts"), ENTRY);
  const outfile = join(work, "custom-rules");
  const result = await Bun.build({
    entrypoints: [join(work, "entry.ts")],
    loader: { ".wasm": "file" },
    plugins,
    target: "bun",
    compile: { outfile, autoloadBunfig: false, autoloadDotenv: false, autoloadTsconfig: false, autoloadPackageJson: false },
  });
  expect(result.logs.map(String)).toEqual([]);
  expect(result.success).toBe(true);
  // From here on the only copy of re2.wasm the binary can use is the one inside it.
  rmSync(join(work, "node_modules", "re2-wasm"), { recursive: true, force: true });
  return outfile;
}

function run(binary: string, input: string): { code: number; stdout: string; stderr: string } {
  const p = Bun.spawnSync([binary], { stdin: new TextEncoder().encode(input), cwd: dir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sluice-re2-"));
});
afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

describe("custom rules in a compiled binary", () => {
  test("re2.wasm is embedded: the binary scans with RE2 after its node_modules copy is gone", async () => {
    const binary = await buildEntry("embedded", [embedRe2Wasm, watPlugin]);
    const secret = "q7w8e9r0t1y2u3i4o5p6a7s8";
    const input = `é😀 token: acme_${secret} end`;
    const { code, stdout, stderr } = run(binary, input);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { findings: { rule: string; start: number; end: number }[]; bad: string };
    expect(out.findings).toHaveLength(1);
    const f = out.findings[0]!;
    expect(f.rule).toBe("dlp.custom.acme-key");
    expect(input.slice(f.start, f.end)).toBe(secret);
    expect(out.bad).toContain("dlp.custom.backref");
    expect(out.bad).toContain("invalid escape sequence");
  }, 120_000);

  test("control: without the plugin the binary looks for re2.wasm where it was built, and fails", async () => {
    const binary = await buildEntry("plain", [watPlugin]);
    const { code, stdout } = run(binary, "acme_q7w8e9r0t1y2u3i4o5p6a7s8");
    expect(code).not.toBe(0);
    expect(stdout).not.toContain("dlp.custom.acme-key");
  }, 120_000);
});
