/**
 * The whole test suite, as the README's test command runs it: type-check, build dist/sluice,
 * then every test (unit, integration, architecture, end-to-end against the binary) in one
 * `bun test` run. Ends with a plain summary line, "tests: N passed, N failed, N skipped".
 */
import { $ } from "bun";

const bin = "node_modules/.bin";
$.env({ ...process.env, PATH: `${process.cwd()}/${bin}:${process.env.PATH ?? ""}` });

const step = async (name: string, run: () => Promise<{ exitCode: number }>) => {
  console.log(`\n=== ${name}`);
  const { exitCode } = await run();
  if (exitCode !== 0) {
    console.log(`\n${name} failed (exit ${exitCode})`);
    console.log("tests: 0 passed, 1 failed");
    process.exit(exitCode);
  }
};

if (process.getuid?.() !== 0) {
  console.log("note: not root: tests that need network namespaces or nftables will be skipped, each with its reason");
}
await step("typecheck (tsc --noEmit)", () => $`tsc --noEmit -p .`.nothrow());
await step("build (dist/sluice)", () => $`bun run build`.nothrow());

console.log("\n=== bun test");
// 30 s per test unless it says otherwise: the end-to-end tests start dist/sluice, several times
// in some, and a loaded 2-core CI machine is slow at it. (bunfig.toml's [test] timeout is not
// read by this Bun; the flag is.)
const proc = Bun.spawn(["bun", "test", "--timeout", "30000", ...process.argv.slice(2)], { stdout: "inherit", stderr: "pipe", env: { ...process.env } });
// bun test writes its report to stderr; pass it through and keep it for the summary.
let report = "";
const decoder = new TextDecoder();
for await (const chunk of proc.stderr) {
  const text = decoder.decode(chunk, { stream: true });
  report += text;
  process.stderr.write(text);
}
const code = await proc.exited;
const count = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}$`, "m").exec(report)?.[1] ?? 0);
const passed = count("pass");
const failed = count("fail");
const skipped = count("skip");
const broken = code !== 0 && failed === 0 ? 1 : 0;
console.log(`\ntests: ${passed} passed, ${failed + broken} failed, ${skipped} skipped`);
process.exit(code);
