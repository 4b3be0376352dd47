/**
 * The MCP Streamable HTTP transport (MCP spec, "Transports"): sluice listens where the client
 * expects the server and relays each POST, GET and DELETE to the upstream server, every JSON-RPC
 * message judged by the session (session.ts) on the way, in JSON bodies and in event streams
 * alike. Upstream requests go through sluice's forward proxy (`via`), so the egress policy, the
 * guarded dialer and TLS interception apply to them as to any agent traffic.
 */
import type { Decision } from "../core/types.ts";
import type { McpOut, McpSession } from "./session.ts";

/** Request headers passed upstream; everything else stays here. */
const PASS_UP = ["accept", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id", "authorization"];
/** Response headers passed back to the client. */
const PASS_DOWN = ["content-type", "mcp-session-id", "mcp-protocol-version"];

export interface HttpRelayOptions {
  readonly listen: { readonly hostname: string; readonly port: number };
  readonly upstream: URL;
  /** sluice's forward proxy (http://host:port): the way out. */
  readonly via: string;
  /** Extra upstream headers (--header). */
  readonly headers: readonly (readonly [string, string])[];
  readonly maxMessage: number;
  /** A new session's judge (one per MCP session the server opens). */
  readonly newSession: () => McpSession;
  readonly emit: (out: McpOut) => void;
}

export interface HttpRelay {
  readonly url: string;
  stop(): void;
}

/** The ids of the requests in a JSON-RPC body (one message or a batch). */
function requestIds(body: string): unknown[] {
  try {
    const v = JSON.parse(body) as unknown;
    return (Array.isArray(v) ? v : [v]).filter((m) => typeof m === "object" && m !== null && "method" in m && "id" in m).map((m) => (m as { id: unknown }).id);
  } catch {
    return [];
  }
}

/** Why an upstream answer holds no JSON-RPC answer: sluice's forward proxy says so in its headers. */
function noAnswer(res: Response): Decision {
  const rule = res.headers.get("x-sluice-rule");
  if (rule !== null) return { verdict: "block", reasons: [{ rule, code: "upstream_error", detail: `sluice's forward proxy refused the exchange with the MCP server (${rule}, status ${res.status})` }] };
  return { verdict: "block", reasons: [{ rule: "mcp.no-answer", code: "upstream_error", detail: `the MCP server answered with status ${res.status} and no JSON-RPC answer` }] };
}

/** A body as text, read no further than `max` bytes: null when it is longer. */
async function boundedText(msg: Request | Response, max: number): Promise<string | null> {
  const declared = Number(msg.headers.get("content-length") ?? "0");
  if (declared > max) {
    await msg.body?.cancel().catch(() => {});
    return null;
  }
  if (msg.body === null) return "";
  const parts: Uint8Array[] = [];
  let size = 0;
  const reader = msg.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      return null;
    }
    parts.push(value);
  }
  return Buffer.concat(parts).toString("utf8");
}

/** Answers (each a message or a batch, as JSON text) as one JSON body: a single message, or one batch of them all. */
function answerBody(answers: readonly string[]): string {
  const all = answers.flatMap((a) => {
    const v = JSON.parse(a) as unknown;
    return Array.isArray(v) ? v : [v];
  });
  return JSON.stringify(all.length === 1 ? all[0] : all);
}

const jsonRpcError = (message: string, rule: string, reason: string) => JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32001, message, data: { sluice: { rule, reason } } } });

/** MCP sessions kept at once (the oldest goes first). */
const MAX_SESSIONS = 1024;

export function startHttpRelay(o: HttpRelayOptions): HttpRelay {
  // One judge per MCP session, keyed by the id the *server* gave (Mcp-Session-Id on its answer):
  // a client cannot make entries by inventing ids. Requests without an id (a stateless server)
  // share one judge; a request with an id the relay does not know gets one of its own.
  const sessions = new Map<string, McpSession>();
  const stateless = o.newSession();
  const sessionFor = (id: string | null): McpSession => (id === null ? stateless : (sessions.get(id) ?? o.newSession()));
  const remember = (res: Response, session: McpSession) => {
    const id = res.headers.get("mcp-session-id");
    if (id === null || sessions.has(id)) return;
    sessions.set(id, session);
    if (sessions.size > MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
  };
  const upHeaders = (req: Request): Headers => {
    const h = new Headers();
    for (const name of PASS_UP) {
      const v = req.headers.get(name);
      if (v !== null) h.set(name, v);
    }
    for (const [k, v] of o.headers) h.set(k, v);
    return h;
  };
  const downHeaders = (res: Response, type?: string): Headers => {
    const h = new Headers();
    for (const name of PASS_DOWN) {
      const v = res.headers.get(name);
      if (v !== null) h.set(name, v);
    }
    if (type) h.set("content-type", type);
    return h;
  };
  /** Replies the session owes the server (refusals of its requests) go back as their own POSTs. */
  const toServer = (lines: readonly string[], req: Request) => {
    for (const line of lines) {
      void fetch(o.upstream, { method: "POST", body: line, headers: upHeaders(req), proxy: o.via, redirect: "manual" } as RequestInit).then(
        (r) => r.body?.cancel(),
        () => {},
      );
    }
  };

  /** An upstream event stream, judged event by event, as an event stream to the client. */
  const judgedStream = (upstream: Response, session: McpSession, req: Request, ids: readonly unknown[], refused: readonly string[]): ReadableStream<Uint8Array> => {
    const reader = upstream.body!.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buf = "";
    return new ReadableStream<Uint8Array>({
      start(controller) {
        // Sluice's answers to the refused elements of the batch come first.
        if (refused.length > 0) controller.enqueue(encoder.encode(refused.map((l) => `data: ${l}\n\n`).join("")));
      },
      async pull(controller) {
        for (;;) {
          // WHATWG HTML §9.2.6: events end at a blank line; lines end in CRLF, LF or CR (in any
          // mix: they were made LF as they came in).
          const at = buf.indexOf("\n\n");
          if (at >= 0) {
            const event = buf.slice(0, at);
            buf = buf.slice(at + 2);
            const data: string[] = [];
            let id: string | null = null;
            let type: string | null = null;
            for (const line of event.split("\n")) {
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              const value = colon < 0 ? "" : line.slice(line.charCodeAt(colon + 1) === 0x20 ? colon + 2 : colon + 1);
              if (field === "data") data.push(value);
              else if (field === "id") id = value;
              else if (field === "event") type = value;
            }
            if (data.length === 0) continue;
            const out = session.fromServer(data.join("\n"));
            o.emit(out);
            toServer(out.toServer, req);
            if (out.toClient.length === 0) continue;
            // The event's id goes back as the client's Last-Event-ID: passed only when it is a plain token.
            const safeId = id !== null && /^[A-Za-z0-9_.:-]{1,128}$/.test(id) ? `id: ${id}\n` : "";
            const safeType = type !== null && /^[A-Za-z0-9_.:-]{1,64}$/.test(type) ? `event: ${type}\n` : "";
            controller.enqueue(encoder.encode(`${safeType}${safeId}${out.toClient.map((l) => `data: ${l}`).join("\n")}\n\n`));
            return;
          }
          if (buf.length > o.maxMessage) {
            // No more of one event is held: the stream ends, and what it owed is answered.
            const left = session.abandon(ids, { verdict: "block", reasons: [{ rule: "mcp.line-too-long", code: "body_too_large", detail: `an event longer than ${o.maxMessage} bytes; stream ended` }] });
            o.emit({ ...left, records: [...left.records, { direction: "server", method: "(session)", verdict: "block", rule: "mcp.line-too-long", reason: "body_too_large", detail: `an event longer than ${o.maxMessage} bytes; stream ended` }] });
            if (left.toClient.length > 0) controller.enqueue(encoder.encode(left.toClient.map((l) => `data: ${l}\n\n`).join("")));
            await reader.cancel().catch(() => {});
            controller.close();
            return;
          }
          let read: { done: boolean; value?: Uint8Array };
          try {
            read = await reader.read();
          } catch {
            // The upstream stream broke: what it owed is answered as below, then the stream ends.
            read = { done: true, value: undefined };
          }
          const { value, done } = read;
          if (done) {
            // A stream that ended without the answers it owed (refused on the way, cut): they are answered here.
            const left = session.abandon(ids, noAnswer(upstream));
            o.emit(left);
            if (left.toClient.length > 0) controller.enqueue(encoder.encode(left.toClient.map((l) => `data: ${l}\n\n`).join("")));
            controller.close();
            return;
          }
          // CRLF and CR made LF; a CR at the very end waits, it may be the first half of a CRLF.
          buf = (buf + decoder.decode(value, { stream: true })).replace(/\r\n|\r(?!$)/g, "\n");
        }
      },
      cancel: () => reader.cancel(),
    });
  };

  const server = Bun.serve({
    hostname: o.listen.hostname,
    port: o.listen.port,
    async fetch(req) {
      if (req.method !== "POST" && req.method !== "GET" && req.method !== "DELETE") return new Response(null, { status: 405, headers: { allow: "GET, POST, DELETE" } });
      let session = sessionFor(req.headers.get("mcp-session-id"));
      let upstream: Response;
      let ids: unknown[] = [];
      /** Sluice's own answers to the refused elements of a batch whose others went upstream. */
      let refused: string[] = [];
      try {
        if (req.method === "POST") {
          const body = await boundedText(req, o.maxMessage);
          if (body === null) return new Response(jsonRpcError(`a message over ${o.maxMessage} bytes`, "mcp.line-too-long", "body_too_large"), { status: 413, headers: { "content-type": "application/json" } });
          // An initialize opens a session of its own (the server may give it an id).
          if (req.headers.get("mcp-session-id") === null && /"method"\s*:\s*"initialize"/.test(body)) session = o.newSession();
          const out = session.fromClient(body);
          o.emit(out);
          if (out.toServer.length === 0) {
            // Refused here: the client gets the answer sluice wrote, the server nothing.
            if (out.toClient.length === 0) return new Response(null, { status: 202 });
            return new Response(answerBody(out.toClient), { status: 200, headers: { "content-type": "application/json" } });
          }
          ids = requestIds(out.toServer[0]!);
          refused = out.toClient;
          upstream = await fetch(o.upstream, { method: "POST", body: out.toServer[0], headers: upHeaders(req), proxy: o.via, redirect: "manual" } as RequestInit);
        } else if (req.method === "GET" || req.method === "DELETE") {
          upstream = await fetch(o.upstream, { method: req.method, headers: upHeaders(req), proxy: o.via, redirect: "manual" } as RequestInit);
        } else {
          return new Response(null, { status: 405, headers: { allow: "GET, POST, DELETE" } });
        }
      } catch (err) {
        session.abandon(ids, { verdict: "block", reasons: [{ rule: "mcp.upstream-unreachable", code: "upstream_unreachable", detail: String(err) }] });
        return new Response(jsonRpcError(`the MCP server could not be reached: ${err instanceof Error ? err.message : String(err)}`, "mcp.upstream-unreachable", "upstream_unreachable"), { status: 502, headers: { "content-type": "application/json" } });
      }
      remember(upstream, session);
      const type = upstream.headers.get("content-type") ?? "";
      if (type.startsWith("text/event-stream") && upstream.body && upstream.ok) return new Response(judgedStream(upstream, session, req, ids, refused), { status: upstream.status, headers: downHeaders(upstream, "text/event-stream") });
      if (type.startsWith("application/json") && upstream.ok) {
        const text = await boundedText(upstream, o.maxMessage);
        const out = text === null ? { toServer: [], toClient: [], records: [] } : session.fromServer(text);
        o.emit(out);
        toServer(out.toServer, req);
        const why: Decision = text === null ? { verdict: "block", reasons: [{ rule: "mcp.line-too-long", code: "body_too_large", detail: `the server's answer is over ${o.maxMessage} bytes (mcp.max_line)` }] } : noAnswer(upstream);
        const left = session.abandon(ids, why);
        o.emit(left);
        const answers = [...refused, ...out.toClient, ...left.toClient];
        if (answers.length === 0) return new Response(null, { status: 202, headers: downHeaders(upstream) });
        return new Response(answerBody(answers), { status: 200, headers: downHeaders(upstream, "application/json") });
      }
      if (ids.length > 0) {
        // A refusal, a redirect or an error with no JSON-RPC answer in it: the requests get one
        // from sluice (a 404, the server's "unknown session", keeps its status for the client).
        await upstream.body?.cancel().catch(() => {});
        const left = session.abandon(ids, noAnswer(upstream));
        o.emit(left);
        const answers = [...refused, ...left.toClient];
        if (answers.length > 0 && upstream.status !== 404) return new Response(answerBody(answers), { status: 200, headers: downHeaders(upstream, "application/json") });
      }
      // 202, 204, 404 (an unknown session), 405 ...: the status, no body passed on unjudged.
      await upstream.body?.cancel();
      return new Response(null, { status: upstream.status, headers: downHeaders(upstream) });
    },
  });
  return { url: `http://${o.listen.hostname.includes(":") ? `[${o.listen.hostname}]` : o.listen.hostname}:${server.port}/mcp`, stop: () => server.stop(true) };
}
