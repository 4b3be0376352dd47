/**
 * The MCP Streamable HTTP relay (mcp/http.ts) against a scripted server that also plays the
 * forward proxy (requests arrive in absolute form): what the review of the transport found,
 * each as a regression test. Loopback only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startHttpRelay, type HttpRelay } from "../../../src/mcp/http.ts";
import { McpSession } from "../../../src/mcp/session.ts";

const ok = (id: unknown) => JSON.stringify({ jsonrpc: "2.0", id, result: { ok: id } });
const targetHits: string[] = [];
let target: ReturnType<typeof Bun.serve>;
let upstream: ReturnType<typeof Bun.serve>;
const relays: HttpRelay[] = [];
const MAX = 64 * 1024;

beforeAll(() => {
  target = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => (targetHits.push(req.url), new Response(ok(1), { headers: { "content-type": "application/json" } })) });
  upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const mode = new URL(req.url).pathname.slice(1);
      const body = await req.text();
      const m = body ? (JSON.parse(body) as { id?: unknown } | { id: unknown }[]) : null;
      const id = m && !Array.isArray(m) ? m.id : 1;
      switch (mode) {
        case "big":
          return Response.json({ jsonrpc: "2.0", id, result: { content: [{ type: "text", text: "A".repeat(MAX * 2) }] } });
        case "redirect":
          return new Response(null, { status: 307, headers: { location: `http://127.0.0.1:${target.port}/elsewhere` } });
        case "reset":
          return new Response(new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode(": hi\n\n")), setTimeout(() => c.error(new Error("boom")), 100)) }), { headers: { "content-type": "text/event-stream" } });
        case "mixed":
          return new Response(`data: ${ok(999)}\n\r\ndata: ${ok(id)}\n\n`, { headers: { "content-type": "text/event-stream" } });
        case "batch":
          return Response.json((m as { id: unknown }[]).map((x) => JSON.parse(ok(x.id))));
        default:
          return new Response(ok(id), { headers: { "content-type": "application/json" } });
      }
    },
  });
});
afterAll(() => {
  for (const r of relays) r.stop();
  upstream?.stop(true);
  target?.stop(true);
});

function relay(mode: string): string {
  const r = startHttpRelay({
    listen: { hostname: "127.0.0.1", port: 0 },
    upstream: new URL(`http://127.0.0.1:${upstream.port}/${mode}`),
    via: `http://127.0.0.1:${upstream.port}`,
    headers: [["X-Api-Key", "operator-key"]],
    maxMessage: MAX,
    newSession: () => new McpSession(() => ({ dlp: null, injection: null, audit: false })),
    emit: () => {},
  });
  relays.push(r);
  return r.url;
}
const post = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers } });
  return { status: res.status, text: await res.text() };
};
const ping = (id: number) => ({ jsonrpc: "2.0", id, method: "ping" });

describe("MCP HTTP relay: what the review found", () => {
  test("an answer over max_line is refused, not passed on", async () => {
    const r = await post(relay("big"), ping(1));
    expect(r.text.length).toBeLessThan(1000);
    expect(JSON.parse(r.text)).toMatchObject({ id: 1, error: { code: -32001, data: { sluice: { rule: "mcp.line-too-long" } } } });
  });

  test("a redirect is not followed (the operator's headers stay here); the request gets -32001", async () => {
    const r = await post(relay("redirect"), ping(1));
    expect(JSON.parse(r.text)).toMatchObject({ id: 1, error: { code: -32001 } });
    expect(targetHits).toEqual([]);
  });

  test("a stream that breaks answers what it owed, and the id is free again", async () => {
    const url = relay("reset");
    const first = await post(url, ping(1));
    expect(first.text).toContain('"code":-32001');
    const again = await post(url, ping(1));
    expect(again.text).not.toContain("already awaiting");
  });

  test("a blank line written CR LF after LF ends an event, as WHATWG says: the answer is read", async () => {
    const r = await post(relay("mixed"), ping(7));
    expect(r.text).toContain(ok(7));
  });

  test("a batch with a refused element gets sluice's answer beside the server's, as one batch", async () => {
    const r = await post(relay("batch"), [{ jsonrpc: "2.0", id: 1, method: "tools/call", params: {} }, ping(2)]);
    const answers = JSON.parse(r.text) as { id: number }[];
    expect(answers.map((a) => a.id).sort()).toEqual([1, 2]);
  });

  test("a body over max_line is refused with 413 before it is read whole", async () => {
    const res = await fetch(relay("plain"), { method: "POST", body: "x".repeat(MAX * 4), headers: { "content-type": "application/json" } });
    expect(res.status).toBe(413);
  });
});
