/**
 * The MCP Streamable HTTP transport (MCP spec, "Transports"): sluice listens where the client
 * expects the server and relays each POST, GET and DELETE to the upstream server, every JSON-RPC
 * message judged by the session (session.ts) on the way, in JSON bodies and in event streams
 * alike. Upstream requests go through sluice's forward proxy (`via`), so the egress policy, the
 * guarded dialer and TLS interception apply to them as to any agent traffic.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { ReasonCode } from "../core/reasons.ts";
import type { Decision } from "../core/types.ts";
import { answerTimeout, type McpOut, type McpSession } from "./session.ts";

/** Request headers passed upstream; everything else stays here (Last-Event-ID goes as the server's own id: see eventIds). */
const PASS_UP = ["accept", "content-type", "mcp-session-id", "mcp-protocol-version", "authorization"];
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
  /** mcp.answer_timeout (ms): how long the requests of one POST wait for their answers (and a POST or DELETE for its response head). */
  readonly answerTimeout: number;
  /** MCP sessions kept at once (default 1024): past it, the one used least recently is forgotten. */
  readonly maxSessions?: number;
  /** A new session's judge (one per MCP session the server opens). */
  readonly newSession: () => McpSession;
  readonly emit: (out: McpOut) => void;
}

/** One relayed request: its session, what it owes the client, and its deadline. */
interface Exchange {
  readonly req: Request;
  readonly session: McpSession;
  /** The session id its events are bound to (null: a server without sessions). */
  readonly sid: string | null;
  /** The ids of the requests sent upstream, each owed an answer. */
  readonly ids: readonly unknown[];
  /** Sluice's own answers to the refused elements of a batch whose others went upstream. */
  readonly refused: readonly string[];
  /** mcp.answer_timeout's decision once it has passed, else null. */
  readonly timedOut: () => Decision | null;
  /** The exchange is over: its deadline is cleared. */
  readonly end: () => void;
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

/** MCP sessions kept at once (the one used least recently goes first). */
const MAX_SESSIONS = 1024;
/** Hex digits of the MAC in an event id the relay gives (128 bits). */
const MAC_HEX = 32;

/**
 * Event ids as the client sees them: the server's id and a MAC binding it to the session whose
 * stream carried it, under a key of this relay's own. A Last-Event-ID (MCP spec, "Resumability
 * and Redelivery") is passed upstream only as the server's id, and only when the relay gave it
 * for the session it comes with: a client cannot have the server replay another session's
 * stream, nor send it an id of its own making. A restart makes a new key (old ids are refused).
 */
function eventIds() {
  const key = randomBytes(32);
  const mac = (sid: string | null, id: string) => createHmac("sha256", key).update(`${sid ?? ""}\u0000${id}`).digest("hex").slice(0, MAC_HEX);
  return {
    seal: (sid: string | null, id: string) => `${id}.${mac(sid, id)}`,
    /** The server's id in `token`, or null when this relay did not give it for `sid`. */
    open(sid: string | null, token: string): string | null {
      const id = token.slice(0, -(MAC_HEX + 1));
      if (id.length === 0 || token[id.length] !== ".") return null;
      const given = Buffer.from(token.slice(id.length + 1));
      const want = Buffer.from(mac(sid, id));
      return given.length === want.length && timingSafeEqual(given, want) ? id : null;
    },
  };
}

export function startHttpRelay(o: HttpRelayOptions): HttpRelay {
  // One judge per MCP session, keyed by the id the *server* gave (Mcp-Session-Id on its answer to
  // an initialize): neither a client inventing ids nor a server handing out new ones on other
  // answers can make entries. Requests without an id (a stateless server) share one judge.
  const sessions = new Map<string, McpSession>();
  const stateless = o.newSession();
  const maxSessions = o.maxSessions ?? MAX_SESSIONS;
  /** The judge of the session a request names; undefined when the relay does not know the id. */
  const sessionFor = (id: string | null): McpSession | undefined => {
    if (id === null) return stateless;
    const session = sessions.get(id);
    if (session !== undefined) {
      // Most recently used last: when the table is full, the session idle longest goes.
      sessions.delete(id);
      sessions.set(id, session);
    }
    return session;
  };
  const remember = (res: Response, session: McpSession) => {
    const id = res.headers.get("mcp-session-id");
    if (id === null || sessions.has(id)) return;
    sessions.set(id, session);
    if (sessions.size > maxSessions) sessions.delete(sessions.keys().next().value!);
  };
  const events = eventIds();
  /** A request refused by the relay itself (or one the server failed), recorded, with a JSON-RPC error (id null) as its body. */
  const refuse = (status: number, rule: string, reason: ReasonCode, detail: string, direction: "client" | "server" = "client"): Response => {
    o.emit({ toServer: [], toClient: [], records: [{ direction, method: "(session)", verdict: "block", rule, reason, detail }] });
    return new Response(jsonRpcError(detail, rule, reason), { status, headers: { "content-type": "application/json" } });
  };
  const upHeaders = (req: Request, lastEventId: string | null = null): Headers => {
    const h = new Headers();
    for (const name of PASS_UP) {
      const v = req.headers.get(name);
      if (v !== null) h.set(name, v);
    }
    if (lastEventId !== null) h.set("last-event-id", lastEventId);
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
      void fetch(o.upstream, { method: "POST", body: line, headers: upHeaders(req), proxy: o.via, redirect: "manual", signal: AbortSignal.timeout(o.answerTimeout) } as RequestInit).then(
        (r) => r.body?.cancel(),
        () => {},
      );
    }
  };

  /** An upstream event stream, judged event by event, as an event stream to the client. */
  const judgedStream = (upstream: Response, ex: Exchange): ReadableStream<Uint8Array> => {
    const { session, req, ids } = ex;
    const reader = upstream.body!.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buf = "";
    /** What the stream still owes is answered (`why`), then it ends. */
    const finish = (controller: ReadableStreamDefaultController<Uint8Array>, why: Decision) => {
      const left = session.abandon(ids, ex.timedOut() ?? why);
      o.emit(left);
      toServer(left.toServer, req);
      if (left.toClient.length > 0) controller.enqueue(encoder.encode(left.toClient.map((l) => `data: ${l}\n\n`).join("")));
      ex.end();
      controller.close();
    };
    return new ReadableStream<Uint8Array>({
      start(controller) {
        // Sluice's answers to the refused elements of the batch come first.
        if (ex.refused.length > 0) controller.enqueue(encoder.encode(ex.refused.map((l) => `data: ${l}\n\n`).join("")));
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
            // The event's id comes back as the client's Last-Event-ID: passed only when it is a
            // plain token, sealed to this session (eventIds).
            const safeId = id !== null && /^[A-Za-z0-9_.:-]{1,128}$/.test(id) ? `id: ${events.seal(ex.sid, id)}\n` : "";
            const safeType = type !== null && /^[A-Za-z0-9_.:-]{1,64}$/.test(type) ? `event: ${type}\n` : "";
            controller.enqueue(encoder.encode(`${safeType}${safeId}${out.toClient.map((l) => `data: ${l}`).join("\n")}\n\n`));
            return;
          }
          if (buf.length > o.maxMessage) {
            // No more of one event is held: the stream ends, and what it owed is answered.
            const detail = `an event longer than ${o.maxMessage} bytes; stream ended`;
            o.emit({ toServer: [], toClient: [], records: [{ direction: "server", method: "(session)", verdict: "block", rule: "mcp.line-too-long", reason: "body_too_large", detail }] });
            await reader.cancel().catch(() => {});
            finish(controller, { verdict: "block", reasons: [{ rule: "mcp.line-too-long", code: "body_too_large", detail }] });
            return;
          }
          let read: { done: boolean; value?: Uint8Array };
          try {
            read = await reader.read();
          } catch {
            // The upstream stream broke (or mcp.answer_timeout passed): what it owed is answered, then the stream ends.
            read = { done: true, value: undefined };
          }
          const { value, done } = read;
          if (done) {
            // A stream that ended without the answers it owed (refused on the way, cut): they are answered here.
            finish(controller, noAnswer(upstream));
            return;
          }
          // CRLF and CR made LF; a CR at the very end waits, it may be the first half of a CRLF.
          buf = (buf + decoder.decode(value, { stream: true })).replace(/\r\n|\r(?!$)/g, "\n");
        }
      },
      cancel: () => {
        ex.end();
        return reader.cancel();
      },
    });
  };

  /** The server's answer to a request that went upstream, judged, as the client's answer. */
  const answer = async (upstream: Response, ex: Exchange): Promise<Response> => {
    const { session, req, ids, refused } = ex;
    const type = upstream.headers.get("content-type") ?? "";
    if (type.startsWith("text/event-stream") && upstream.body && upstream.ok) return new Response(judgedStream(upstream, ex), { status: upstream.status, headers: downHeaders(upstream, "text/event-stream") });
    if (type.startsWith("application/json") && upstream.ok) {
      // undefined: the body broke off (or mcp.answer_timeout passed while it was read).
      const text = await boundedText(upstream, o.maxMessage).catch(() => undefined);
      ex.end();
      const out = typeof text === "string" ? session.fromServer(text) : { toServer: [], toClient: [], records: [] };
      o.emit(out);
      const why: Decision = ex.timedOut() ?? (text === null ? { verdict: "block", reasons: [{ rule: "mcp.line-too-long", code: "body_too_large", detail: `the server's answer is over ${o.maxMessage} bytes (mcp.max_line)` }] } : noAnswer(upstream));
      const left = session.abandon(ids, why);
      o.emit(left);
      toServer([...out.toServer, ...left.toServer], req);
      const answers = [...refused, ...out.toClient, ...left.toClient];
      if (answers.length === 0) return new Response(null, { status: 202, headers: downHeaders(upstream) });
      return new Response(answerBody(answers), { status: 200, headers: downHeaders(upstream, "application/json") });
    }
    ex.end();
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
    await upstream.body?.cancel().catch(() => {});
    return new Response(null, { status: upstream.status, headers: downHeaders(upstream) });
  };

  const server = Bun.serve({
    hostname: o.listen.hostname,
    port: o.listen.port,
    async fetch(req) {
      if (req.method !== "POST" && req.method !== "GET" && req.method !== "DELETE") return new Response(null, { status: 405, headers: { allow: "GET, POST, DELETE" } });
      const named = req.headers.get("mcp-session-id");
      let session = sessionFor(named);
      // A session the relay does not know (never opened through it, or forgotten to make room):
      // ended, as far as the client is concerned (MCP spec, "Session Management": 404, and the
      // client starts a new one). A fresh judge would not know what that session withheld.
      if (session === undefined) return refuse(404, "mcp.unknown-session", "malformed_request", "no MCP session of that id is open through sluice (never opened, or ended); start a new one with initialize");
      const last = req.headers.get("last-event-id");
      const resumeFrom = last === null ? null : events.open(named, last);
      if (last !== null && resumeFrom === null) return refuse(400, "mcp.bad-event-id", "malformed_request", "Last-Event-ID is not an event id sluice gave this session's streams");
      let body: string | undefined;
      let ids: unknown[] = [];
      let refused: string[] = [];
      let opening = false;
      if (req.method === "POST") {
        const text = await boundedText(req, o.maxMessage);
        if (text === null) return refuse(413, "mcp.line-too-long", "body_too_large", `a message over ${o.maxMessage} bytes`);
        // An initialize opens a session of its own (the server may give it an id).
        opening = named === null && /"method"\s*:\s*"initialize"/.test(text);
        if (opening) session = o.newSession();
        const out = session.fromClient(text);
        o.emit(out);
        if (out.toServer.length === 0) {
          // Refused here: the client gets the answer sluice wrote, the server nothing.
          if (out.toClient.length === 0) return new Response(null, { status: 202 });
          return new Response(answerBody(out.toClient), { status: 200, headers: { "content-type": "application/json" } });
        }
        body = out.toServer[0]!;
        ids = requestIds(body);
        refused = out.toClient;
      }
      // mcp.answer_timeout: the answers to the requests sent must come within it (a server that
      // accepts a POST and never answers, or stalls mid-stream, must not hold the client), and a
      // POST's or DELETE's response head too. A GET stream owes nothing: the server may hold it
      // open, and even its head back, until it has something to say.
      const deadline = new AbortController();
      const timer = req.method === "GET" ? undefined : setTimeout(() => deadline.abort(), o.answerTimeout);
      const ex: Exchange = {
        req,
        session,
        sid: named,
        ids,
        refused,
        timedOut: () => (deadline.signal.aborted ? answerTimeout(o.answerTimeout) : null),
        end: () => clearTimeout(timer),
      };
      let upstream: Response;
      try {
        upstream = await fetch(o.upstream, { method: req.method, body, headers: upHeaders(req, resumeFrom), proxy: o.via, redirect: "manual", signal: deadline.signal } as RequestInit);
      } catch (err) {
        ex.end();
        const why = ex.timedOut() ?? { verdict: "block", reasons: [{ rule: "mcp.upstream-unreachable", code: "upstream_unreachable", detail: `the MCP server could not be reached: ${err instanceof Error ? err.message : String(err)}` }] };
        const left = session.abandon(ids, why);
        o.emit(left);
        toServer(left.toServer, req);
        const answers = [...refused, ...left.toClient];
        if (answers.length > 0) return new Response(answerBody(answers), { status: 200, headers: { "content-type": "application/json" } });
        const r = why.reasons[0]!;
        return refuse(ex.timedOut() ? 504 : 502, r.rule, r.code, r.detail, "server");
      }
      if (opening) remember(upstream, session);
      // A session the client ended (MCP spec, "Session Management": DELETE) is forgotten here too.
      if (req.method === "DELETE" && upstream.ok && named !== null) sessions.delete(named);
      // The events of a stream are bound to the session its client will name when it resumes.
      const sid = named ?? (opening ? upstream.headers.get("mcp-session-id") : null);
      return answer(upstream, { ...ex, sid });
    },
  });
  return { url: `http://${o.listen.hostname.includes(":") ? `[${o.listen.hostname}]` : o.listen.hostname}:${server.port}/mcp`, stop: () => server.stop(true) };
}
