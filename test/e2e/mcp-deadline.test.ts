/**
 * mcp.answer_timeout through `dist/sluice mcp proxy`, with the official SDK client: a server
 * that never answers a call does not hold the client. Over stdio (the SDK test server's `hang`
 * tool), and over Streamable HTTP (an SDK server on loopback whose tool never returns, in both
 * answer modes: a JSON answer that never comes, an event stream that stalls), upstream through a
 * `dist/sluice run` forward proxy. The call gets -32001 `mcp.answer-timeout`, one record says so,
 * and the session goes on.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { z } from "zod";
import { refusal, text } from "../helpers/mcp.ts";
import { stopSluices } from "../helpers/origins.ts";
import { BIN, ROOT, startSluice, tempDir, type Running } from "../helpers/sluice.ts";

const T = 30_000;
const FIXTURE = join(ROOT, "test/fixtures/mcp/server.ts");
let dir = "";
let forward: Running;
const origins: ReturnType<typeof Bun.serve>[] = [];
const procs: ReturnType<typeof Bun.spawn>[] = [];

/** An SDK server over HTTP, stateless: `echo` answers, `hang` never does. */
function serveMcp(json: boolean) {
  const origin = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const server = new McpServer({ name: "sluice-test-hanging-server", version: "1.0.0" });
      server.registerTool("echo", { description: "Echoes the text it is given.", inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: "text", text }] }));
      server.registerTool("hang", { description: "Never answers.", inputSchema: {} }, async () => await new Promise<never>(() => {}));
      const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: json });
      await server.connect(transport);
      return transport.handleRequest(req);
    },
  });
  origins.push(origin);
  return origin;
}

const recordsIn = (file: string) => readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const relayConfig = (name: string) => {
  const file = join(dir, `${name}.yaml`);
  const records = join(dir, `${name}-records.jsonl`);
  writeFileSync(file, `version: 1\naudit: { file: ${JSON.stringify(records)} }\nmcp:\n  answer_timeout: 1s\n  baselines_file: ${JSON.stringify(join(dir, `${name}-pins.sqlite`))}\n`);
  return { file, records };
};

beforeAll(async () => {
  dir = tempDir("sluice-mcp-deadline-");
  const json = serveMcp(true);
  const sse = serveMcp(false);
  const hosts = `["127.0.0.1:${json.port}", "127.0.0.1:${sse.port}"]`;
  forward = await startSluice(
    `version: 1
proxy: { listen: "127.0.0.1:0", require_agent: false }
admin: { listen: "127.0.0.1:0" }
egress:
  allow: ["127.0.0.1"]
  ports: { http: ["1-65535"] }
  trusted_cidrs: [127.0.0.1/32]
injection:
  exempt_hosts: ${hosts}
mcp:
  servers: [{ name: deadline-test, hosts: ${hosts} }]
`,
    { dir: tempDir("sluice-mcp-deadline-forward-") },
  );
}, T);

afterAll(async () => {
  for (const p of procs) p.kill();
  await stopSluices(forward);
  for (const o of origins) o.stop(true);
});

async function httpRelay(upstream: string, config: string): Promise<string> {
  const proc = Bun.spawn([BIN, "mcp", "proxy", "--config", config, "--upstream", upstream, "--listen", "127.0.0.1:0", "--via", forward.proxyUrl, "--name", "deadline-test"], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home") },
  });
  procs.push(proc);
  const reader = proc.stderr.getReader();
  let seen = "";
  for (;;) {
    const m = /listening on (http:\/\/\S+)/.exec(seen);
    if (m) return m[1]!;
    const { value, done } = await reader.read();
    if (done) throw new Error(`sluice mcp proxy ended: ${seen}`);
    seen += new TextDecoder().decode(value);
  }
}

/** The call to `hang` is answered by sluice in time; the session goes on; one record says why. */
async function expectTimedOut(client: Client, records: string) {
  const started = performance.now();
  const r = await refusal(client.callTool({ name: "hang", arguments: {} }));
  expect(r).toMatchObject({ code: -32001, sluice: { rule: "mcp.answer-timeout", reason: "timeout" } });
  expect(performance.now() - started).toBeLessThan(10_000);
  expect(text(await client.callTool({ name: "echo", arguments: { text: "still here" } }))).toBe("still here");
  await client.close();
  // Records are flushed in order: once the echo's is written, the timeout's is too.
  const written = performance.now() + 5000;
  while (!(existsSync(records) && recordsIn(records).some((l) => l.tool === "echo" && l.direction === "server"))) {
    if (performance.now() > written) throw new Error("no record of the echo call");
    await Bun.sleep(20);
  }
  const timedOut = recordsIn(records).filter((l) => l.rule === "mcp.answer-timeout");
  expect(timedOut).toHaveLength(1);
  expect(timedOut[0]).toMatchObject({ kind: "mcp", direction: "server", method: "tools/call", tool: "hang", verdict: "block", reason: "timeout" });
}

describe("mcp.answer_timeout through dist/sluice mcp proxy", () => {
  test(
    "stdio: a server that never answers a call",
    async () => {
      const { file, records } = relayConfig("stdio");
      const transport = new StdioClientTransport({
        command: BIN,
        args: ["mcp", "proxy", "--config", file, "--name", "deadline-stdio", "--", process.execPath, FIXTURE],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, SLUICE_HOME: join(dir, "home") },
        stderr: "pipe",
        cwd: ROOT,
      });
      const client = new Client({ name: "sluice-test-client", version: "1.0.0" });
      await client.connect(transport);
      await expectTimedOut(client, records);
    },
    T,
  );

  for (const [label, json] of [["a JSON answer that never comes", true], ["an event stream that stalls", false]] as const) {
    test(
      `Streamable HTTP, ${label}`,
      async () => {
        const { file, records } = relayConfig(json ? "http-json" : "http-sse");
        const origin = origins[json ? 0 : 1]!;
        const url = await httpRelay(`http://127.0.0.1:${origin.port}/mcp`, file);
        const client = new Client({ name: "sluice-test-client", version: "1.0.0" });
        await client.connect(new StreamableHTTPClientTransport(new URL(url)));
        await expectTimedOut(client, records);
      },
      T,
    );
  }
});
