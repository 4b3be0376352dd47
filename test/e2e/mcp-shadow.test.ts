/**
 * Shadow MCP through dist/sluice: MCP JSON-RPC sent over HTTP to a host no mcp.servers entry
 * names is refused (mcp.shadow: block, the default) or recorded (warn); to a listed server, and
 * JSON that is not MCP, it passes. Origins on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { stopSluices } from "../helpers/origins.ts";
import { startSluice, type Running } from "../helpers/sluice.ts";

const T = 30_000;
let listed: ReturnType<typeof Bun.serve>;
let other: ReturnType<typeof Bun.serve>;
let blocking: Running;
let warning: Running;
const seen: string[] = [];

const serve = () =>
  Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      seen.push(`${new URL(req.url).port}${new URL(req.url).pathname}`);
      await req.text();
      return Response.json({ jsonrpc: "2.0", id: 1, result: {} });
    },
  });

const config = (shadow: string) => `version: 1
proxy: { listen: "127.0.0.1:0", require_agent: false }
admin: { listen: "127.0.0.1:0" }
egress:
  allow: ["127.0.0.1"]
  ports: { http: ["1-65535"] }
  trusted_cidrs: [127.0.0.1/32]
mcp:
  shadow: ${shadow}
  servers: [{ name: approved, hosts: ["127.0.0.1:${listed.port}"] }]
`;

beforeAll(async () => {
  listed = serve();
  other = serve();
  [blocking, warning] = await Promise.all([startSluice(config("block")), startSluice(config("warn"))]);
}, T);

afterAll(async () => {
  await stopSluices(blocking, warning);
  listed?.stop(true);
  other?.stop(true);
});

const post = (via: Running, port: number, path: string, body: unknown) =>
  fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" }, proxy: via.proxyUrl } as RequestInit);
const initialize = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "agent", version: "1" } } };

describe("shadow MCP over HTTP", () => {
  test(
    "an MCP message to a host no mcp.servers entry names is refused; to a listed one, and plain JSON-RPC that is not MCP, it passes",
    async () => {
      const refused = await post(blocking, other.port!, "/mcp-shadow", initialize);
      expect(refused.status).toBe(403);
      expect(refused.headers.get("x-sluice-rule")).toBe("mcp.shadow-server");
      expect(await refused.json()).toMatchObject({ rule: "mcp.shadow-server", reason: "shadow_mcp" });
      expect(seen).not.toContain(`${other.port}/mcp-shadow`);
      // A batch with a tools/call in it is MCP too.
      const batch = await post(blocking, other.port!, "/mcp-batch", [{ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "x", arguments: {} } }]);
      expect(batch.status).toBe(403);
      expect((await post(blocking, listed.port!, "/mcp-listed", initialize)).status).toBe(200);
      expect((await post(blocking, other.port!, "/rpc", { jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] })).status).toBe(200);
      expect(await blocking.waitForLine((l) => l.kind === "http" && l.path === "/mcp-shadow")).toMatchObject({ verdict: "block", rule: "mcp.shadow-server" });
    },
    T,
  );

  test(
    "mcp.shadow: warn passes it and records it",
    async () => {
      expect((await post(warning, other.port!, "/mcp-warned", initialize)).status).toBe(200);
      expect(seen).toContain(`${other.port}/mcp-warned`);
      const rec = await warning.waitForLine((l) => l.kind === "http" && l.path === "/mcp-warned");
      expect(rec).toMatchObject({ verdict: "warn", rule: "mcp.shadow-server", reason: "shadow_mcp" });
    },
    T,
  );
});
