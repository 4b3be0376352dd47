/**
 * MCP stdio proxy benchmark (issue 7): the same client against the same server, straight and
 * through `dist/sluice mcp proxy`, measured in the same run.
 *
 * - round trips: --calls sequential `tools/call` requests with 1 KiB of text in the arguments,
 *   answered with the same 1 KiB as the result (DLP over the arguments, injection and DLP over
 *   the result): median and p99 per round trip, and what sluice adds;
 * - a `tools/list` of 200 tools: the round trip through sluice against direct, and the time the
 *   judgement itself takes (McpSession in this process, the list as the server sends it).
 *
 *   bun bench/mcp.ts [--calls 2000]
 *
 * Targets: <= 0.3 ms added per round trip (median); a 200-tool list judged in <= 20 ms.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { compilePolicy } from "../src/config/compile.ts";
import { builtinArgRules, builtinInjectionRules, builtinMcpRules, builtinRules } from "../src/config/load.ts";
import { parseConfigText } from "../src/config/parse.ts";
import { openPinStore } from "../src/mcp/baselines.ts";
import { McpSession } from "../src/mcp/session.ts";
import { fmt, printTable, printTargets, targetsJson, type Target } from "./lib/report.ts";
import { ensureBinary } from "./lib/sluice.ts";

const { values } = parseArgs({ args: Bun.argv.slice(2), options: { calls: { type: "string", default: "2000" } }, strict: true });
const calls = Number(values.calls);
if (!Number.isInteger(calls) || calls < 100) {
  console.error("--calls wants an integer >= 100");
  process.exit(1);
}
const TOOLS = 200;
const SERVER = resolve(import.meta.dir, "lib/mcp-echo-server.ts");
const BIN = resolve(import.meta.dir, "../dist/sluice");

await ensureBinary();
const dir = mkdtempSync(join(tmpdir(), "sluice-bench-mcp-"));
const config = join(dir, "sluice.yaml");
writeFileSync(config, `version: 1\naudit: { file: ${JSON.stringify(join(dir, "records.jsonl"))} }\nmcp: { baselines_file: ${JSON.stringify(join(dir, "pins.sqlite"))} }\n`);

/** A line-based JSON-RPC client over a child's stdio. */
function client(cmd: string[]) {
  const p: Subprocess<"pipe", "pipe", "inherit"> = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "inherit", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home") } });
  const reader = p.stdout.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let id = 0;
  async function request(method: string, params: unknown): Promise<Record<string, unknown>> {
    const my = ++id;
    p.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id: my, method, params })}\n`);
    await p.stdin.flush();
    for (;;) {
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = JSON.parse(line) as Record<string, unknown>;
        if (m.id === my) return m;
        continue;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("the server ended");
      buf += decoder.decode(value, { stream: true });
    }
  }
  return {
    request,
    async close() {
      await p.stdin.end();
      await p.exited;
    },
  };
}

const TEXT = "The deployment finished and every health check passed; the report is attached below. ".repeat(13).slice(0, 1024);
const percentile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;

async function measure(cmd: string[]): Promise<{ p50: number; p99: number; list: number }> {
  const c = client(cmd);
  await c.request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } });
  // Warm-up, then the timed calls.
  for (let i = 0; i < 200; i++) await c.request("tools/call", { name: "echo", arguments: { text: TEXT } });
  const ms: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = Bun.nanoseconds();
    const r = await c.request("tools/call", { name: "echo", arguments: { text: TEXT } });
    ms.push((Bun.nanoseconds() - t0) / 1e6);
    if (!("result" in r)) throw new Error(`a call failed: ${JSON.stringify(r).slice(0, 300)}`);
  }
  ms.sort((a, b) => a - b);
  const lists: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Bun.nanoseconds();
    const r = await c.request("tools/list", {});
    lists.push((Bun.nanoseconds() - t0) / 1e6);
    if (((r.result as { tools: unknown[] }).tools ?? []).length !== TOOLS) throw new Error("the tool list came back short");
  }
  await c.close();
  lists.sort((a, b) => a - b);
  return { p50: percentile(ms, 0.5), p99: percentile(ms, 0.99), list: lists[2]! };
}

const serverCmd = [process.execPath, SERVER, String(TOOLS)];
const direct = await measure(serverCmd);
const via = await measure([BIN, "mcp", "proxy", "--config", config, "--", ...serverCmd]);

// The judgement of a 200-tool list alone, in this process, as the proxy runs it.
const policy = compilePolicy(parseConfigText("version: 1\n", "bench.yaml"), { agentTokenDigests: new Map(), digest: "bench", systemNameservers: [{ hostname: "127.0.0.1", port: 53 }], builtinRules: await builtinRules(), injectionRules: await builtinInjectionRules(), mcpRules: await builtinMcpRules(), argRules: await builtinArgRules() });
const listLine = await (async () => {
  const c = client(serverCmd);
  const r = await c.request("tools/list", {});
  await c.close();
  return JSON.stringify(r);
})();
const judgeMs: number[] = [];
// With the pin store, as the proxy runs it (the list is pinned by the first round, checked after).
const pins = openPinStore(join(dir, "bench-pins.sqlite"), "trust");
for (let i = 0; i < 12; i++) {
  const s = new McpSession(() => ({ dlp: policy.dlp, injection: policy.injection, audit: false, pins: { store: pins, server: "bench" }, toolInjection: policy.mcpToolInjection, args: policy.mcpArguments }));
  s.fromClient(JSON.stringify({ jsonrpc: "2.0", id: (JSON.parse(listLine) as { id: number }).id, method: "tools/list", params: {} }));
  const t0 = Bun.nanoseconds();
  const out = s.fromServer(listLine);
  judgeMs.push((Bun.nanoseconds() - t0) / 1e6);
  if (out.toClient.length !== 1) throw new Error("the list was not passed on");
}
judgeMs.sort((a, b) => a - b);
const judge = judgeMs[6]!;
pins.close();
rmSync(dir, { recursive: true, force: true });

const added = via.p50 - direct.p50;
console.log(`\ntools/call round trips, 1 KiB arguments and result, ${calls} sequential calls:`);
printTable(
  ["path", "p50 ms", "p99 ms", `tools/list (${TOOLS}) ms`],
  [
    ["direct to the server", fmt(direct.p50, 3), fmt(direct.p99, 3), fmt(direct.list, 2)],
    ["through sluice mcp proxy (DLP + injection)", fmt(via.p50, 3), fmt(via.p99, 3), fmt(via.list, 2)],
  ],
);
console.log(`\nadded by sluice: ${fmt(added, 3)} ms median, ${fmt(via.p99 - direct.p99, 3)} ms p99 per round trip; the ${TOOLS}-tool list judged in ${fmt(judge, 2)} ms (injection and tool-poisoning rules, DLP, pins; median of 12, in process)`);
const targets: Target[] = [
  { name: "added median per round trip", value: added, unit: " ms", goal: "<= 0.3 ms", pass: added <= 0.3 },
  { name: `${TOOLS}-tool tools/list judged`, value: judge, unit: " ms", goal: "<= 20 ms", pass: judge <= 20 },
];
console.log("\ntargets:");
printTargets(targets, (t) => fmt(t.value, 3));
console.log(`\n${JSON.stringify({ bench: "mcp", calls, tools: TOOLS, direct, via, added_p50_ms: Number(added.toFixed(3)), list_judge_ms: Number(judge.toFixed(2)), targets: targetsJson(targets) })}`);
