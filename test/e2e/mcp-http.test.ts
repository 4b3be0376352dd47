/**
 * `dist/sluice mcp proxy --upstream URL`: the Streamable HTTP transport between the official SDK
 * client and an SDK server (stateless, event-stream and JSON answers), upstream through a
 * `dist/sluice run` forward proxy. Poisoned tools withheld, a secret in arguments and an
 * instruction in a result refused with -32001, the server's MCP listed in mcp.servers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { refusal, text } from "../helpers/mcp.ts";
import { testServer } from "../fixtures/mcp/tools.ts";
import { stopSluices } from "../helpers/origins.ts";
import { BIN, startSluice, tempDir, type Running } from "../helpers/sluice.ts";

const T = 30_000;
const SECRET = "sluice-test-known-secret-mcp-http-77a1c0";
const seen: string[] = [];
let origin: ReturnType<typeof Bun.serve>;
let forward: Running;
const relays: { url: string; proc: ReturnType<typeof Bun.spawn> }[] = [];
let dir = "";
let config = "";

function serveMcp(json: boolean) {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      // Stateless: a server and a transport per request (the SDK's pattern for it).
      const server = testServer((tool) => seen.push(tool));
      const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: json });
      await server.connect(transport);
      return transport.handleRequest(req);
    },
  });
}
let jsonOrigin: ReturnType<typeof Bun.serve>;

async function relay(upstream: string): Promise<string> {
  const proc = Bun.spawn([BIN, "mcp", "proxy", "--config", config, "--upstream", upstream, "--listen", "127.0.0.1:0", "--via", forward.proxyUrl, "--name", "http-test"], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home"), SLUICE_TEST_SECRET: SECRET },
  });
  const reader = proc.stderr.getReader();
  let text = "";
  for (;;) {
    const m = /listening on (http:\/\/\S+)/.exec(text);
    if (m) {
      relays.push({ url: m[1]!, proc });
      return m[1]!;
    }
    const { value, done } = await reader.read();
    if (done) throw new Error(`sluice mcp proxy ended: ${text}`);
    text += new TextDecoder().decode(value);
  }
}

beforeAll(async () => {
  origin = serveMcp(false);
  jsonOrigin = serveMcp(true);
  dir = tempDir("sluice-mcp-http-");
  config = join(dir, "sluice.yaml");
  const yaml = `version: 1
proxy: { listen: "127.0.0.1:0", require_agent: false }
admin: { listen: "127.0.0.1:0" }
egress:
  allow: ["127.0.0.1"]
  ports: { http: ["1-65535"] }
  trusted_cidrs: [127.0.0.1/32]
dlp:
  known_secrets: { env: [SLUICE_TEST_SECRET] }
# The MCP relay judges these servers message by message (a poisoned tool withheld, not the list refused whole).
injection:
  exempt_hosts: ["127.0.0.1:${origin.port}", "127.0.0.1:${jsonOrigin.port}"]
mcp:
  baselines_file: ${JSON.stringify(join(dir, "pins.sqlite"))}
  servers: [{ name: http-test, hosts: ["127.0.0.1:${origin.port}", "127.0.0.1:${jsonOrigin.port}"] }]
`;
  writeFileSync(config, yaml);
  forward = await startSluice(yaml, { dir, env: { SLUICE_TEST_SECRET: SECRET } });
}, T);

afterAll(async () => {
  for (const r of relays) r.proc.kill();
  await stopSluices(forward);
  origin?.stop(true);
  jsonOrigin?.stop(true);
});


describe("sluice mcp proxy --upstream (Streamable HTTP), the SDK client and server", () => {
  for (const [label, json] of [["event-stream answers", false], ["JSON answers", true]] as const) {
    test(
      `${label}: clean tools pass, a poisoned tool is withheld, a secret and an injected result are refused`,
      async () => {
        const url = await relay(`http://127.0.0.1:${(json ? jsonOrigin : origin).port}/mcp`);
        const client = new Client({ name: "sluice-test-client", version: "1.0.0" });
        await client.connect(new StreamableHTTPClientTransport(new URL(url)));
        try {
          expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(["answer", "echo"]);
          expect(text(await client.callTool({ name: "echo", arguments: { text: "over http" } }))).toBe("over http");
          const before = seen.length;
          expect(await refusal(client.callTool({ name: "echo", arguments: { text: `key ${SECRET}` } }))).toMatchObject({ code: -32001, sluice: { rule: "dlp.known-secret" } });
          expect(seen.length).toBe(before);
          expect((await refusal(client.callTool({ name: "answer", arguments: { q: "x" } }))).sluice.reason).toBe("injection_detected");
          expect((await refusal(client.callTool({ name: "add", arguments: { a: 1, b: 2 } }))).sluice.rule).toBe("mcp.tool-withheld");
        } finally {
          await client.close();
        }
        // The upstream requests went through the forward proxy, recorded there.
        const port = (json ? jsonOrigin : origin).port;
        expect(await forward.waitForLine((l) => l.kind === "http" && l.port === port, 10_000)).toMatchObject({ method: "POST", verdict: "allow" });
      },
      T,
    );
  }
});
