/**
 * Tool-poisoning detection on the labelled corpus (test/corpus/mcp/: poisoned.jsonl and
 * benign.jsonl, tool definitions with a `family`): each tool is offered in a tools/list through
 * McpSession, as `sluice mcp proxy` judges it, with the embedded default policy; a tool withheld
 * is a detection. Prints recall on the poisoned tools and the false-positive rate on the benign
 * ones, with the injection rules alone and with rules/mcp beside them, and recall per family.
 *
 *   bun run eval:mcp [-v]
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { compilePolicy } from "../src/config/compile.ts";
import { builtinArgRules, builtinInjectionRules, builtinMcpRules, builtinRules } from "../src/config/load.ts";
import { parseConfigText } from "../src/config/parse.ts";
import { McpSession } from "../src/mcp/session.ts";

const verbose = process.argv.includes("-v");
const CORPUS = resolve(import.meta.dir, "../test/corpus/mcp");
type Tool = { name: string; family: string } & Record<string, unknown>;
const read = (f: string): Tool[] => readFileSync(join(CORPUS, f), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Tool);
const poisoned = read("poisoned.jsonl");
const benign = read("benign.jsonl");

const policy = compilePolicy(parseConfigText("version: 1\n", "eval.yaml"), {
  agentTokenDigests: new Map(),
  digest: "eval",
  systemNameservers: [{ hostname: "127.0.0.1", port: 53 }],
  builtinRules: await builtinRules(),
  injectionRules: await builtinInjectionRules(),
  mcpRules: await builtinMcpRules(),
  argRules: await builtinArgRules(),
});

/** Whether the session withholds `tool` from a tools/list, and the rules it cites. */
function withheld(tool: Tool, withMcpRules: boolean): { hit: boolean; rules: string[] } {
  const s = new McpSession(() => ({ dlp: policy.dlp, injection: policy.injection, audit: false, toolInjection: withMcpRules ? policy.mcpToolInjection : policy.injection }));
  const { family: _family, ...definition } = tool;
  s.fromClient(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }));
  const out = s.fromServer(JSON.stringify({ jsonrpc: "2.0", id: 1, result: { tools: [definition] } }));
  const listed = (JSON.parse(out.toClient[0]!) as { result?: { tools: unknown[] } }).result?.tools.length ?? 0;
  const rules = [...new Set(out.records.flatMap((r) => (r.findings ?? []).map((f) => f.rule)))];
  return { hit: listed === 0, rules };
}

const pct = (a: number, n: number) => `${a}/${n} (${((100 * a) / n).toFixed(1)}%)`;
const figures: Record<string, { recall: number; fp: number }> = {};
for (const [label, withMcp] of [["injection rules only", false], ["injection + rules/mcp", true]] as const) {
  const p = poisoned.map((t) => ({ t, ...withheld(t, withMcp) }));
  const b = benign.map((t) => ({ t, ...withheld(t, withMcp) }));
  const caught = p.filter((r) => r.hit).length;
  const fps = b.filter((r) => r.hit).length;
  figures[withMcp ? "with" : "without"] = { recall: caught / p.length, fp: fps / b.length };
  console.log(`\n${label}: recall ${pct(caught, p.length)}, false positives ${pct(fps, b.length)}`);
  const families = new Map<string, [number, number]>();
  for (const r of p) {
    const x = families.get(r.t.family) ?? [0, 0];
    x[1]++;
    if (r.hit) x[0]++;
    families.set(r.t.family, x);
  }
  console.log(`  recall by family: ${[...families].map(([f, [a, n]]) => `${f} ${a}/${n}`).join(", ")}`);
  for (const r of b.filter((r) => r.hit)) console.log(`  false positive: ${r.t.name} (${r.rules.join(", ")})`);
  if (verbose) for (const r of p.filter((r) => !r.hit)) console.log(`  missed: ${r.t.name} (${r.t.family})`);
}
console.log(`\n${JSON.stringify({ eval: "mcp", poisoned: poisoned.length, benign: benign.length, figures })}`);
