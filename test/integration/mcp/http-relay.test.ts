/**
 * The MCP Streamable HTTP relay (mcp/http.ts) against a scripted server that also plays the
 * forward proxy (requests arrive in absolute form): what the review of the transport found,
 * each as a regression test; the answer deadline (mcp.answer_timeout) against a server that
 * never answers or stalls mid-stream; the session table and the event ids the relay gives.
 * Loopback only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startHttpRelay, type HttpRelay } from "../../../src/mcp/http.ts";
import { McpSession, type McpVerdict } from "../../../src/mcp/session.ts";

const ok = (id: unknown) => JSON.stringify({ jsonrpc: "2.0", id, result: { ok: id } });
const note = (text: string) => JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: text } });
const targetHits: string[] = [];
/** What the scripted server received: mode, method, session id and Last-Event-ID of each request. */
const received: { mode: string; method: string; session: string | null; lastEventId: string | null; id?: unknown }[] = [];
let sessionCount = 0;
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
      const m = body ? (JSON.parse(body) as { id?: unknown; method?: string; params?: { requestId?: unknown } } | { id: unknown }[]) : null;
      const id = m && !Array.isArray(m) ? m.id : 1;
      const method = req.method === "GET" ? "GET" : m && !Array.isArray(m) ? (m.method ?? "(response)") : "(batch)";
      received.push({ mode, method, session: req.headers.get("mcp-session-id"), lastEventId: req.headers.get("last-event-id"), ...(method === "notifications/cancelled" && m && !Array.isArray(m) ? { id: m.params?.requestId } : {}) });
      // A notification (a cancellation among them) is taken in whatever the mode.
      if (m && !Array.isArray(m) && m.id === undefined) return new Response(null, { status: 202 });
      if (req.method === "DELETE") return new Response(null, { status: 200 });
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
        case "hang":
          // Takes the POST and never answers.
          return new Promise<Response>(() => {});
        case "stall":
          // Opens the answer's event stream, says something, then nothing more.
          return new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode(`: keep-alive\n\ndata: ${note("working")}\n\n`)) }), { headers: { "content-type": "text/event-stream" } });
        case "sessions":
        case "rotate":
        case "late": {
          // A server with sessions: an initialize opens one; "rotate" hands out a new id on every answer.
          const opens = method === "initialize" || mode === "rotate";
          const headers = { "content-type": "application/json", ...(opens ? { "mcp-session-id": `s${++sessionCount}` } : {}) };
          if (req.method === "GET" && mode === "late") {
            // One event now, the next well after the relay's deadline: a stream that owes nothing may stay open.
            const enc = new TextEncoder();
            return new Response(new ReadableStream({ start: (c) => (c.enqueue(enc.encode(`data: ${note("now")}\n\n`)), setTimeout(() => (c.enqueue(enc.encode(`data: ${note("later")}\n\n`)), c.close()), 600)) }), { headers: { "content-type": "text/event-stream" } });
          }
          if (req.method === "GET") {
            const events = `id: ev-1\nevent: message\ndata: ${note("one")}\n\nid: not a token\nevent: not a token\ndata: ${note("two")}\n\n`;
            return new Response(events, { headers: { "content-type": "text/event-stream" } });
          }
          return new Response(ok(id), { headers });
        }
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

function relay(mode: string, options: { answerTimeout?: number; maxSessions?: number; records?: McpVerdict[] } = {}): string {
  const r = startHttpRelay({
    listen: { hostname: "127.0.0.1", port: 0 },
    upstream: new URL(`http://127.0.0.1:${upstream.port}/${mode}`),
    via: `http://127.0.0.1:${upstream.port}`,
    headers: [["X-Api-Key", "operator-key"]],
    maxMessage: MAX,
    answerTimeout: options.answerTimeout ?? 10_000,
    ...(options.maxSessions !== undefined ? { maxSessions: options.maxSessions } : {}),
    newSession: () => new McpSession(() => ({ dlp: null, injection: null, audit: false })),
    emit: (out) => options.records?.push(...out.records),
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

type Answer = { id: unknown; result?: unknown; error?: { code: number; message: string; data: { sluice: { rule: string; reason: string; detail?: string } } } };
const until = async (f: () => boolean) => {
  while (!f()) await Bun.sleep(10);
};

describe("MCP HTTP relay: mcp.answer_timeout", () => {
  test(
    "a server that takes the POST and never answers: each request gets -32001 naming the timeout, one record each, and a cancellation goes to the server",
    async () => {
      const records: McpVerdict[] = [];
      const url = relay("hang", { answerTimeout: 300, records });
      const started = performance.now();
      const r = await post(url, [{ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "slow", arguments: {} } }, ping(2)]);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(r.status).toBe(200);
      const answers = JSON.parse(r.text) as Answer[];
      expect(answers.map((a) => a.id).sort()).toEqual([1, 2]);
      for (const a of answers) expect(a.error).toMatchObject({ code: -32001, data: { sluice: { rule: "mcp.answer-timeout", reason: "timeout" } } });
      expect(answers[0]!.error!.data.sluice.detail).toContain("mcp.answer_timeout");
      const timedOut = records.filter((x) => x.rule === "mcp.answer-timeout");
      expect(timedOut.map((x) => x.method).sort()).toEqual(["ping", "tools/call"]);
      expect(timedOut.every((x) => x.verdict === "block" && x.reason === "timeout")).toBe(true);
      // The server is told to stop working on what nobody waits for any more (MCP "Cancellation").
      await until(() => received.filter((x) => x.mode === "hang" && x.method === "notifications/cancelled").length === 2);
      expect(received.filter((x) => x.mode === "hang" && x.method === "notifications/cancelled").map((x) => x.id).sort()).toEqual([1, 2]);
      // The ids are free again.
      const again = await post(url, ping(1));
      expect(again.text).not.toContain("already awaiting");
    },
    5000,
  );

  test(
    "a server that opens the answer's event stream and stalls: what was said passes, then the request gets -32001 and the stream ends",
    async () => {
      const records: McpVerdict[] = [];
      const r = await post(relay("stall", { answerTimeout: 300, records }), ping(3));
      expect(r.text).toContain(note("working"));
      const events = r.text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)) as Answer);
      expect(events.find((e) => e.id === 3)?.error).toMatchObject({ code: -32001, data: { sluice: { rule: "mcp.answer-timeout", reason: "timeout" } } });
      expect(records.filter((x) => x.rule === "mcp.answer-timeout")).toHaveLength(1);
    },
    5000,
  );

  test("a GET stream that owes nothing is not cut by the deadline", async () => {
    const url = relay("late", { answerTimeout: 200 });
    const init = await fetch(url, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: {} }), headers: { "content-type": "application/json" } });
    await init.text();
    const res = await fetch(url, { headers: { accept: "text/event-stream", "mcp-session-id": init.headers.get("mcp-session-id")! } });
    const text = await res.text();
    expect(text).toContain(note("now"));
    expect(text).toContain(note("later"));
  });
});

describe("MCP HTTP relay: the session table", () => {
  const open = async (url: string): Promise<string> => {
    const res = await fetch(url, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: {} }), headers: { "content-type": "application/json" } });
    await res.text();
    return res.headers.get("mcp-session-id")!;
  };
  const reached = (session: string) => received.filter((x) => x.session === session && x.method === "ping").length;

  test(
    "when full, the session used least recently is forgotten; its later requests get 404 and never reach the server",
    async () => {
      const records: McpVerdict[] = [];
      const url = relay("sessions", { maxSessions: 2, records });
      const a = await open(url);
      const b = await open(url);
      expect((await post(url, ping(1), { "mcp-session-id": a })).status).toBe(200);
      // a was used after b: a third session makes room by forgetting b.
      const c = await open(url);
      const before = reached(b);
      const late = await post(url, ping(2), { "mcp-session-id": b });
      expect(late.status).toBe(404);
      expect(JSON.parse(late.text)).toMatchObject({ error: { code: -32001, data: { sluice: { rule: "mcp.unknown-session" } } } });
      expect(reached(b)).toBe(before);
      expect(records.filter((r) => r.rule === "mcp.unknown-session")).toHaveLength(1);
      for (const s of [a, c]) expect(JSON.parse((await post(url, ping(3), { "mcp-session-id": s })).text)).toMatchObject({ id: 3, result: { ok: 3 } });
    },
    5000,
  );

  test("an id the relay never saw the server give is refused, and neither it nor a server's new id on a later answer evicts anyone", async () => {
    const url = relay("rotate", { maxSessions: 2 });
    const a = await open(url);
    const b = await open(url);
    // Every answer of this server carries a new id; only an initialize's answer opens a session.
    for (let i = 0; i < 3; i++) expect((await post(url, ping(i), { "mcp-session-id": a })).status).toBe(200);
    const before = received.length;
    for (const invented of ["s999", "made-up"]) expect((await post(url, ping(9), { "mcp-session-id": invented })).status).toBe(404);
    expect(received.length).toBe(before);
    for (const s of [a, b]) expect((await post(url, ping(10), { "mcp-session-id": s })).status).toBe(200);
  });

  test("a session the client ended (DELETE) is forgotten", async () => {
    const url = relay("sessions");
    const a = await open(url);
    expect((await fetch(url, { method: "DELETE", headers: { "mcp-session-id": a } })).status).toBe(200);
    expect((await post(url, ping(1), { "mcp-session-id": a })).status).toBe(404);
  });
});

describe("MCP HTTP relay: event ids", () => {
  const stream = async (url: string, session: string, lastEventId?: string) => {
    const res = await fetch(url, { headers: { accept: "text/event-stream", "mcp-session-id": session, ...(lastEventId !== undefined ? { "last-event-id": lastEventId } : {}) } });
    return { status: res.status, text: await res.text() };
  };
  const open = async (url: string): Promise<string> => {
    const res = await fetch(url, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: {} }), headers: { "content-type": "application/json" } });
    await res.text();
    return res.headers.get("mcp-session-id")!;
  };

  test("the server's event ids reach the client sealed to its session, and only plain tokens; an event type that is not one is dropped", async () => {
    const url = relay("sessions");
    const a = await open(url);
    const { text } = await stream(url, a);
    const ids = text.split("\n").filter((l) => l.startsWith("id: "));
    expect(ids).toHaveLength(1);
    expect(ids[0]).toMatch(/^id: ev-1\.[0-9a-f]{32}$/);
    expect(text).toContain("event: message\n");
    expect(text).not.toContain("not a token");
    expect(text).toContain(note("two"));
  });

  test("Last-Event-ID: the relay's id resumes its own session's stream (the server gets its own id); another session's, a forged or a bare one is refused before the server", async () => {
    const records: McpVerdict[] = [];
    const url = relay("sessions", { records });
    const a = await open(url);
    const b = await open(url);
    const token = /^id: (\S+)$/m.exec((await stream(url, a)).text)![1]!;
    const resumed = await stream(url, a, token);
    expect(resumed.status).toBe(200);
    expect(received.filter((x) => x.method === "GET" && x.session === a).map((x) => x.lastEventId)).toContain("ev-1");
    const before = received.length;
    const forged = `ev-1.${"0".repeat(32)}`;
    for (const [session, id] of [[b, token], [a, forged], [a, "ev-1"], [a, `${token}x`], [a, ""]] as const) {
      const r = await stream(url, session, id);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.text)).toMatchObject({ error: { code: -32001, data: { sluice: { rule: "mcp.bad-event-id" } } } });
    }
    expect(received.length).toBe(before);
    expect(records.filter((r) => r.rule === "mcp.bad-event-id")).toHaveLength(5);
  });
});
