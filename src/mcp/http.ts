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
  /** One session per MCP session id (the client's Mcp-Session-Id), or per connection without one. */
  readonly session: (id: string | null) => McpSession;
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

const jsonRpcError = (message: string, rule: string, reason: string) => JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32001, message, data: { sluice: { rule, reason } } } });

export function startHttpRelay(o: HttpRelayOptions): HttpRelay {
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
      void fetch(o.upstream, { method: "POST", body: line, headers: upHeaders(req), proxy: o.via } as RequestInit).then(
        (r) => r.body?.cancel(),
        () => {},
      );
    }
  };

  /** An upstream event stream, judged event by event, as an event stream to the client. */
  const judgedStream = (upstream: Response, session: McpSession, req: Request, ids: readonly unknown[]): ReadableStream<Uint8Array> => {
    const reader = upstream.body!.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buf = "";
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        for (;;) {
          // WHATWG HTML §9.2.6: events end at a blank line; lines end in CRLF, LF or CR.
          const m = /\r\n\r\n|\n\n|\r\r/.exec(buf);
          if (m !== null) {
            const event = buf.slice(0, m.index);
            buf = buf.slice(m.index + m[0].length);
            let data: string[] = [];
            let id: string | null = null;
            for (const line of event.split(/\r\n|\r|\n/)) {
              if (line.startsWith("data:")) data.push(line.slice(line.charCodeAt(5) === 0x20 ? 6 : 5));
              else if (line.startsWith("id:")) id = line.slice(line.charCodeAt(3) === 0x20 ? 4 : 3);
            }
            if (data.length === 0) continue;
            const out = session.fromServer(data.join("\n"));
            o.emit(out);
            toServer(out.toServer, req);
            if (out.toClient.length === 0) continue;
            controller.enqueue(encoder.encode(`${id !== null && !/[\r\n]/.test(id) ? `id: ${id}\n` : ""}${out.toClient.map((l) => `data: ${l}`).join("\n")}\n\n`));
            return;
          }
          if (buf.length > o.maxMessage) {
            o.emit({ toServer: [], toClient: [], records: [{ direction: "server", method: "(session)", verdict: "block", rule: "mcp.line-too-long", reason: "body_too_large", detail: `an event longer than ${o.maxMessage} bytes; stream ended` }] });
            await reader.cancel();
            controller.close();
            return;
          }
          const { value, done } = await reader.read();
          if (done) {
            // A stream that ended without the answers it owed (refused on the way, cut): they are answered here.
            const left = session.abandon(ids, noAnswer(upstream));
            o.emit(left);
            if (left.toClient.length > 0) controller.enqueue(encoder.encode(left.toClient.map((l) => `data: ${l}\n\n`).join("")));
            controller.close();
            return;
          }
          buf += decoder.decode(value, { stream: true });
        }
      },
      cancel: () => reader.cancel(),
    });
  };

  const server = Bun.serve({
    hostname: o.listen.hostname,
    port: o.listen.port,
    async fetch(req) {
      const session = o.session(req.headers.get("mcp-session-id"));
      let upstream: Response;
      let ids: unknown[] = [];
      try {
        if (req.method === "POST") {
          const body = await req.text();
          if (Buffer.byteLength(body) > o.maxMessage) return new Response(jsonRpcError(`a message over ${o.maxMessage} bytes`, "mcp.line-too-long", "body_too_large"), { status: 413, headers: { "content-type": "application/json" } });
          const out = session.fromClient(body);
          o.emit(out);
          if (out.toServer.length === 0) {
            // Refused here: the client gets the answer sluice wrote, the server nothing.
            if (out.toClient.length === 0) return new Response(null, { status: 202 });
            return new Response(out.toClient.length === 1 ? out.toClient[0] : `[${out.toClient.join(",")}]`, { status: 200, headers: { "content-type": "application/json" } });
          }
          ids = requestIds(out.toServer[0]!);
          upstream = await fetch(o.upstream, { method: "POST", body: out.toServer[0], headers: upHeaders(req), proxy: o.via } as RequestInit);
        } else if (req.method === "GET" || req.method === "DELETE") {
          upstream = await fetch(o.upstream, { method: req.method, headers: upHeaders(req), proxy: o.via } as RequestInit);
        } else {
          return new Response(null, { status: 405, headers: { allow: "GET, POST, DELETE" } });
        }
      } catch (err) {
        session.abandon(ids, { verdict: "block", reasons: [{ rule: "mcp.upstream-unreachable", code: "upstream_unreachable", detail: String(err) }] });
        return new Response(jsonRpcError(`the MCP server could not be reached: ${err instanceof Error ? err.message : String(err)}`, "mcp.upstream-unreachable", "upstream_unreachable"), { status: 502, headers: { "content-type": "application/json" } });
      }
      const type = upstream.headers.get("content-type") ?? "";
      if (type.startsWith("text/event-stream") && upstream.body && upstream.ok) return new Response(judgedStream(upstream, session, req, ids), { status: upstream.status, headers: downHeaders(upstream, "text/event-stream") });
      if (type.startsWith("application/json") && upstream.ok) {
        const text = await upstream.text();
        const out = session.fromServer(text);
        o.emit(out);
        toServer(out.toServer, req);
        const left = session.abandon(ids, noAnswer(upstream));
        o.emit(left);
        const answers = [...out.toClient, ...left.toClient];
        if (answers.length === 0) return new Response(null, { status: 202, headers: downHeaders(upstream) });
        return new Response(answers.length === 1 ? answers[0] : `[${answers.join(",")}]`, { status: 200, headers: downHeaders(upstream, "application/json") });
      }
      if (ids.length > 0 && upstream.status !== 404) {
        // A refusal or an error with no JSON-RPC answer in it: the requests get one from sluice.
        await upstream.body?.cancel();
        const left = session.abandon(ids, noAnswer(upstream));
        o.emit(left);
        if (left.toClient.length > 0) return new Response(left.toClient.length === 1 ? left.toClient[0] : `[${left.toClient.join(",")}]`, { status: 200, headers: downHeaders(upstream, "application/json") });
      }
      // 202, 204, 404 (an unknown session), 405 ...: the status, no body passed on unjudged.
      await upstream.body?.cancel();
      return new Response(null, { status: upstream.status, headers: downHeaders(upstream) });
    },
  });
  return { url: `http://${o.listen.hostname.includes(":") ? `[${o.listen.hostname}]` : o.listen.hostname}:${server.port}/mcp`, stop: () => server.stop(true) };
}
