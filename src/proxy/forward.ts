/**
 * The forward proxy listener: absolute-form HTTP/1.1 and CONNECT on one port, on raw Bun
 * sockets both ways (a Bun.serve front with fetch upstream reached ~0.26x direct here; raw
 * sockets with our own strict framing are faster and let us refuse smuggling shapes).
 *
 * Per connection: read a head -> Action -> inspect -> Decision -> enact (forward, tunnel, or a
 * sluice response) -> one audit record. Bodies stream through with backpressure: a socket that
 * cannot take more pauses its peer until it drains.
 */
import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import * as zlib from "node:zlib";
import { OperationalError } from "../core/errors.ts";
import type { ReasonCode } from "../core/reasons.ts";
import { createReceiptIds } from "../audit/receipt-id.ts";
import type { Action, AgentIdentity, AuditSink, Clock, Decision, HttpRequestAction, Peer, Reason } from "../core/types.ts";
import { applyMode, inspect, type InspectContext } from "../inspect/inspect.ts";
import type { Logger } from "../core/log.ts";
import type { EgressLists } from "../policy/egress.ts";
import type { Credential, InjectionSettings, Policy } from "../policy/policy.ts";
import { parseIpLiteral, unmapIpv4 } from "../net/ip.ts";
import { inspectHead, maskedPath, mergeVerdicts, type ContentVerdict, type Redactor } from "../inspect/content.ts";
import { contentTypeOf } from "../inspect/fragments.ts";
import { mcpMethodIn } from "../inspect/mcp.ts";
import { decodeContentEncoding } from "../scan/decode/content-encoding.ts";
import { CHUNKED_ERROR, CHUNKED_INCOMPLETE, ChunkedReader } from "./chunked.ts";
import { headerValue, isEncoded, judgeHeldBody, StreamedBody, withContent } from "./request-scan.ts";
import type { GuardedDialer } from "./dialer.ts";
import {
  findHeadEnd,
  parseRequestHead,
  parseResponseHead,
  responseHasBody,
  serializeHeaders,
  type RequestHead,
  type ResponseHead,
} from "./http1.ts";
import { createUpstreamPool, type UpstreamPool } from "./pool.ts";
import { blockStatus, renderSluiceResponse, type SluiceResponse } from "./responses.ts";
import { responseKind } from "../inspect/response.ts";
import { judgeHeldResponse, SSE_HOLD_MS, SseStream, STREAM_WINDOW, WindowedScan } from "./response-scan.ts";
import { createStreamDecoder, type StreamDecoder } from "./stream-decode.ts";
import { parseAbsoluteTarget, parseConnectTarget, parseTunnelTarget, type Target } from "./target.ts";
import { MAX_HELLO, parseClientHello } from "./client-hello.ts";
import { classifyFirstFlight } from "./first-flight.ts";
import { originalDestination, type OriginalDestination } from "./original-dst.ts";
import { terminateTls, type Terminated } from "./intercept.ts";
import { closeFrame, upgradeRequestProblem, upgradeResponseProblem, wantsWebSocket, WS_REQUEST_SKIP } from "./websocket.ts";
import { WsRelay, type WsOutput } from "./ws-relay.ts";
import { EchoGuard, judgeBodyPlaceholders, judgeCredentials, replacePlaceholders, sameHeader } from "./credentials.ts";
import type { Leaf } from "./tls-ca.ts";

export interface ForwardProxyDeps {
  readonly policy: () => Policy;
  readonly killswitch: () => boolean;
  /** Why new requests are refused because the decision log cannot be written, or null (audit.on_failure). */
  readonly auditFailure?: () => string | null;
  readonly dialer: GuardedDialer;
  readonly audit: AuditSink;
  readonly log: Logger;
  readonly clock: Clock;
  /** Mints leaves for intercepted tunnels (tls.intercept); without it tunnels are spliced. */
  readonly ca?: { mint(host: string): Promise<Leaf> } | null;
  /** Receipt ids (audit/receipt-id.ts), one per exchange, tunnel or refusal; made here when not given. */
  readonly receiptIds?: () => string;
  /**
   * The addresses sluice's resolver gives for a name: a transparent connection's original
   * destination must be one of them (proxy.transparent_listen). Without it, none is accepted.
   */
  readonly resolveName?: (host: string) => Promise<readonly string[]>;
}

export interface ForwardProxy {
  readonly hostname: string;
  readonly port: number;
  /** The transparent listener's port (proxy.transparent_listen), or null. */
  readonly transparentPort: number | null;
  stats(): { connections: number; tunnels: number; idleUpstreams: number };
  /**
   * Drops idle upstream connections and retires busy ones when they finish (after a reload:
   * they were checked under the old policy).
   */
  clearPool(): void;
  /**
   * Cuts off every open tunnel and in-flight request, recording each as refused with `reason`
   * (the kill switch: traffic allowed before the switch must not outlive it). Returns how many.
   */
  cutOff(reason: Reason): number;
  stop(): Promise<void>;
}

/** Bytes queued for a socket that would not take them yet, and whom to resume when it drains. */
interface Endpoint {
  readonly kind: "client" | "upstream";
  socket: Socket<never> | null;
  out: Uint8Array[];
  pausedPeer: Endpoint | null;
  closeWhenFlushed: boolean;
  /** Paused because a peer it feeds is backpressured. */
  flowPaused: boolean;
  /** Whether the socket is paused now (pause/resume are syscalls: only call them on change). */
  paused: boolean;
  /** When the queue last became non-empty or last drained some: a stalled reader is cut off. */
  outSince: number;
}

interface Client extends Endpoint {
  readonly kind: "client";
  socket: Socket<never> | null;
  readonly peer: Peer;
  buf: Buffer | null;
  phase: "transparent" | "head" | "busy" | "request-body" | "tunnel" | "tls-hello" | "tls-wait" | "tls" | "websocket" | "closed";
  /** Redirected to the transparent listener: where the agent meant to connect (its first bytes say to what name). */
  transparent: OriginalDestination | null;
  /** Deadline (clock.now() ms) for the head being read, or 0 (slowloris guard). */
  headDeadline: number;
  /** Last time bytes arrived from the client. */
  lastActive: number;
  /** Paused because pipelined bytes piled up while an exchange was busy. */
  heldPaused: boolean;
  ex: Exchange | null;
  tunnel: Tunnel | null;
  /** A client inside an intercepted tunnel: where its requests go and who sent them (the CONNECT's). */
  via: Via | null;
  /** The outer side of an intercepted tunnel. */
  intercept: Interception | null;
}

interface Via {
  readonly host: string;
  readonly port: number;
  /** Requests come out of TLS sluice terminated (https); false: plain HTTP in the tunnel (tls.plaintext_tunnels). */
  readonly tls: boolean;
  readonly agent: AgentIdentity;
  readonly lists: InspectContext["agentLists"];
  readonly outer: Client;
}

interface Interception {
  /** The client's first flight, until it holds a whole ClientHello. */
  hello: Buffer | null;
  tls: Terminated | null;
  inner: Client | null;
  /** Reading paused by the TLS session (its plaintext side paused, or records not yet consumed). */
  rawPaused: boolean;
}

export interface Upstream extends Endpoint {
  readonly kind: "upstream";
  readonly key: string;
  readonly ip: string;
  owner: Exchange | Tunnel | null;
  closed: boolean;
  reused: boolean;
  /** The origin sent bytes past the end of a response: never reuse this connection. */
  desynced: boolean;
  /** Pool generation at dial time: connections from before a reload are not reused. */
  readonly generation: number;
}

interface Base {
  readonly client: Client;
  readonly action: Action;
  readonly decision: Decision;
  readonly started: number;
  upstream: Upstream | null;
  bytesOut: number;
  bytesIn: number;
  done: boolean;
  /** Last time bytes moved: either way for a tunnel; request body or response for an exchange. */
  lastActive: number;
  /** The agent's own egress lists, for deny entries checked against resolved addresses. */
  readonly agentLists: EgressLists | null;
  /** In the record and in any response sluice writes for this exchange or tunnel. */
  readonly receipt: string;
}

interface Exchange extends Base {
  readonly type: "http";
  readonly head: RequestHead;
  readonly target: Target;
  /** Request body still to forward: bytes for Content-Length, or a reader for chunked. */
  reqRemaining: number;
  reqChunked: ChunkedReader | null;
  reqDone: boolean;
  resBuf: Buffer | null;
  res: ResponseHead | null;
  resMode: "none" | "length" | "chunked" | "close";
  resRemaining: number;
  resChunked: ChunkedReader | null;
  /** Forward decoded chunk data only (HTTP/1.0 client, chunked response). */
  dechunk: boolean;
  clientClose: boolean;
  responseStarted: boolean;
  retried: boolean;
  /** DLP (request-scan.ts): the body being held to be scanned whole, or null. */
  held: { parts: Buffer[]; size: number } | null;
  /** The held body as it will be sent (maybe redacted); sent with its own Content-Length. */
  heldBody: Uint8Array | null;
  /** DLP on a body too large to hold: scanned as it streams. */
  stream: StreamedBody | null;
  /** The verdict on the URL and headers, merged with the body's when it is judged. */
  headVerdict: ContentVerdict | null;
  /** The decision before content scanning (egress, agent, method): content verdicts merge into it. */
  readonly egressDecision: Decision;
  /** Secrets to cut out of the head as it is sent (a redact verdict). */
  redactor: Redactor | null;
  /** Injection (response-scan.ts): the response body being held to be scanned whole, or null. */
  resHeld: { parts: Buffer[]; size: number; readonly inj: InjectionSettings } | null;
  /** Said in the record's detail when nothing else is (a response not scanned, and why). */
  note: string | null;
  /** The credentials that apply to this request's host: the first header entry, every replace entry. */
  credentials: readonly Credential[];
  /** Those whose value went upstream (a header set, a placeholder replaced): the record names them. */
  injected: Credential[];
  /** Injection on a `text/event-stream` response, scanned event by event as it streams. */
  sse: SseStream | null;
  /** When the events an SseStream holds are to be scanned and passed on. */
  sseFlush: ReturnType<typeof setTimeout> | null;
  /**
   * A response passed on as it streams, re-framed: scanned window by window (over
   * injection.max_buffer, oversize: stream), and/or guarded for an injected credential's value.
   */
  windowed: StreamStage | null;
  /** The response to a request sluice injected a credential into: its value is replaced if echoed. */
  echo: EchoGuard | null;
  /** A compressed event stream's or streamed response's decoder: read, and passed on, decoded. */
  bodyDecoder: StreamDecoder | null;
  /** The event stream (or streamed response) goes to the client re-framed as chunks (HTTP/1.1) rather than close-delimited. */
  sseChunked: boolean;
  /** The request asks to become a WebSocket (the offer goes upstream without extensions). */
  readonly wsUpgrade: boolean;
  /** After a 101: the WebSocket relayed message by message (ws-relay.ts). */
  ws: WsRelay | null;
  /** Bytes its relay holds for incomplete messages, as last counted into wsHeld. */
  wsPending: number;
  /** When the server's messages the relay holds are to be scanned and passed on. */
  wsFlush: ReturnType<typeof setTimeout> | null;
}

/** Body bytes (framing removed, decoded) in, what may go to the client now out; `stop` ends the response. */
interface StreamStage {
  push(bytes: Uint8Array, end?: boolean): { readonly out: Uint8Array[]; readonly stop: boolean };
  decision(): Decision | null;
}

interface Tunnel extends Base {
  readonly type: "tunnel";
  /** How its bytes go, once established: spliced unread, or TLS terminated and inspected. */
  mode: "splice" | "intercept" | null;
  /** A tls.passthrough host: spliced after its ClientHello's server name is checked. */
  passthrough: boolean;
  /** Set when sluice itself cut the tunnel short for a policy reason. */
  closedBy: Reason | null;
}

/**
 * The host of an absolute-form target as the client spelled it, when that differs from the
 * normalised host only in case (DLP checksums need the letters as sent); else undefined.
 */
function hostAsWritten(target: string, host: string): string | undefined {
  const start = target.indexOf("://") + 3;
  if (start < 3) return undefined;
  let end = start;
  while (end < target.length && target[end] !== "/" && target[end] !== "?" && target[end] !== ":" && target[end] !== "#") end++;
  const written = target.slice(start, end);
  return written !== host && written.toLowerCase() === host ? written : undefined;
}

/** Heads are latin1 text; pure-ASCII ones (nearly all) go to the socket as strings. */
const NON_ASCII = /[^\x00-\x7f]/;
function asciiHead(text: string): string | Buffer {
  return NON_ASCII.test(text) ? Buffer.from(text, "latin1") : text;
}

/** All responses held for injection scanning at once may take this many times injection.max_buffer. */
const MAX_HELD_RESPONSES = 16;

/** Methods whose response carries the request back: a credential is never added to them. */
const ECHOING_METHODS = new Set(["TRACE", "TRACK"]);

const CRLF_BYTES = Buffer.from("\r\n", "latin1");
const LAST_CHUNK_BYTES = Buffer.from("0\r\n\r\n", "latin1");

const ESTABLISHED = Buffer.from("HTTP/1.1 200 Connection Established\r\n\r\n", "latin1");
/** Written by the proxy itself from parsed values, never copied from the client. */
const SKIP_REQUEST = new Set(["host", "content-length"]);
const SKIP_HELD_REQUEST = new Set(["host", "content-length", "expect"]);
const SKIP_WS_REQUEST = new Set([...SKIP_REQUEST, ...WS_REQUEST_SKIP]);
/** Close code for a connection sluice ends for a timeout (RFC 6455 §7.4.1: going away). */
const WS_GOING_AWAY = 1001;
const CONTINUE = Buffer.from("HTTP/1.1 100 Continue\r\n\r\n", "latin1");
const SKIP_RESPONSE = new Set(["content-length"]);
/** A record's detail: the decision's and a note, either or both. */
const joinDetail = (detail: string | undefined, note: string | undefined): string | undefined => (detail && note ? `${detail}; ${note}` : (detail ?? note));
/** Safe to replay on a fresh connection when a pooled one turns out dead (RFC 9110 section 9.2.2). */
const RETRYABLE = new Set(["GET", "HEAD", "OPTIONS"]);
/** Streamed bodies: a garbage collection after this many scanned bytes (streamRequestBody). */
const GC_EVERY_SCANNED_BYTES = 4 * 1024 * 1024;
/** A held body up to this size goes out in one write with its head. */
const ONE_WRITE_BODY = 64 * 1024;
/** Upstream response heads get the same ceiling as requests' default. */
const MAX_RESPONSE_HEAD = 64 * 1024;

export function startForwardProxy(deps: ForwardProxyDeps): ForwardProxy {
  const { log, clock } = deps;
  const nextReceipt = deps.receiptIds ?? createReceiptIds();
  /** Every client, the plaintext sides of intercepted tunnels included (they have timeouts too). */
  const clients = new Set<Client>();
  /** How many of `clients` are plaintext sides: they are not connections of their own. */
  let innerClients = 0;
  const openTunnels = new Set<Tunnel>();
  /** Bumped on every reload: a connection dialled under an older policy is not reused. */
  let generation = 0;
  /** Upstreams ended with bytes still queued: cut off if their reader stalls. */
  const flushing = new Set<Upstream>();
  const pool: UpstreamPool<Upstream> = createUpstreamPool<Upstream>({
    maxPerKey: () => deps.policy().proxy.maxIdleUpstreamPerHost,
    idleTimeoutMs: () => deps.policy().proxy.upstreamIdleTimeoutMs,
    close: (u) => u.socket?.end(),
    now: () => clock.now(),
  });
  // Every timeout is checked here, twice a second, against activity timestamps. Bun's socket
  // timeouts fire a fixed time after they are set (in 4 s steps), not after inactivity, so
  // they cannot express "idle for 60 s"; and a timer per request costs more than proxying it.
  const ticker = setInterval(() => checkTimeouts(clock.now()), 500);
  ticker.unref();

  function checkTimeouts(now: number): void {
    const p = deps.policy().proxy;
    for (const c of clients) {
      try {
        checkClient(c, now, p);
      } catch (err) {
        log.error("timeout check failed; connection dropped", { error: String(err) });
        c.socket?.terminate();
      }
    }
    for (const up of flushing) {
      if (now - up.outSince > p.idleTimeoutMs) {
        flushing.delete(up);
        up.socket?.terminate();
      }
    }
    pool.sweep();
  }

  function checkClient(c: Client, now: number, p: Policy["proxy"]): void {
    // A client that stops reading what we send it (responses, tunnel bytes) is cut off.
    if (c.out.length > 0 && now - c.outSince > p.idleTimeoutMs) {
      c.socket?.terminate();
      return;
    }
    {
      switch (c.phase) {
        case "transparent":
          if (c.headDeadline !== 0 && now > c.headDeadline) refuseTransparent(c, null, "proxy.header-timeout", "timeout", "no TLS ClientHello or HTTP request head within header_timeout");
          break;
        case "head":
          if (c.headDeadline !== 0 && now > c.headDeadline) {
            badRequest(c, 408, "timeout", "proxy.header-timeout", "request head not received in time");
          } else if (c.headDeadline === 0 && now - c.lastActive > p.idleTimeoutMs) {
            closeClient(c);
          }
          break;
        case "tls-hello":
        case "tls-wait":
        case "tls":
        case "tunnel": {
          const t = c.tunnel;
          if (!t) break;
          if (c.phase === "tls-hello" && c.headDeadline !== 0 && now > c.headDeadline) {
            refuseTunnel(c, "tls.hello-timeout", "no whole ClientHello within header_timeout");
          } else if (now - t.started > p.tunnelMaxMs) {
            log.info("tunnel reached tunnel_max_duration", { host: t.action.host });
            // A WebSocket inside is closed properly (1001, recorded as such); its TLS session's
            // end then ends the tunnel (or the next check does).
            const inner = c.intercept?.inner?.ex;
            if (inner?.ws && !inner.done) wsGoingAway(inner, "tunnel_max_duration reached");
            else endTunnel(t);
          } else if (now - t.lastActive > p.idleTimeoutMs) {
            // A request in flight inside an intercepted tunnel is timed by the exchange's own
            // rules (upstream_timeout), like a plain one: a slow origin is not an idle client.
            const inner = c.intercept?.inner?.ex;
            if (!inner || inner.done) endTunnel(t);
          }
          break;
        }
        case "websocket": {
          // Timed like a tunnel: idle when no byte moved either way.
          const ex = c.ex;
          if (!ex || ex.done) break;
          if (now - ex.started > p.tunnelMaxMs) wsGoingAway(ex, "tunnel_max_duration reached");
          else if (now - ex.lastActive > p.idleTimeoutMs) wsGoingAway(ex, "idle past idle_timeout");
          break;
        }
        default: {
          const ex = c.ex;
          // A body being held for DLP has no upstream yet: a client that stops sending it is cut off.
          if (ex && !ex.done && ex.held && now - ex.lastActive > p.idleTimeoutMs) {
            abortExchange(ex, 408, "timeout", "proxy.body-timeout", "request body not received in time");
            break;
          }
          // Silent because we paused it for a slow client is not the upstream's fault.
          if (ex && !ex.done && ex.upstream && !ex.upstream.flowPaused && now - ex.lastActive > p.upstreamTimeoutMs) {
            abortExchange(ex, 504, "timeout", "proxy.upstream-timeout", "upstream did not answer in time");
          }
        }
      }
    }
  }

  // ---- writing with backpressure -------------------------------------------------------

  /**
   * Writes what the socket takes and queues the rest. Strings must be ASCII (see asciiHead):
   * Bun writes them without a JS-side buffer, and one byte per character keeps `n` exact.
   */
  function send(dst: Endpoint, data: Uint8Array | string, src: Endpoint | null): void {
    const socket = dst.socket;
    if (!socket || data.length === 0) return;
    if (dst.out.length > 0) {
      dst.out.push(typeof data === "string" ? Buffer.from(data, "latin1") : data);
      pausePeer(dst, src);
      return;
    }
    const n = socket.write(data);
    if (n < data.length) {
      if (n < 0) return;
      const rest = typeof data === "string" ? Buffer.from(data.slice(n), "latin1") : n === 0 ? data : data.subarray(n);
      dst.out.push(rest);
      dst.outSince = clock.now();
      pausePeer(dst, src);
    }
  }

  /** Lets go of whoever `e` had paused (it is going away, or handing the peer back). */
  function releasePeer(e: Endpoint): void {
    const peer = e.pausedPeer;
    e.pausedPeer = null;
    if (peer) {
      peer.flowPaused = false;
      applyPause(peer);
    }
  }

  function pausePeer(dst: Endpoint, src: Endpoint | null): void {
    if (!src) return;
    dst.pausedPeer = src;
    src.flowPaused = true;
    applyPause(src);
  }

  function applyPause(e: Endpoint): void {
    const want = e.flowPaused || (e.kind === "client" && ((e as Client).heldPaused || (e as Client).intercept?.rawPaused === true));
    if (want === e.paused || !e.socket) return;
    e.paused = want;
    if (want) e.socket.pause();
    else e.socket.resume();
  }

  function drain(dst: Endpoint): void {
    const socket = dst.socket;
    if (!socket) return;
    while (dst.out.length > 0) {
      const chunk = dst.out[0]!;
      const n = socket.write(chunk);
      if (n < 0) return;
      if (n > 0) dst.outSince = clock.now();
      if (n < chunk.length) {
        dst.out[0] = chunk.subarray(n);
        return;
      }
      dst.out.shift();
    }
    releasePeer(dst);
    if (dst.closeWhenFlushed) {
      socket.end();
      return;
    }
    if (dst.kind === "client") {
      const c = dst as Client;
      // A client paused because it did not read our responses may have more heads buffered.
      if (c.phase === "head" && c.buf) processHeads(c, 0);
      // An intercepted tunnel's plaintext side was held while its client was backed up.
      else c.intercept?.tls?.drained();
    }
  }

  /** Ends a socket once its queue is empty. */
  function endAfterFlush(e: Endpoint): void {
    if (!e.socket) return;
    if (e.out.length === 0) e.socket.end();
    else {
      e.closeWhenFlushed = true;
      if (e.kind === "upstream") flushing.add(e as Upstream);
    }
  }

  // Records in the same millisecond share one timestamp string.
  let isoMs = -1;
  let isoText = "";
  function isoNow(): string {
    const ms = clock.epochMs();
    if (ms !== isoMs) {
      isoMs = ms;
      isoText = new Date(ms).toISOString();
    }
    return isoText;
  }

  /** Phase read after an await: TypeScript's narrowing from before the await no longer holds. */
  const isClosed = (c: Client): boolean => c.phase === "closed";

  // ---- records ------------------------------------------------------------------------

  function record(x: Base, status: number, decision: Decision = x.decision, upstream?: string, note?: string): void {
    const a = x.action;
    const r = decision.reasons[0];
    const http = a.kind === "http.request";
    // One flat literal: undefined fields are left out by JSON.stringify, and no spreads or
    // temporaries are built per request. Members in sorted order: the flight recorder then
    // seals the record without sorting it (log-format.ts sealRecord).
    deps.audit.record({
      agent: a.agent.name,
      agent_label: a.agent.label,
      bytes_in: x.bytesIn,
      bytes_out: x.bytesOut,
      client: a.client.address,
      detail: joinDetail(
        r && (decision.verdict !== "allow" || decision.wouldBlock) ? r.detail : undefined,
        http && (x as Exchange).injected.length > 0 ? joinDetail(note, credentialNote(x as Exchange)) : note,
      ),
      duration_ms: Math.round((clock.now() - x.started) * 100) / 100,
      findings: decision.findings && decision.findings.length > 0 ? decision.findings : undefined,
      host: a.host,
      inspected: http ? undefined : (x as Tunnel).mode === null ? undefined : (x as Tunnel).mode === "intercept",
      kind: http ? "http" : "connect",
      method: http ? a.method : "CONNECT",
      path: http ? maskedPath(a.path, decision.findings) : undefined,
      port: a.port,
      reason: r?.code ?? "allowed",
      receipt: x.receipt,
      rule: r?.rule ?? "none",
      status,
      time: isoNow(),
      upstream: upstream ?? x.upstream?.ip,
      verdict: decision.verdict,
      would_block: decision.wouldBlock ? true : undefined,
    });
  }

  function credentialNote(ex: Exchange): string {
    const echoed = ex.echo?.replaced ?? 0;
    const names = ex.injected.map((e) => `credential ${e.name}`).join(", ");
    return `${names} injected${echoed > 0 ? `; the response echoed a value ${echoed} time(s), replaced by the placeholder` : ""}`;
  }

  /** A record for input that never became an Action (malformed, timed out). */
  function recordRefusal(c: Client, r: SluiceResponse, method?: string): void {
    // Inside an intercepted tunnel the agent and host are the CONNECT's.
    const via = c.via;
    deps.audit.record({
      time: isoNow(),
      kind: "http",
      agent: via ? via.agent.name : "unknown",
      ...(via?.agent.label !== undefined ? { agent_label: via.agent.label } : {}),
      client: c.peer.address,
      ...(method ? { method } : {}),
      ...(via ? { host: via.host, port: via.port } : {}),
      verdict: "block",
      rule: r.rule,
      reason: r.reason,
      detail: r.detail,
      status: r.status,
      receipt: r.receipt,
    });
  }

  // ---- client side --------------------------------------------------------------------

  function respond(c: Client, r: SluiceResponse): void {
    // A transparent connection that is not plain HTTP (TLS, or not yet read) reads no HTTP
    // answer: it is closed (its record says why).
    if (c.transparent && !(c.via && !c.via.tls)) {
      closeClient(c);
      return;
    }
    // The client is its own source here: one that does not read its refusals stops being read.
    send(c, renderSluiceResponse(r), c);
    if (r.close) closeClient(c);
  }

  function closeClient(c: Client): void {
    c.phase = "closed";
    clearHeadTimer(c);
    endAfterFlush(c);
  }

  function resumeClient(c: Client): void {
    if (!c.heldPaused) return;
    c.heldPaused = false;
    applyPause(c);
  }

  function clearHeadTimer(c: Client): void {
    c.headDeadline = 0;
  }

  function badRequest(c: Client, status: number, code: ReasonCode, rule: string, detail: string, method?: string): void {
    const r: SluiceResponse = { status, rule, reason: code, detail, block: false, close: true, receipt: nextReceipt() };
    recordRefusal(c, r, method);
    respond(c, r);
  }

  function onClientData(c: Client, chunk: Buffer): void {
    const now = clock.now();
    c.lastActive = now;
    switch (c.phase) {
      case "tunnel": {
        const t = c.tunnel!;
        t.lastActive = now;
        t.bytesOut += chunk.length;
        if (t.upstream) send(t.upstream, chunk, c);
        return;
      }
      case "tls-hello":
      case "tls-wait":
        interceptHello(c, chunk);
        return;
      case "tls": {
        const t = c.tunnel!;
        t.lastActive = now;
        t.bytesOut += chunk.length;
        c.intercept!.tls!.feed(chunk);
        return;
      }
      case "websocket": {
        const ex = c.ex!;
        if (ex.done) return;
        ex.lastActive = now;
        wsFeed(ex, "client", chunk);
        return;
      }
      case "request-body":
        c.ex!.lastActive = now;
        if (c.ex!.held) holdRequestBody(c.ex!, chunk);
        else forwardRequestBody(c.ex!, chunk);
        return;
      case "closed":
        return;
      case "transparent":
        c.buf = c.buf ? Buffer.concat([c.buf, chunk]) : chunk;
        transparentFlight(c);
        return;
      case "busy":
        c.buf = c.buf ? Buffer.concat([c.buf, chunk]) : chunk;
        // Pipelined bytes wait for the current exchange; past a head's worth, stop reading.
        if (c.buf.length > deps.policy().proxy.maxHeaderBytes && !c.heldPaused) {
          c.heldPaused = true;
          applyPause(c);
        }
        return;
      case "head": {
        const before = c.buf?.length ?? 0;
        c.buf = c.buf ? Buffer.concat([c.buf, chunk]) : chunk;
        processHeads(c, before);
      }
    }
  }

  function armHeadTimer(c: Client): void {
    c.headDeadline = clock.now() + deps.policy().proxy.headerTimeoutMs;
  }

  /**
   * Reads request heads from the client's buffer, one after another (pipelining), in a loop
   * rather than by recursion: a burst of refused requests must not grow the stack. Stops when
   * an exchange goes upstream, the head is incomplete, or the client stops reading refusals.
   */
  function processHeads(c: Client, searchFrom: number): void {
    let from = searchFrom;
    while (c.phase === "head" && c.buf && c.buf.length > 0 && !c.flowPaused) {
      if (!processHead(c, from)) return;
      from = 0;
    }
  }

  /** Handles one head from c.buf; false when it is not complete yet (or was refused). */
  function processHead(c: Client, searchFrom: number): boolean {
    const buf = c.buf!;
    const max = deps.policy().proxy.maxHeaderBytes;
    const end = findHeadEnd(buf, searchFrom);
    if (end < 0) {
      if (buf.length > max) badRequest(c, 431, "malformed_request", "proxy.header-too-large", `request head over ${max} bytes`);
      // The deadline runs from the first byte of this head, and is never extended.
      else if (c.headDeadline === 0) armHeadTimer(c);
      return false;
    }
    if (end > max) {
      badRequest(c, 431, "malformed_request", "proxy.header-too-large", `request head over ${max} bytes`);
      return false;
    }
    clearHeadTimer(c);
    const head = parseRequestHead(buf.toString("latin1", 0, end));
    c.buf = end < buf.length ? buf.subarray(end) : null;
    if (head.error) {
      badRequest(c, head.status, "malformed_request", "proxy.bad-request", head.message);
      return false;
    }
    if (head.method !== "CONNECT") startRequest(c, head);
    else if (c.via) badRequest(c, 400, "malformed_request", "proxy.bad-target", "CONNECT inside an intercepted tunnel is not allowed", "CONNECT");
    else startConnect(c, head);
    return true;
  }

  function identify(c: Client, head: RequestHead, policy: Policy) {
    let auth: string | undefined;
    let count = 0;
    for (const [name, value] of head.headers) {
      if (name.length === 19 && name.toLowerCase() === "proxy-authorization") {
        auth = value;
        count++;
      }
    }
    // Two credentials is ambiguity, and ambiguity is refused.
    if (count > 1) auth = "";
    return policy.agents.identify(auth, c.peer.address);
  }

  function decide(action: Action, policy: Policy, agentLists: InspectContext["agentLists"]): Decision {
    return inspect(action, { policy, killswitch: deps.killswitch(), auditFailure: deps.auditFailure?.() ?? null, agentLists });
  }

  function blockResponse(x: Base, decision: Decision, close: boolean): SluiceResponse {
    const r = decision.reasons[0]!;
    return { status: blockStatus(r.code), rule: r.rule, reason: r.code, detail: r.detail, block: true, close, receipt: x.receipt };
  }

  function startRequest(c: Client, head: RequestHead): void {
    const policy = deps.policy();
    const via = c.via;
    const target = via ? parseTunnelTarget(head.target, via.host, via.port, via.tls ? "https" : "http") : parseAbsoluteTarget(head.target);
    if ("error" in target) {
      badRequest(c, 400, "malformed_request", "proxy.bad-target", target.error, head.method);
      return;
    }
    let hosts = 0;
    for (const [name] of head.headers) if (name.length === 4 && name.toLowerCase() === "host") hosts++;
    if (hosts > 1) {
      badRequest(c, 400, "malformed_request", "proxy.bad-request", "more than one Host header", head.method);
      return;
    }
    // Inside an intercepted tunnel the agent is who opened it.
    const id = via ? { agent: via.agent, lists: via.lists } : identify(c, head, policy);
    const action: HttpRequestAction = {
      kind: "http.request",
      agent: id.agent,
      client: c.peer,
      method: head.method,
      scheme: via?.tls ? "https" : "http",
      host: target.host,
      hostAsWritten: via ? undefined : hostAsWritten(head.target, target.host),
      port: target.port,
      path: target.path,
      query: target.query,
      headers: head.headers,
    };
    let decision = decide(action, policy, id.lists);
    let credentials: readonly Credential[] = [];
    if (policy.credentials.length > 0 && decision.verdict !== "block") {
      const judged = judgeCredentials(action, head.target, head.headers, policy.credentials);
      if (judged && "refuse" in judged) decision = applyMode({ verdict: "block", reasons: [judged.refuse] }, { policy, killswitch: false, agentLists: null });
      else if (judged) credentials = judged.inject;
    }
    const hasBody = head.chunked || (head.contentLength ?? 0) > 0;
    const wsUpgrade = wantsWebSocket(head.headers, head.connection);
    if (wsUpgrade && decision.verdict !== "block") {
      if (!policy.proxy.websocket.enabled) {
        const refused: Decision = { verdict: "block", reasons: [{ rule: "proxy.websocket-disabled", code: "method_refused", detail: "WebSocket upgrades are refused (proxy.websocket.enabled: false)" }] };
        decision = applyMode(refused, { policy, killswitch: false, agentLists: null });
      } else {
        const problem = upgradeRequestProblem(head.method, head.minor, head.headers, hasBody);
        if (problem !== null) {
          badRequest(c, 400, "malformed_request", "proxy.bad-upgrade", problem, head.method);
          return;
        }
      }
    }
    const egressDecision = decision;
    const dlp = decision.verdict === "block" ? null : policy.dlp;
    // A body that will be held is scanned with its head, in one pass (judgeHeld); otherwise the
    // head is scanned now, before anything goes upstream.
    const hold = dlp !== null && hasBody && holdsBody(head, dlp);
    let headVerdict: ContentVerdict | null = null;
    if (dlp && !hold) {
      headVerdict = inspectHead(action, dlp.engine);
      decision = applyMode(withContent(decision, headVerdict, policy.mode === "audit"), { policy, killswitch: false, agentLists: null });
    }
    const ex: Exchange = {
      type: "http",
      client: c,
      action,
      decision,
      started: clock.now(),
      upstream: null,
      bytesOut: 0,
      bytesIn: 0,
      done: false,
      lastActive: 0,
      agentLists: id.lists,
      receipt: nextReceipt(),
      head,
      target,
      reqRemaining: head.contentLength ?? 0,
      reqChunked: head.chunked ? new ChunkedReader() : null,
      reqDone: !hasBody,
      resBuf: null,
      res: null,
      resMode: "none",
      resRemaining: 0,
      resChunked: null,
      dechunk: false,
      clientClose: head.close || head.minor === 0,
      responseStarted: false,
      retried: false,
      held: null,
      heldBody: null,
      stream: null,
      headVerdict,
      egressDecision,
      redactor: decision.verdict === "redact" ? headVerdict!.redactor : null,
      resHeld: null,
      note: null,
      sse: null,
      sseFlush: null,
      windowed: null,
      bodyDecoder: null,
      sseChunked: false,
      credentials,
      injected: [],
      wsUpgrade,
      ws: null,
      wsPending: 0,
      wsFlush: null,
      echo: null,
    };
    if (decision.verdict === "block") {
      // Without reading the body we cannot find the next request: close when there is one.
      const r = blockResponse(ex, decision, head.close || hasBody);
      ex.done = true;
      record(ex, r.status);
      respond(c, r);
      return;
    }
    // No pause here: pause/resume cost a syscall each; pipelined bytes are buffered and the
    // socket is paused only when they pass a head's worth (onClientData, "busy").
    c.phase = "busy";
    c.ex = ex;
    if (dlp && hasBody) {
      const encoded = isEncoded(headerValue(head.headers, "content-encoding"));
      if (hold) {
        // Held: read the whole body before anything goes upstream (see holdRequestBody).
        ex.held = { parts: [], size: 0 };
        if (headerValue(head.headers, "expect")?.toLowerCase() === "100-continue") send(c, CONTINUE, null);
        c.phase = "request-body";
        const pending = c.buf;
        c.buf = null;
        if (pending) holdRequestBody(ex, pending);
        return;
      }
      if (encoded) {
        refuseBody(ex, "dlp.body-too-large", `a compressed request body that cannot be held (over dlp.body.max_buffer, ${dlp.maxBufferBytes} bytes, or sent with Expect: 100-continue) cannot be scanned`, null, "body_too_large");
        return;
      }
      ex.stream = new StreamedBody(dlp, head.chunked);
    }
    sendUpstream(ex);
  }

  /** Takes a pooled connection or dials one, then sends the request. */
  function sendUpstream(ex: Exchange): void {
    const action = ex.action as Extract<Action, { kind: "http.request" }>;
    // The pooled path stays synchronous: no promise, no microtask per request.
    const pooled = takePooled(poolKey(action));
    if (pooled) {
      pooled.reused = true;
      beginExchange(ex, pooled);
      return;
    }
    void dialFor(ex).then((up) => {
      if (up) beginExchange(ex, up);
    });
  }

  function takePooled(key: string): Upstream | null {
    for (;;) {
      const up = pool.take(key);
      if (!up || up.generation === generation) return up;
      up.socket?.end();
    }
  }

  /** Dials a new upstream connection. Returns null after answering the client itself. */
  /** Pooled connections are per scheme, host and port: a TLS one is never reused for plain HTTP. */
  function poolKey(a: Action): string {
    return a.kind === "http.request" && a.scheme === "https" ? `https|${a.host}|${a.port}` : `${a.host}|${a.port}`;
  }

  async function dialFor(x: Exchange | Tunnel): Promise<Upstream | null> {
    const a = x.action;
    const key = poolKey(a);
    const policy = deps.policy();
    let ips: string[];
    let decision = x.decision;
    try {
      const plan = await deps.dialer.plan(a.host, a.port);
      // Deny entries that are IP literals apply to what a name resolves to, as well.
      const deniedBy = (ip: string) => {
        const parsed = parseIpLiteral(ip);
        const text = parsed ? unmapIpv4(parsed).text : ip;
        return policy.egress.lists.deny?.match(text, a.port) ?? x.agentLists?.deny?.match(text, a.port) ?? null;
      };
      // An operator's deny entry is the more telling reason: it goes first.
      const refused: typeof plan.refused = [];
      ips = [];
      for (const ip of plan.allowed) {
        const hit = deniedBy(ip);
        if (hit === null) ips.push(ip);
        else refused.push({ ip, reason: { rule: "egress.deny-host", code: "deny_listed", detail: `${a.host} resolves to an address matching deny pattern ${hit}` } });
      }
      for (const r of plan.refused) {
        const hit = deniedBy(r.ip);
        if (hit === null) refused.push(r);
        else refused.unshift({ ip: r.ip, reason: { rule: "egress.deny-host", code: "deny_listed", detail: `${a.host} resolves to an address matching deny pattern ${hit}` } });
      }
      if (ips.length === 0) {
        const blocked: Decision = { verdict: "block", reasons: [refused[0]!.reason] };
        decision = applyMode(blocked, { policy, killswitch: false, agentLists: null });
        if (decision.verdict === "block") {
          failBeforeUpstream(x, blockResponse(x, decision, true), decision, refused[0]!.ip);
          return null;
        }
        // Audit mode dials what would have been refused, but never sluice's own listeners.
        ips = refused.filter((r) => r.reason.rule !== "net.self-address").map((r) => r.ip);
        if (ips.length === 0) {
          const self: Decision = { verdict: "block", reasons: [refused[0]!.reason] };
          failBeforeUpstream(x, blockResponse(x, self, true), self, refused[0]!.ip);
          return null;
        }
      }
    } catch (err) {
      failBeforeUpstream(x, operational(err, "dns_failure", 502), x.decision);
      return null;
    }
    if (x.client.phase === "closed") return null;
    const up: Upstream = {
      kind: "upstream",
      key,
      ip: "",
      socket: null,
      out: [],
      pausedPeer: null,
      closeWhenFlushed: false,
      flowPaused: false,
      paused: false,
      owner: x,
      closed: false,
      reused: false,
      desynced: false,
      generation,
      outSince: 0,
    };
    try {
      // An intercepted request goes on over TLS, to the pinned address, verifying the name.
      const tls = a.kind === "http.request" && a.scheme === "https" ? { serverName: a.host, extraCa: policy.tls.extraCa } : undefined;
      const { socket, ip } = await deps.dialer.connect(ips, a.port, upstreamHandler, up, tls);
      up.socket = socket as unknown as Socket<never>;
      (up as { ip: string }).ip = ip;
      socket.setNoDelay(true);
    } catch (err) {
      failBeforeUpstream(x, operational(err, "upstream_unreachable", 502), x.decision);
      return null;
    }
    if (isClosed(x.client) || up.owner !== x) {
      up.socket?.end();
      return null;
    }
    if (decision !== x.decision) (x as { decision: Decision }).decision = decision;
    return up;
  }

  function operational(err: unknown, fallback: ReasonCode, status: number): SluiceResponse {
    const e = err instanceof OperationalError ? err : new OperationalError(fallback, String(err));
    if (!(err instanceof OperationalError)) log.error("unexpected error while dialing", { error: String(err) });
    return { status, rule: e.rule, reason: e.code, detail: e.message, block: false, close: true };
  }

  function failBeforeUpstream(x: Exchange | Tunnel, r: SluiceResponse, decision: Decision, refusedIp?: string): void {
    // The client may have gone (and the exchange been recorded) while we were dialling.
    if (x.done) return;
    x.done = true;
    const shown: Decision = r.block ? decision : { verdict: "block", reasons: [{ rule: r.rule, code: r.reason, detail: r.detail }] };
    // The refused address goes to the record only; the agent's response names the range.
    record(x, r.status, shown, refusedIp);
    if (x.client.phase !== "closed") respond(x.client, { ...r, receipt: x.receipt });
  }

  function beginExchange(ex: Exchange, up: Upstream): void {
    const c = ex.client;
    ex.upstream = up;
    up.owner = ex;
    const h = ex.head;
    // Credentials go only with a request that nothing would have refused (audit mode lets those
    // through, a TRACE among them, which would echo the value back). A header entry replaces
    // the client's header of that name under any spelling; replace entries put the value where
    // the placeholder is, written as the place needs it.
    const creds = ex.credentials.length > 0 && !ex.decision.wouldBlock && !ECHOING_METHODS.has(h.method.toUpperCase()) ? ex.credentials : [];
    const cred = creds.find((e) => e.mode === "header") ?? null;
    const replacing = creds.filter((e) => e.mode === "replace");
    const applied = new Set<Credential>();
    if (replacing.length > 0 && ex.heldBody && ex.heldBody.length > 0) {
      const type = contentTypeOf(h.headers)?.toLowerCase() ?? "";
      const escape = type.includes("json") ? (v: string) => JSON.stringify(v).slice(1, -1) : type.startsWith("application/x-www-form-urlencoded") ? encodeURIComponent : (v: string) => v;
      const r = replacePlaceholders(Buffer.from(ex.heldBody).toString("latin1"), replacing, escape);
      if (r.applied.length > 0) {
        ex.heldBody = Buffer.from(r.text, "latin1");
        for (const e of r.applied) applied.add(e);
      }
    }
    let text = `${h.method} ${ex.target.originForm} HTTP/1.1\r\nHost: ${ex.target.authority}\r\n`;
    // A held body was asked for with sluice's own `100 Continue`: the origin gets it whole.
    const skip = ex.heldBody ? SKIP_HELD_REQUEST : ex.wsUpgrade ? SKIP_WS_REQUEST : SKIP_REQUEST;
    text += cred ? serializeHeaders(h.headers.filter(([n]) => !sameHeader(cred, n)), h.connection, skip) : serializeHeaders(h.headers, h.connection, skip);
    // Framing comes from what we parsed and will enforce, never from copied header text; a
    // held body goes with the length of what is sent (it may have been redacted).
    if (ex.heldBody) text += `Content-Length: ${ex.heldBody.length}\r\n`;
    else if (h.chunked) text += "Transfer-Encoding: chunked\r\n";
    else if (h.contentLength !== null) text += `Content-Length: ${h.contentLength}\r\n`;
    // The upgrade is hop-by-hop: sluice asks for it itself, for websocket only.
    if (ex.wsUpgrade) text += "Connection: Upgrade\r\nUpgrade: websocket\r\n";
    if (ex.redactor) text = ex.redactor.apply(text);
    if (replacing.length > 0) {
      // Percent-encoded in the request line, as written (printable ASCII) in header values.
      const eol = text.indexOf("\r\n");
      const line = replacePlaceholders(text.slice(0, eol), replacing, encodeURIComponent);
      const rest = replacePlaceholders(text.slice(eol), replacing);
      text = line.text + rest.text;
      for (const e of [...line.applied, ...rest.applied]) applied.add(e);
    }
    // The real value goes in last, after the client's own header of that name was left out.
    if (cred) {
      text += `${cred.headerName}: ${cred.headerValue}\r\n`;
      applied.add(cred);
    }
    ex.injected = creds.filter((e) => applied.has(e));
    text += "\r\n";
    const headBytes = asciiHead(text);
    ex.bytesOut += headBytes.length;
    ex.lastActive = clock.now();
    if (ex.heldBody && ex.heldBody.length <= ONE_WRITE_BODY) {
      // Bun does not cork: head and a small held body go out as one write.
      const whole = Buffer.concat([typeof headBytes === "string" ? Buffer.from(headBytes, "latin1") : headBytes, ex.heldBody]);
      ex.bytesOut += ex.heldBody.length;
      ex.heldBody = null;
      send(up, whole, null);
      return;
    }
    const pending = c.buf;
    if (!ex.reqDone && !ex.stream && !ex.heldBody && pending && pending.length <= ONE_WRITE_BODY) {
      // The body bytes read with the head (usually all of a small body) go out in the same
      // write as the head: one send, and the origin reads the request in one go.
      c.phase = "request-body";
      c.buf = null;
      forwardRequestBody(ex, pending, headBytes);
      if (c.phase === "request-body") resumeClient(c);
      return;
    }
    send(up, headBytes, null);
    if (ex.stream && ex.stream.pendingOut.length > 0) {
      for (const piece of ex.stream.pendingOut) {
        ex.bytesOut += piece.length;
        send(up, piece, null);
      }
      ex.stream.pendingOut = [];
    }
    if (ex.heldBody) {
      ex.bytesOut += ex.heldBody.length;
      if (ex.heldBody.length > 0) send(up, ex.heldBody, null);
      ex.heldBody = null;
      return;
    }
    if (ex.reqDone) {
      // Pipelined bytes, if any, stay in c.buf until this exchange finishes.
      return;
    }
    c.phase = "request-body";
    c.buf = null;
    if (pending) forwardRequestBody(ex, pending);
    if (c.phase === "request-body") resumeClient(c);
  }

  /** `head`: the request head, not sent yet, to go out in one write with these body bytes. */
  function forwardRequestBody(ex: Exchange, chunk: Buffer, head?: string | Buffer): void {
    if (ex.stream) {
      streamRequestBody(ex, chunk);
      return;
    }
    const c = ex.client;
    const up = ex.upstream;
    if (ex.done || !up) return;
    let end: number;
    if (ex.reqChunked) {
      end = ex.reqChunked.feed(chunk, 0);
      if (end === CHUNKED_ERROR) {
        abortExchange(ex, 400, "malformed_request", "proxy.bad-chunked", `bad chunked request body: ${ex.reqChunked.error}`);
        return;
      }
      if (end === CHUNKED_INCOMPLETE) end = chunk.length;
    } else {
      end = Math.min(ex.reqRemaining, chunk.length);
      ex.reqRemaining -= end;
    }
    const body = end === chunk.length ? chunk : chunk.subarray(0, end);
    ex.bytesOut += body.length;
    send(up, head === undefined ? body : Buffer.concat([typeof head === "string" ? Buffer.from(head, "latin1") : head, body]), c);
    const finished = ex.reqChunked ? ex.reqChunked.done : ex.reqRemaining === 0;
    if (!finished) return;
    ex.reqDone = true;
    if (end < chunk.length) c.buf = chunk.subarray(end);
    c.phase = "busy";
  }

  // ---- DLP on request bodies (request-scan.ts) -------------------------------------------

  /**
   * Bytes of request bodies held right now, over all connections: past dlp.body.max_held_total
   * more bodies stream instead of waiting in memory (max_buffer x max_connections is 4 GiB).
   */
  let heldTotal = 0;
  /** Bytes of all responses held for injection scanning. */
  let heldResponseTotal = 0;

  /**
   * Whether a request's body is held (read whole, then scanned) rather than streamed: it fits
   * dlp.body.max_buffer and the budget of all held bodies. A chunked body has no length yet: it
   * is held until it outgrows the limits. A client that waits for `100 Continue` gets it from
   * sluice (RFC 9110 §10.1.1 lets a proxy answer it), so it cannot make its body stream.
   */
  function holdsBody(head: RequestHead, dlp: NonNullable<Policy["dlp"]>): boolean {
    if (heldTotal + (head.contentLength ?? 0) > dlp.maxHeldTotalBytes) return false;
    return head.chunked || head.contentLength! <= dlp.maxBufferBytes;
  }

  /** Bytes of streamed bodies scanned since the last collection (GC_EVERY_SCANNED_BYTES). */
  let scannedSinceGc = 0;

  /** Drops a held body, giving its bytes back to the budget. */
  function releaseHeld(ex: Exchange): void {
    releaseHeldResponse(ex);
    if (ex.held === null) return;
    heldTotal -= ex.held.size;
    ex.held = null;
  }

  /**
   * The body's data in `chunk` (chunked framing removed), how far the body reaches in `chunk`,
   * and whether it ended; null after answering a framing error.
   */
  function bodyData(ex: Exchange, chunk: Buffer): { data: Buffer[]; end: number; finished: boolean } | null {
    const data: Buffer[] = [];
    let end: number;
    if (ex.reqChunked) {
      end = ex.reqChunked.feed(chunk, 0, (a, b) => data.push(chunk.subarray(a, b)));
      if (end === CHUNKED_ERROR) {
        abortExchange(ex, 400, "malformed_request", "proxy.bad-chunked", `bad chunked request body: ${ex.reqChunked.error}`);
        return null;
      }
      if (end === CHUNKED_INCOMPLETE) end = chunk.length;
      return { data, end, finished: ex.reqChunked.done };
    }
    end = Math.min(ex.reqRemaining, chunk.length);
    ex.reqRemaining -= end;
    if (end > 0) data.push(end === chunk.length ? chunk : chunk.subarray(0, end));
    return { data, end, finished: ex.reqRemaining === 0 };
  }

  /**
   * Collects a held body. Past dlp.body.max_buffer (a chunked body has no length to judge it by
   * up front) or when all held bodies pass dlp.body.max_held_total, it streams instead, what was held first.
   */
  function holdRequestBody(ex: Exchange, chunk: Buffer): void {
    const held = ex.held!;
    const got = bodyData(ex, chunk);
    if (got === null || ex.done) return;
    for (const d of got.data) {
      held.parts.push(d);
      held.size += d.length;
      heldTotal += d.length;
    }
    if (got.finished) {
      ex.reqDone = true;
      if (got.end < chunk.length) ex.client.buf = chunk.subarray(got.end);
      judgeHeld(ex);
      return;
    }
    const dlp = deps.policy().dlp;
    if (!dlp || (held.size <= dlp.maxBufferBytes && heldTotal <= dlp.maxHeldTotalBytes)) return;
    if (isEncoded(headerValue(ex.head.headers, "content-encoding"))) {
      refuseBody(ex, "dlp.body-too-large", `a compressed request body over dlp.body.max_buffer (${dlp.maxBufferBytes} bytes) cannot be scanned`, null, "body_too_large");
      return;
    }
    // Too large to hold: from here on it streams, what was held going first. Its head was left
    // for judgeHeld: it is scanned now, before anything goes upstream.
    releaseHeld(ex);
    const policy = deps.policy();
    ex.headVerdict = inspectHead(ex.action as HttpRequestAction, dlp.engine);
    const headDecision = applyMode(withContent(ex.decision, ex.headVerdict, policy.mode === "audit"), { policy, killswitch: false, agentLists: null });
    (ex as { decision: Decision }).decision = headDecision;
    if (headDecision.verdict === "block") {
      refuseBody(ex, headDecision.reasons[0]!.rule, "", ex.headVerdict);
      return;
    }
    ex.redactor = headDecision.verdict === "redact" ? ex.headVerdict!.redactor : null;
    ex.stream = new StreamedBody(dlp, ex.head.chunked);
    const out = ex.stream.push(Buffer.concat(held.parts));
    if (out.stop) {
      refuseBody(ex, out.stop.decision.reasons[0]!.rule, "", mergeVerdicts(ex.headVerdict, out.stop));
      if (ex.done) return;
    }
    ex.client.phase = "busy";
    ex.stream.pendingOut = out.send;
    sendUpstream(ex);
  }

  /** A whole held body: judged, then refused, or sent (maybe redacted). */
  function judgeHeld(ex: Exchange): void {
    const c = ex.client;
    const policy = deps.policy();
    const dlp = policy.dlp;
    const held = ex.held!;
    releaseHeld(ex);
    c.phase = "busy";
    const whole = held.parts.length === 1 ? held.parts[0]! : Buffer.concat(held.parts);
    const shadow = shadowMcp(ex, whole, policy);
    let misuse = judgeBodyPlaceholders(ex.action as HttpRequestAction, whole, policy.credentials);
    if (shadow !== null && policy.mcpShadow!.action === "block") misuse ??= shadow;
    if (misuse !== null) {
      const d = applyMode({ verdict: "block", reasons: [misuse] }, { policy, killswitch: false, agentLists: null });
      if (d.verdict === "block") {
        refuseBody(ex, misuse.rule, misuse.detail, null, misuse.code);
        return;
      }
    }
    if (!dlp) {
      ex.heldBody = Buffer.concat(held.parts);
      sendUpstream(ex);
      return;
    }
    const body = held.parts.length === 1 ? held.parts[0]! : Buffer.concat(held.parts);
    const outcome = judgeHeldBody(dlp, ex.action as HttpRequestAction, body);
    if (!outcome.ok) {
      refuseBody(ex, outcome.rule, outcome.detail, null, outcome.code);
      return;
    }
    let decision = applyMode(withContent(ex.egressDecision, outcome.verdict, policy.mode === "audit"), { policy, killswitch: false, agentLists: null });
    // mcp.shadow: warn records the shadow MCP message with the request.
    if (shadow !== null && policy.mcpShadow!.action === "warn") decision = { ...decision, verdict: decision.verdict === "allow" ? "warn" : decision.verdict, reasons: [...(decision.verdict === "allow" ? [shadow] : []), ...decision.reasons, ...(decision.verdict === "allow" ? [] : [shadow])] };
    (ex as { decision: Decision }).decision = decision;
    if (decision.verdict === "block") {
      refuseBody(ex, decision.reasons[0]!.rule, decision.reasons[0]!.detail, null);
      return;
    }
    ex.redactor = decision.verdict === "redact" ? (outcome.verdict?.redactor ?? null) : null;
    ex.heldBody = decision.verdict === "redact" ? outcome.body : body;
    sendUpstream(ex);
  }

  /**
   * Shadow MCP: a held body that is an MCP JSON-RPC message, bound for a host no mcp.servers
   * entry names (mcp.shadow; bodies held for DLP only: a streamed one is not read for this).
   */
  function shadowMcp(ex: Exchange, body: Uint8Array, policy: Policy): Reason | null {
    const shadow = policy.mcpShadow;
    if (shadow === null || shadow.servers?.match(ex.action.host, ex.action.port)) return null;
    // Read as the origin will: a compressed body is decoded first (within the DLP limits; one that
    // cannot be is DLP's to refuse).
    let plain = body;
    const encoding = headerValue(ex.head.headers, "content-encoding");
    if (isEncoded(encoding) && policy.dlp) {
      const inflated = decodeContentEncoding(body, encoding, policy.dlp.inflate, zlib);
      if (!inflated.ok) return null;
      plain = inflated.bytes;
    }
    const method = mcpMethodIn(plain);
    if (method === null) return null;
    return { rule: "mcp.shadow-server", code: "shadow_mcp", detail: `MCP ${method} sent over HTTP to ${ex.action.host}, which no mcp.servers entry names` };
  }

  /**
   * Refuses a request because of its body, before or while it goes upstream: 403 (the block
   * response), the upstream connection cut so the origin never sees a complete request. The
   * client connection is kept only when the whole body was read and the client wants it kept.
   */
  function refuseBody(ex: Exchange, rule: string, detail: string, verdict: ContentVerdict | null, code: ReasonCode = "dlp_finding"): void {
    if (ex.done) return;
    const policy = deps.policy();
    let decision: Decision;
    if (verdict) decision = applyMode(withContent(ex.egressDecision, verdict, policy.mode === "audit"), { policy, killswitch: false, agentLists: null });
    else if (code === "dlp_finding") decision = ex.decision;
    else decision = { verdict: "block", reasons: [{ rule, code, detail }, ...ex.egressDecision.reasons] };
    if (decision.verdict !== "block") {
      // Audit mode: recorded as what would have happened, and the request goes on.
      (ex as { decision: Decision }).decision = decision;
      return;
    }
    ex.done = true;
    const c = ex.client;
    const up = cutUpstream(ex);
    releaseHeld(ex);
    ex.stream = null;
    const r = blockResponse(ex, decision, !ex.reqDone || ex.clientClose);
    record(ex, r.status, decision, up?.ip);
    c.ex = null;
    if (ex.responseStarted) {
      c.phase = "closed";
      c.socket?.terminate();
      return;
    }
    respond(c, r);
    if (!r.close) {
      c.phase = "head";
      resumeClient(c);
      if (c.buf && c.buf.length > 0) processHeads(c, 0);
    }
  }

  /** A streamed body: scanned piece by piece, the overlap held back, cut off on a block. */
  function streamRequestBody(ex: Exchange, chunk: Buffer): void {
    const c = ex.client;
    const up = ex.upstream;
    const stream = ex.stream!;
    if (ex.done || !up) return;
    const got = bodyData(ex, chunk);
    if (got === null || ex.done) return;
    for (const d of got.data) {
      scannedSinceGc += d.length;
      if (scannedSinceGc >= GC_EVERY_SCANNED_BYTES) {
        // Scanning makes short-lived strings faster than the collector returns memory on its
        // own: a long upload would grow RSS by hundreds of MB of garbage. Collect as we go.
        scannedSinceGc = 0;
        Bun.gc(true);
      }
      const out = stream.push(d);
      if (out.stop) {
        // In audit mode refuseBody only records what would have happened, and the body goes on.
        refuseBody(ex, out.stop.decision.reasons[0]!.rule, "", mergeVerdicts(ex.headVerdict, out.stop));
        if (ex.done) return;
      }
      for (const piece of out.send) {
        ex.bytesOut += piece.length;
        send(up, piece, c);
      }
    }
    if (!got.finished) return;
    for (const piece of stream.end()) {
      ex.bytesOut += piece.length;
      send(up, piece, c);
    }
    if (stream.verdict) {
      const policy = deps.policy();
      const decision = withContent(ex.egressDecision, mergeVerdicts(ex.headVerdict, stream.verdict), policy.mode === "audit");
      (ex as { decision: Decision }).decision = applyMode(decision, { policy, killswitch: false, agentLists: null });
    }
    ex.reqDone = true;
    if (got.end < chunk.length) c.buf = chunk.subarray(got.end);
    c.phase = "busy";
  }

  /** Takes the exchange's upstream connection away and resets it: the origin sees the request cut short. */
  function cutUpstream(ex: Exchange): Upstream | null {
    const up = ex.upstream;
    ex.upstream = null;
    if (up) {
      up.owner = null;
      releasePeer(up);
      up.socket?.terminate();
    }
    return up;
  }

  /** A failure mid-exchange: answer if nothing of the response went out yet, then close both. */
  function abortExchange(ex: Exchange, status: number, code: ReasonCode, rule: string, detail: string, block = false): void {
    if (ex.done) return;
    ex.done = true;
    releaseHeld(ex);
    const c = ex.client;
    const up = cutUpstream(ex);
    record(ex, ex.responseStarted ? (ex.res?.status ?? status) : status, {
      verdict: "block",
      reasons: [{ rule, code, detail }],
    }, up?.ip);
    c.ex = null;
    if (ex.responseStarted) {
      c.phase = "closed";
      c.socket?.terminate();
    } else {
      respond(c, { status, rule, reason: code, detail, block, close: true, receipt: ex.receipt });
    }
  }

  // ---- upstream side ------------------------------------------------------------------

  function onResponseData(ex: Exchange, chunk: Buffer): void {
    if (ex.ws) {
      wsFeed(ex, "server", chunk);
      return;
    }
    let data = chunk;
    while (!ex.res) {
      const prev = ex.resBuf?.length ?? 0;
      const buf = ex.resBuf ? Buffer.concat([ex.resBuf, data]) : data;
      const end = findHeadEnd(buf, prev);
      if (end < 0) {
        if (buf.length > MAX_RESPONSE_HEAD) abortExchange(ex, 502, "upstream_error", "proxy.bad-response", "response head too large");
        else ex.resBuf = buf;
        return;
      }
      ex.resBuf = null;
      const res = parseResponseHead(buf.toString("latin1", 0, end));
      if (res.error) {
        abortExchange(ex, 502, "upstream_error", "proxy.bad-response", res.message);
        return;
      }
      data = buf.subarray(end);
      ex.bytesIn += end;
      if (res.status >= 100 && res.status < 200) {
        // 101 only where a WebSocket was asked for (other upgrades are stripped); any other 1xx is
        // forwarded to 1.1 clients.
        if (res.status === 101) {
          const problem = ex.wsUpgrade ? upgradeResponseProblem(res.headers, res.connection) : "unexpected 101 Switching Protocols";
          if (problem !== null) abortExchange(ex, 502, "upstream_error", "proxy.bad-response", problem);
          else startWebSocket(ex, res, data);
          return;
        }
        if (ex.head.minor === 1) send(ex.client, Buffer.from(`HTTP/1.1 ${res.status} ${res.reason}\r\n${serializeHeaders(res.headers, res.connection)}\r\n`, "latin1"), ex.upstream);
        if (data.length === 0) return;
        continue;
      }
      ex.res = res;
      // A refused upgrade: the origin may have kept state for it; its connection is not reused.
      if (ex.wsUpgrade) markDesynced(ex);
      startResponse(ex, res, buf, end);
      return;
    }
    forwardResponseBody(ex, data);
  }

  /** `raw` holds the response head up to `headEnd`, then the first body bytes. */
  function startResponse(ex: Exchange, received: ResponseHead, raw: Buffer, headEnd: number): void {
    const first = raw.subarray(headEnd);
    let res = received;
    if (ex.injected.length > 0) {
      // The credentials' values must not reach the agent, even echoed: replaced in the head here,
      // in the body as it streams (below), never passed on as received.
      const echo = new EchoGuard(ex.injected.map((e) => [e.secret, e.placeholder] as const));
      ex.echo = echo;
      res = { ...res, headers: res.headers.map(([n, v]) => [n, echo.text(v)]), verbatim: false };
      ex.res = res;
    }
    if (!responseHasBody(ex.head.method, res.status)) ex.resMode = "none";
    else if (res.chunked) {
      ex.resMode = "chunked";
      ex.resChunked = new ChunkedReader();
      ex.dechunk = ex.head.minor === 0;
    } else if (res.contentLength !== null) {
      ex.resMode = "length";
      ex.resRemaining = res.contentLength;
    } else ex.resMode = "close";
    if (ex.resMode === "close" || res.close || ex.dechunk || !ex.reqDone) ex.clientClose = true;
    const inj = ex.resMode === "none" ? null : holdsResponse(ex, res);
    if (ex.echo !== null && ex.resMode !== "none" && (inj === null || responseKind(headerValue(res.headers, "content-type")) !== "event-stream")) {
      // Streamed through the guard, decoded when compressed (and scanned window by window when
      // it is to be scanned): an event stream keeps its own path, guarded event by event.
      startWindowed(ex, inj, [], first, inj === null ? null : `scanned window by window (the request carried ${ex.injected.map((e) => `credential ${e.name}`).join(", ")})`);
      return;
    }
    /** Audit mode: a response that cannot be read is passed on unread (and recorded so). */
    let unread = false;
    if (inj !== null && responseKind(headerValue(res.headers, "content-type")) === "event-stream") {
      const encoding = headerValue(res.headers, "content-encoding");
      if (isEncoded(encoding)) {
        // Decoded as it streams, read, and passed on decoded; a coding we cannot decode is
        // refused rather than passed on unread.
        ex.bodyDecoder = decoderFor(ex, encoding!, inj.inflate.maxRatio, {
          live: () => ex.sse !== null,
          pass: (bytes) => passEvents(ex, bytes, false),
          end: () => endEventStream(ex),
          fail: (message) => {
            log.warn("a compressed event stream could not be decoded; stream ended", { error: message });
            cutStreamOnFailure(ex, "body_undecodable", `the event stream could not be decoded (${message})`);
          },
        });
        if (ex.bodyDecoder === null) {
          const detail = `an event stream with Content-Encoding ${encoding} cannot be decoded as it streams`;
          if (deps.policy().mode !== "audit") {
            abortExchange(ex, 403, "body_undecodable", "inj.response-encoded-stream", detail, true);
            return;
          }
          // Audit mode changes nothing on the wire: passed on unread, recorded as a would-be block.
          unread = true;
          (ex as { decision: Decision }).decision = { ...ex.decision, wouldBlock: true, reasons: [{ rule: "inj.response-encoded-stream", code: "body_undecodable", detail }, ...ex.decision.reasons] };
        } else {
          startEventStream(ex, inj, raw.subarray(headEnd));
          return;
        }
      } else {
        startEventStream(ex, inj, raw.subarray(headEnd));
        return;
      }
    }
    if (inj !== null && !unread) {
      // Held: nothing reaches the client until the whole body is judged (judgeResponse).
      ex.resHeld = { parts: [], size: 0, inj };
      if (ex.resMode === "length" && ex.resRemaining > inj.maxBufferBytes) {
        responseTooLarge(ex, raw.subarray(headEnd));
        return;
      }
      holdResponseBody(ex, raw.subarray(headEnd));
      return;
    }
    ex.responseStarted = true;
    // The common case: a clean HTTP/1.1 head to a keep-alive client goes out as received, with
    // the first body piece, straight from the upstream's buffer: no copy, no re-serialising.
    if (res.verbatim && !ex.clientClose && (ex.resMode === "length" || ex.resMode === "none")) {
      const take = ex.resMode === "length" ? Math.min(first.length, ex.resRemaining) : 0;
      ex.resRemaining -= take;
      ex.bytesIn += take;
      const out = headEnd + take === raw.length ? raw : raw.subarray(0, headEnd + take);
      send(ex.client, out, ex.upstream);
      if (ex.resRemaining === 0) {
        if (take < first.length) markDesynced(ex);
        finishExchange(ex);
      }
      return;
    }
    let text = `HTTP/1.1 ${res.status} ${res.reason}\r\n${serializeHeaders(res.headers, res.connection, SKIP_RESPONSE)}`;
    // Framing comes from what we parsed and will enforce, never from copied header text.
    if (ex.resMode === "chunked" && !ex.dechunk) text += "Transfer-Encoding: chunked\r\n";
    else if (res.contentLength !== null && (ex.resMode === "length" || ex.head.method.toUpperCase() === "HEAD")) {
      text += `Content-Length: ${res.contentLength}\r\n`;
    }
    text += ex.clientClose ? "Connection: close\r\n\r\n" : "\r\n";
    if (ex.resMode === "none" || (ex.resMode === "length" && ex.resRemaining === 0)) {
      send(ex.client, asciiHead(text), ex.upstream);
      if (first.length > 0) markDesynced(ex);
      finishExchange(ex);
      return;
    }
    // Bun does not cork writes: head and a small first body piece go out as one buffer, one
    // send instead of two.
    if (first.length > 0 && first.length <= 16 * 1024 && ex.resMode === "length") {
      const take = Math.min(first.length, ex.resRemaining);
      ex.resRemaining -= take;
      ex.bytesIn += take;
      send(ex.client, Buffer.concat([Buffer.from(text, "latin1"), first.subarray(0, take)]), ex.upstream);
      if (ex.resRemaining === 0) {
        if (take < first.length) markDesynced(ex);
        finishExchange(ex);
      }
      return;
    }
    send(ex.client, asciiHead(text), ex.upstream);
    if (first.length > 0) forwardResponseBody(ex, first);
  }

  /** Bytes past the end of a response: the origin and we disagree on framing. Never reuse it. */
  function markDesynced(ex: Exchange): void {
    if (ex.upstream) ex.upstream.desynced = true;
  }

  /**
   * A decoder for a response body read as it streams (an event stream, a windowed response):
   * decoded bytes go to `pass` (false: the response was stopped), the end to `end`, a failure
   * to `fail`; nothing happens once the exchange is over or `live` says the reader is gone.
   */
  function decoderFor(
    ex: Exchange,
    encoding: string,
    maxRatio: number,
    reader: { live(): boolean; pass(bytes: Uint8Array): boolean; end(): void; fail(message: string): void },
  ): StreamDecoder | null {
    const on = () => reader.live() && !ex.done;
    return createStreamDecoder(
      encoding,
      {
        onData: (bytes) => {
          if (on() && !reader.pass(bytes)) ex.bodyDecoder?.destroy();
        },
        onEnd: () => {
          if (!on()) return;
          // Compressed data that ends before the body does: what follows is not ours to reuse.
          if (!upstreamBodyDone(ex)) markDesynced(ex);
          reader.end();
        },
        onError: (message) => {
          if (on()) reader.fail(message);
        },
      },
      maxRatio,
    );
  }

  /** Whether the upstream's response body has been read to its end (by length or last chunk). */
  function upstreamBodyDone(ex: Exchange): boolean {
    return (ex.resMode === "length" && ex.resRemaining === 0) || (ex.resMode === "chunked" && ex.resChunked!.done) || ex.resMode === "none";
  }

  // ---- responses held for injection scanning (response-scan.ts) ------------------------

  /** The injection settings when this response is to be held and scanned; null to stream it. */
  function holdsResponse(ex: Exchange, res: ResponseHead): InjectionSettings | null {
    const inj = deps.policy().injection;
    if (inj === null || ex.head.method.toUpperCase() === "HEAD") return null;
    if (responseKind(headerValue(res.headers, "content-type")) === null) return null;
    const exempt = inj.exempt?.match(ex.action.host, ex.action.port);
    if (exempt) {
      ex.note = `response not scanned for prompt injection: ${ex.action.host} is in injection.exempt_hosts (${exempt})`;
      return null;
    }
    return inj;
  }

  /**
   * The body bytes in `chunk` (framing removed) for a response sluice reads before passing on
   * (held, or an event stream), and whether the body ended with them; null when the framing was
   * bad (the exchange is aborted). Bytes past the body's end mark the upstream desynced.
   */
  function readResponseBody(ex: Exchange, chunk: Buffer): { data: Buffer[]; complete: boolean } | null {
    const data: Buffer[] = [];
    switch (ex.resMode) {
      case "length": {
        const take = Math.min(ex.resRemaining, chunk.length);
        ex.resRemaining -= take;
        ex.bytesIn += take;
        if (take > 0) data.push(chunk.subarray(0, take));
        if (take < chunk.length) markDesynced(ex);
        return { data, complete: ex.resRemaining === 0 };
      }
      case "close":
        ex.bytesIn += chunk.length;
        return { data: [chunk], complete: false };
      case "chunked": {
        const reader = ex.resChunked!;
        let end = reader.feed(chunk, 0, (a, b) => data.push(chunk.subarray(a, b)));
        if (end === CHUNKED_ERROR) {
          abortExchange(ex, 502, "upstream_error", "proxy.bad-response", `bad chunked response: ${reader.error}`);
          return null;
        }
        if (end === CHUNKED_INCOMPLETE) end = chunk.length;
        ex.bytesIn += end;
        if (end < chunk.length) markDesynced(ex);
        return { data, complete: reader.done };
      }
      case "none":
        return { data, complete: false };
    }
  }

  /** Collects response body bytes (framing removed) until the body ends, then judges it. */
  function holdResponseBody(ex: Exchange, chunk: Buffer): void {
    if (ex.resMode === "none") return;
    const read = readResponseBody(ex, chunk);
    if (read === null) return;
    const held = ex.resHeld!;
    for (const d of read.data) {
      held.parts.push(d);
      held.size += d.length;
      heldResponseTotal += d.length;
    }
    // One response past max_buffer, or all held responses past MAX_HELD_RESPONSES x max_buffer
    // (memory stays bounded however many agents fetch pages at once).
    if (held.size > held.inj.maxBufferBytes || heldResponseTotal > MAX_HELD_RESPONSES * held.inj.maxBufferBytes) {
      responseTooLarge(ex, Buffer.alloc(0), held.size <= held.inj.maxBufferBytes);
      return;
    }
    if (read.complete) judgeResponse(ex);
  }

  function releaseHeldResponse(ex: Exchange): void {
    if (ex.resHeld === null) return;
    heldResponseTotal -= ex.resHeld.size;
    ex.resHeld = null;
  }

  /**
   * A scannable response over injection.max_buffer: refused (oversize: block, the default), or
   * sent on unscanned and recorded (oversize: pass): what was held first, then the rest as it
   * comes, delimited by the connection's close (the held part lost its framing).
   */
  function responseTooLarge(ex: Exchange, pending: Buffer, allHeld = false): void {
    const held = ex.resHeld!;
    const res = ex.res!;
    releaseHeldResponse(ex);
    const why = allHeld
      ? `the responses held for scanning reached ${MAX_HELD_RESPONSES} x injection.max_buffer (${MAX_HELD_RESPONSES * held.inj.maxBufferBytes} bytes)`
      : `a ${res.status} response over injection.max_buffer (${held.inj.maxBufferBytes} bytes)`;
    if (held.inj.oversize === "block") {
      abortExchange(ex, 403, "body_too_large", "inj.response-too-large", `${why} cannot be scanned`, true);
      return;
    }
    if (held.inj.oversize === "stream" && startWindowed(ex, held.inj, held.parts, pending, "scanned as it streamed (over injection.max_buffer; injection.oversize: stream)")) return;
    ex.note = `${why} was sent on unscanned (injection.oversize: ${held.inj.oversize})`;
    // Close-delimited from here: what was held lost its chunk framing, so the rest is sent
    // de-chunked and the client reads until the connection ends.
    ex.clientClose = true;
    if (ex.resMode === "chunked") ex.dechunk = true;
    ex.responseStarted = true;
    const head = `HTTP/1.1 ${res.status} ${res.reason}\r\n${serializeHeaders(res.headers, res.connection, SKIP_RESPONSE)}Connection: close\r\n\r\n`;
    send(ex.client, Buffer.concat([Buffer.from(head, "latin1"), ...held.parts]), ex.upstream);
    if (pending.length > 0) forwardResponseBody(ex, pending);
    else if ((ex.resMode === "length" && ex.resRemaining === 0) || (ex.resMode === "chunked" && ex.resChunked!.done)) finishExchange(ex);
  }

  /**
   * A response over injection.max_buffer scanned as it streams (oversize: stream): `held` (body
   * bytes, framing removed) and then `pending` (as received) go through the windowed scan, and
   * on to the client re-framed as chunks (close-delimited for HTTP/1.0), decoded when compressed.
   */
  /**
   * Starts the windowed scan; false when the response cannot be read as it streams (a charset or
   * coding sluice cannot decode) and audit mode wants it passed on unread instead (the caller
   * does that; enforce mode refuses it here).
   */
  function startWindowed(ex: Exchange, inj: InjectionSettings | null, held: readonly Buffer[], pending: Buffer, note: string | null): boolean {
    const res = ex.res!;
    const contentType = headerValue(res.headers, "content-type");
    const audit = deps.policy().mode === "audit";
    const echo = ex.echo;
    const refuse = (rule: string, detail: string): boolean => {
      ex.windowed = null;
      ex.bodyDecoder = null;
      // A guarded response is never passed on unread, audit mode or not: it may hold the credential.
      if (!audit || echo !== null) {
        abortExchange(ex, 403, "body_undecodable", rule, detail, true);
        return true;
      }
      (ex as { decision: Decision }).decision = { ...ex.decision, wouldBlock: true, reasons: [{ rule, code: "body_undecodable", detail }, ...ex.decision.reasons] };
      return false;
    };
    let scan: WindowedScan | null = null;
    if (inj !== null) {
      try {
        // A window never larger than what a response may hold.
        scan = new WindowedScan(inj, audit, contentType, Math.min(STREAM_WINDOW, inj.maxBufferBytes));
      } catch {
        return refuse("inj.response-unknown-charset", `response body: charset of ${JSON.stringify(contentType)} cannot be decoded, so it cannot be scanned`);
      }
    }
    ex.windowed =
      echo === null
        ? scan!
        : {
            push(bytes, end = false) {
              const r = scan ? scan.push(bytes, end) : { out: [bytes], stop: false };
              if (r.stop) return r;
              const out: Uint8Array[] = r.out.map((b) => echo.push(b));
              if (end) out.push(echo.push(new Uint8Array(0), true));
              return { out, stop: false };
            },
            decision: () => scan?.decision() ?? null,
          };
    if (note !== null) ex.note = note;
    const encoding = headerValue(res.headers, "content-encoding");
    if (isEncoded(encoding)) {
      ex.bodyDecoder = decoderFor(ex, encoding!, (inj ?? deps.policy().dlp)?.inflate.maxRatio ?? 100, {
        live: () => ex.windowed !== null,
        pass: (bytes) => passWindow(ex, bytes, false),
        end: () => endWindowed(ex),
        fail: (message) => {
          log.warn("a compressed response could not be decoded as it streamed; response cut", { error: message });
          endStreamHere(ex, { verdict: "block", reasons: [{ rule: "inj.response-encoded-stream", code: "body_undecodable", detail: `the response could not be decoded (${message})` }] });
        },
      });
      if (ex.bodyDecoder === null) return refuse("inj.response-encoded-stream", `a response with Content-Encoding ${encoding} cannot be decoded as it streams`);
    }
    sendStreamHead(ex);
    for (const d of held) if (!feedWindow(ex, d)) return true;
    if (pending.length > 0) windowedBody(ex, pending);
    else if ((ex.resMode === "length" && ex.resRemaining === 0) || (ex.resMode === "chunked" && ex.resChunked!.done)) windowEnded(ex);
    return true;
  }

  /** Body bytes as received of a response scanned as it streams. */
  function windowedBody(ex: Exchange, chunk: Buffer): void {
    if (ex.resMode === "none") return;
    const read = readResponseBody(ex, chunk);
    if (read === null) return;
    for (const d of read.data) if (!feedWindow(ex, d)) return;
    if (read.complete) windowEnded(ex);
  }

  /** Body bytes (framing removed) into the decoder or the scan; false when the response was stopped. */
  function feedWindow(ex: Exchange, bytes: Uint8Array): boolean {
    if (ex.bodyDecoder !== null) {
      ex.bodyDecoder.write(bytes);
      return ex.windowed !== null;
    }
    return passWindow(ex, bytes, false);
  }

  /** Judges the next bytes (`end`: the last) and sends what is clean; false when the response was stopped here. */
  function passWindow(ex: Exchange, bytes: Uint8Array, end: boolean): boolean {
    let r: { out: Uint8Array[]; stop: boolean };
    try {
      r = ex.windowed!.push(bytes, end);
    } catch (err) {
      log.error("injection scan of a streamed response failed; response cut", { error: String(err) });
      endStreamHere(ex, { verdict: "block", reasons: [{ rule: "inj.scan-failed", code: "internal_error", detail: "the response could not be scanned" }] });
      return false;
    }
    for (const b of r.out) {
      if (b.length === 0) continue;
      send(ex.client, ex.sseChunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, CRLF_BYTES]) : Buffer.from(b), ex.upstream);
    }
    if (r.stop) {
      endStreamHere(ex, ex.windowed!.decision()!);
      return false;
    }
    return true;
  }

  /** The upstream's body is complete: ended here, or once its decoder has let out the rest. */
  function windowEnded(ex: Exchange): void {
    if (ex.bodyDecoder !== null) ex.bodyDecoder.end();
    else endWindowed(ex);
  }

  /** The last window: judged, passed on, the client's body ended, the record written. */
  function endWindowed(ex: Exchange): void {
    const windowed = ex.windowed!;
    if (!passWindow(ex, new Uint8Array(0), true)) return;
    if (ex.sseChunked) send(ex.client, LAST_CHUNK_BYTES, ex.upstream);
    const d = windowed.decision();
    if (d !== null) (ex as { decision: Decision }).decision = { ...d, reasons: [...d.reasons, ...ex.decision.reasons] };
    ex.windowed = null;
    ex.bodyDecoder = null;
    finishExchange(ex);
  }

  /**
   * A response passed on as it is judged ends here with decision `d` (what the client should
   * read about it was sent already): readers and decoder dropped, the upstream cut, the record
   * written, the client's connection closed. A windowed response stopped this way gets no last
   * chunk, so an HTTP/1.1 client sees it cut short, not complete.
   */
  function endStreamHere(ex: Exchange, d: Decision): void {
    (ex as { decision: Decision }).decision = d;
    stopHolding(ex);
    ex.sse = null;
    ex.windowed = null;
    ex.bodyDecoder?.destroy();
    ex.bodyDecoder = null;
    ex.done = true;
    const up = cutUpstream(ex);
    record(ex, ex.res?.status ?? 200, d, up?.ip);
    ex.clientClose = true;
    finishClient(ex);
  }

  /**
   * The head of a response passed on as it is judged (an event stream, a windowed response):
   * re-framed as chunks for an HTTP/1.1 client, delimited by the connection's close for an
   * HTTP/1.0 one; without Content-Encoding when it goes on decoded.
   */
  function sendStreamHead(ex: Exchange): void {
    const res = ex.res!;
    ex.sseChunked = ex.head.minor === 1;
    if (!ex.sseChunked) ex.clientClose = true;
    if (ex.resMode === "chunked") ex.dechunk = true;
    ex.responseStarted = true;
    const headers = ex.bodyDecoder === null ? res.headers : res.headers.filter(([n]) => n.toLowerCase() !== "content-encoding");
    const head = `HTTP/1.1 ${res.status} ${res.reason}\r\n${serializeHeaders(headers, res.connection, SKIP_RESPONSE)}${ex.sseChunked ? "Transfer-Encoding: chunked\r\n" : ""}${ex.clientClose ? "Connection: close\r\n" : ""}\r\n`;
    send(ex.client, asciiHead(head), ex.upstream);
  }

  /** Sends the head of an event stream and starts passing on its events as each is judged. */
  function startEventStream(ex: Exchange, inj: InjectionSettings, first: Buffer): void {
    ex.sse = new SseStream(inj, deps.policy().mode === "audit", SSE_HOLD_MS);
    sendStreamHead(ex);
    if (first.length > 0) eventStreamBody(ex, first);
    else if (ex.resMode === "length" && ex.resRemaining === 0) upstreamStreamEnded(ex);
  }

  function sendEventText(ex: Exchange, text: string): void {
    if (text.length === 0) return;
    // Whole events: a credential's value inside one is replaced before it goes.
    const bytes = Buffer.from(ex.echo === null ? text : ex.echo.text(text), "utf8");
    send(ex.client, ex.sseChunked ? Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, CRLF_BYTES]) : bytes, ex.upstream);
  }

  /** Body bytes of an event stream (framing removed): judged event by event, passed on or stopped. */
  function eventStreamBody(ex: Exchange, chunk: Buffer): void {
    if (ex.resMode === "none") return;
    const read = readResponseBody(ex, chunk);
    if (read === null) return;
    if (ex.bodyDecoder !== null) {
      for (const d of read.data) ex.bodyDecoder.write(d);
    } else for (const d of read.data) if (!passEvents(ex, d, false)) return;
    if (read.complete) upstreamStreamEnded(ex);
  }

  /** Drops the timers of what is held to be scanned, events or messages (the exchange is over). */
  function stopHolding(ex: Exchange): void {
    if (ex.sseFlush !== null) clearTimeout(ex.sseFlush);
    if (ex.wsFlush !== null) clearTimeout(ex.wsFlush);
    ex.sseFlush = ex.wsFlush = null;
  }

  /** The upstream's event stream is complete: ended here, or once its decoder has let out the rest. */
  function upstreamStreamEnded(ex: Exchange): void {
    if (ex.bodyDecoder !== null) ex.bodyDecoder.end();
    else endEventStream(ex);
  }

  /**
   * Judges the next stream bytes (`end`: the last) and passes on what is clean; false when the
   * stream was ended here (stopped by the scan, or the scan failed: fail closed).
   */
  function passEvents(ex: Exchange, bytes: Uint8Array, end: boolean, flush = false): boolean {
    let r: { out: string; stop: boolean; wait: number };
    try {
      r = flush ? ex.sse!.flush() : ex.sse!.push(bytes, end);
    } catch (err) {
      log.error("injection scan of an event stream failed; stream ended", { error: String(err) });
      cutStreamOnFailure(ex);
      return false;
    }
    sendEventText(ex, r.out);
    if (r.stop) {
      stopEventStream(ex);
      return false;
    }
    // Events held to be scanned with the next ones: scanned and passed on when the hold is over.
    if (r.wait > 0 && ex.sseFlush === null)
      ex.sseFlush = setTimeout(() => {
        ex.sseFlush = null;
        if (ex.sse !== null && !ex.done) passEvents(ex, new Uint8Array(0), false, true);
      }, Math.ceil(r.wait));
    return true;
  }

  /** A scanner (or decoder) failure in an event stream: the client's stream ends where it is (fail closed). */
  function cutStreamOnFailure(ex: Exchange, code: ReasonCode = "internal_error", detail = "the event stream could not be scanned"): void {
    const rule = code === "internal_error" ? "inj.scan-failed" : "inj.response-encoded-stream";
    // The client reads why its stream ended, as after a block, not a stream that just stops.
    sendEventText(ex, `event: error\ndata: ${JSON.stringify({ error: "blocked by sluice", rule, reason: code, detail })}\n\n`);
    if (ex.sseChunked) send(ex.client, LAST_CHUNK_BYTES, null);
    endStreamHere(ex, { verdict: "block", reasons: [{ rule, code, detail }] });
  }

  /** The upstream's stream ended: judge what is left, end the client's stream, record. */
  function endEventStream(ex: Exchange): void {
    const sse = ex.sse!;
    if (!passEvents(ex, new Uint8Array(0), true)) return;
    if (ex.sseChunked) send(ex.client, LAST_CHUNK_BYTES, ex.upstream);
    const d = sse.decision();
    if (d !== null) (ex as { decision: Decision }).decision = { ...d, reasons: [...d.reasons, ...ex.decision.reasons] };
    stopHolding(ex);
    ex.sse = null;
    ex.bodyDecoder = null;
    finishExchange(ex);
  }

  /** The score reached the threshold: a final `error` event, the stream ended, the upstream cut. */
  function stopEventStream(ex: Exchange): void {
    const sse = ex.sse!;
    sendEventText(ex, sse.stopEvent());
    if (ex.sseChunked) send(ex.client, LAST_CHUNK_BYTES, null);
    endStreamHere(ex, sse.decision()!);
  }


  /** The held response is complete: scan it and send it, a stripped copy, or a block. */
  function judgeResponse(ex: Exchange): void {
    const held = ex.resHeld!;
    const res = ex.res!;
    releaseHeldResponse(ex);
    const policy = deps.policy();
    const body = held.parts.length === 1 ? held.parts[0]! : Buffer.concat(held.parts, held.size);
    let j: ReturnType<typeof judgeHeldResponse>;
    try {
      j = judgeHeldResponse(held.inj, policy.mode === "audit", headerValue(res.headers, "content-type"), headerValue(res.headers, "content-encoding"), body);
    } catch (err) {
      // A scanner failure is not a pass: fail closed, and say so.
      log.error("injection scan failed; response refused", { error: String(err) });
      const reason = { rule: "inj.scan-failed", code: "internal_error" as const, detail: "the response could not be scanned" };
      j = { kind: "block", decision: { verdict: "block", reasons: [reason] }, reason };
    }
    if (j.kind === "block") {
      (ex as { decision: Decision }).decision = j.decision;
      const r = j.reason;
      // The upstream's response was read whole: its connection can go back to the pool.
      ex.responseStarted = true;
      send(ex.client, renderSluiceResponse({ status: 403, rule: r.rule, reason: r.code, detail: r.detail, block: true, close: ex.clientClose, receipt: ex.receipt }), ex.upstream);
      ex.res = { ...res, status: 403 };
      finishExchange(ex);
      return;
    }
    if (j.decision !== null) (ex as { decision: Decision }).decision = { ...j.decision, reasons: [...j.decision.reasons, ...ex.decision.reasons] };
    ex.responseStarted = true;
    let headers = res.headers;
    let extra = "";
    if (j.stripped) {
      // A stripped copy is the decoded text, re-encoded as UTF-8.
      headers = res.headers.filter(([n]) => n.toLowerCase() !== "content-encoding" && n.toLowerCase() !== "content-type");
      const type = headerValue(res.headers, "content-type") ?? "text/plain";
      const semi = type.indexOf(";");
      extra = `Content-Type: ${(semi < 0 ? type : type.slice(0, semi)).trim()}; charset=utf-8\r\nx-sluice-verdict: redact\r\nx-sluice-rule: ${j.decision!.reasons[0]!.rule}\r\n`;
    }
    const head = `HTTP/1.1 ${res.status} ${res.reason}\r\n${serializeHeaders(headers, res.connection, SKIP_RESPONSE)}${extra}Content-Length: ${j.body.length}\r\n${ex.clientClose ? "Connection: close\r\n" : ""}\r\n`;
    send(ex.client, Buffer.concat([Buffer.from(head, "latin1"), j.body]), ex.upstream);
    finishExchange(ex);
  }

  function forwardResponseBody(ex: Exchange, chunk: Buffer): void {
    if (ex.done || chunk.length === 0) return;
    if (ex.resHeld !== null) {
      holdResponseBody(ex, chunk);
      return;
    }
    if (ex.sse !== null) {
      eventStreamBody(ex, chunk);
      return;
    }
    if (ex.windowed !== null) {
      windowedBody(ex, chunk);
      return;
    }
    const c = ex.client;
    switch (ex.resMode) {
      case "none":
        markDesynced(ex);
        return;
      case "close":
        ex.bytesIn += chunk.length;
        send(c, chunk, ex.upstream);
        return;
      case "length": {
        const take = Math.min(ex.resRemaining, chunk.length);
        ex.resRemaining -= take;
        ex.bytesIn += take;
        send(c, take === chunk.length ? chunk : chunk.subarray(0, take), ex.upstream);
        if (ex.resRemaining === 0) {
          if (take < chunk.length) markDesynced(ex);
          finishExchange(ex);
        }
        return;
      }
      case "chunked": {
        const reader = ex.resChunked!;
        const spans: Buffer[] = [];
        let end = reader.feed(chunk, 0, ex.dechunk ? (a, b) => spans.push(chunk.subarray(a, b)) : undefined);
        if (end === CHUNKED_ERROR) {
          abortExchange(ex, 502, "upstream_error", "proxy.bad-response", `bad chunked response: ${reader.error}`);
          return;
        }
        if (end === CHUNKED_INCOMPLETE) end = chunk.length;
        ex.bytesIn += end;
        if (ex.dechunk) for (const s of spans) send(c, s, ex.upstream);
        else send(c, end === chunk.length ? chunk : chunk.subarray(0, end), ex.upstream);
        if (reader.done) {
          if (end < chunk.length) markDesynced(ex);
          finishExchange(ex);
        }
      }
    }
  }

  function finishExchange(ex: Exchange): void {
    if (ex.done) return;
    ex.done = true;
    const up = ex.upstream;
    ex.upstream = null;
    record(ex, ex.res?.status ?? 0, ex.decision, up?.ip, ex.note ?? undefined);
    if (up) {
      up.owner = null;
      releasePeer(up);
      const reusable =
        !up.closed &&
        !up.desynced &&
        up.generation === generation &&
        ex.reqDone &&
        ex.resMode !== "close" &&
        !ex.res?.close &&
        up.out.length === 0 &&
        !up.flowPaused;
      if (reusable && up.socket) {
        pool.put(up.key, up);
      } else up.socket?.end();
    }
    // A response that came before the request body ended has clientClose set: the rest of
    // the body is not read, the connection is closed once the response is flushed.
    finishClient(ex);
  }

  function finishClient(ex: Exchange): void {
    const c = ex.client;
    c.ex = null;
    if (ex.clientClose) {
      closeClient(c);
      return;
    }
    c.phase = "head";
    resumeClient(c);
    if (c.buf && c.buf.length > 0) processHeads(c, 0);
  }

  function onUpstreamClose(up: Upstream): void {
    up.closed = true;
    flushing.delete(up);
    releasePeer(up);
    const owner = up.owner;
    up.owner = null;
    up.socket = null;
    if (!owner) {
      pool.remove(up.key, up);
      return;
    }
    if (owner.type === "tunnel") {
      endTunnel(owner);
      return;
    }
    const ex = owner;
    if (ex.done) return;
    if (ex.ws) {
      // What the server sent last and the relay still holds goes first (judged).
      wsRelay(ex, ex.ws.flushServer());
      finishWebSocket(ex, "closed by the server");
      return;
    }
    if (ex.res && ex.resMode === "close") {
      if (ex.resHeld !== null) judgeResponse(ex);
      else if (ex.sse !== null) upstreamStreamEnded(ex);
      else if (ex.windowed !== null) windowEnded(ex);
      else finishExchange(ex);
      return;
    }
    // A pooled connection the origin closed while idle: retry once on a fresh one, but only
    // when nothing of the request body went out (it could not be replayed).
    if (!ex.res && !ex.resBuf && up.reused && !ex.retried && RETRYABLE.has(ex.head.method) && ex.head.contentLength === null && !ex.head.chunked) {
      ex.retried = true;
      ex.upstream = null;
      void dialFor(ex).then((fresh) => {
        if (fresh) beginExchange(ex, fresh);
      });
      return;
    }
    abortExchange(ex, 502, "upstream_error", "proxy.upstream-closed", "upstream closed the connection before the response ended");
  }

  /**
   * Events from a socket that is not (or no longer) the upstream's own, e.g. a dial attempt
   * that connected after its timeout and was terminated, must not touch the live upstream.
   */
  const isCurrent = (socket: Socket<Upstream>): boolean => (socket.data.socket as unknown) === socket;

  const upstreamHandler: SocketHandler<Upstream> = {
    data(socket, chunk) {
      if (!isCurrent(socket)) return;
      const up = socket.data;
      const owner = up.owner;
      if (!owner) {
        // Bytes from an idle pooled connection: the origin is confused; drop it.
        pool.remove(up.key, up);
        socket.terminate();
        return;
      }
      owner.lastActive = clock.now();
      if (owner.type === "tunnel") {
        owner.bytesIn += chunk.length;
        send(owner.client, chunk, up);
      } else onResponseData(owner, chunk);
    },
    drain(socket) {
      if (isCurrent(socket)) drain(socket.data);
    },
    handshake(socket, success, authorizationError) {
      // Only TLS upstreams (intercepted requests) get here. A certificate that does not verify
      // is a 502 with the reason, never a silent downgrade.
      if (success || !isCurrent(socket)) return;
      const up = socket.data;
      const owner = up.owner;
      const why = authorizationError ? ((authorizationError as { code?: string }).code ?? authorizationError.message) : "handshake failed";
      up.desynced = true;
      if (owner && owner.type === "http") {
        abortExchange(owner, 502, "upstream_error", "tls.upstream-certificate", `the upstream's TLS certificate for ${owner.action.host} was not accepted: ${why}`);
      } else socket.terminate();
    },
    close(socket) {
      if (isCurrent(socket)) onUpstreamClose(socket.data);
    },
    error(socket, err) {
      log.debug("upstream socket error", { error: err.message, upstream: socket.data.ip });
    },
  };

  // ---- WebSocket (websocket.ts, ws-relay.ts) ---------------------------------------------

  /**
   * A 101 to a WebSocket handshake: the head goes to the agent, and from here on both sides'
   * bytes go through the relay, message by message. `rest` is what the server sent after its head.
   */
  function startWebSocket(ex: Exchange, res: ResponseHead, rest: Buffer): void {
    const c = ex.client;
    const policy = deps.policy();
    ex.res = res;
    ex.responseStarted = true;
    ex.clientClose = true;
    let injection = policy.injection;
    const exempt = injection?.exempt?.match(ex.action.host, ex.action.port);
    if (exempt) {
      ex.note = `messages not scanned for prompt injection: ${ex.action.host} is in injection.exempt_hosts (${exempt})`;
      injection = null;
    }
    const ws = new WsRelay({ maxMessage: policy.proxy.websocket.maxMessageBytes, dlp: policy.dlp, injection, audit: policy.mode === "audit", holdMs: SSE_HOLD_MS });
    ex.ws = ws;
    c.phase = "websocket";
    send(c, asciiHead(`HTTP/1.1 101 ${res.reason}\r\n${serializeHeaders(res.headers, res.connection)}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n`), ex.upstream);
    if (rest.length > 0) wsFeed(ex, "server", rest);
    const early = c.buf;
    c.buf = null;
    if (early && !ex.done) wsFeed(ex, "client", early);
    resumeClient(c);
  }

  /** Bytes held for incomplete WebSocket messages, over all connections (proxy.websocket.max_held_total). */
  let wsHeld = 0;

  /** One side's bytes through the relay, counted against the global bound, and what comes out sent. */
  function wsFeed(ex: Exchange, side: "client" | "server", chunk: Buffer): void {
    const ws = ex.ws!;
    let out = side === "client" ? ws.fromClient(chunk) : ws.fromServer(chunk);
    const pending = ws.pending;
    wsHeld += pending - ex.wsPending;
    ex.wsPending = pending;
    const limit = deps.policy().proxy.websocket.maxHeldTotalBytes;
    if (out.end === null && pending > 0 && wsHeld > limit) {
      const reason: Reason = { rule: "ws.held-total", code: "body_too_large", detail: `incomplete WebSocket messages held over all connections passed proxy.websocket.max_held_total (${limit} bytes)` };
      const closed = ws.close(1009, { verdict: "block", reasons: [reason] });
      out = { toServer: [...out.toServer, ...closed.toServer], toClient: [...out.toClient, ...closed.toClient], end: closed.end };
    }
    wsRelay(ex, out);
  }

  /** Sends what the relay produced; ends the connection when it says so. */
  function wsRelay(ex: Exchange, out: WsOutput): void {
    const c = ex.client;
    const up = ex.upstream;
    for (const b of out.toServer) {
      ex.bytesOut += b.length;
      if (up) send(up, b, c);
    }
    for (const b of out.toClient) {
      ex.bytesIn += b.length;
      send(c, b, up);
    }
    if (out.end) finishWebSocket(ex, "closed by sluice");
    // The server's messages held to be scanned with the next ones: scanned and passed on when the hold is over.
    else if (out.wait !== undefined && ex.wsFlush === null)
      ex.wsFlush = setTimeout(() => {
        ex.wsFlush = null;
        if (!ex.done && ex.ws) wsRelay(ex, ex.ws.flushServer());
      }, Math.ceil(out.wait));
  }

  /** Sluice ends an idle or over-long WebSocket: close frames both ways (1001), then both sides end. */
  function wsGoingAway(ex: Exchange, why: string): void {
    const c = ex.client;
    const up = ex.upstream;
    if (up) send(up, closeFrame(WS_GOING_AWAY, "closed by sluice", true), null);
    send(c, closeFrame(WS_GOING_AWAY, `closed by sluice: ${why}`, false), null);
    finishWebSocket(ex, `closed by sluice: ${why}`);
  }

  /** One record for the whole connection, with every finding; then both sides end once flushed. */
  function finishWebSocket(ex: Exchange, why: string): void {
    if (ex.done) return;
    ex.done = true;
    stopHolding(ex);
    const ws = ex.ws!;
    wsHeld -= ex.wsPending;
    ex.wsPending = 0;
    const up = ex.upstream;
    ex.upstream = null;
    const note = `WebSocket: ${ws.messagesUp} messages passed to the server, ${ws.messagesDown} to the agent; ${why}`;
    record(ex, 101, ws.decision(ex.decision), up?.ip, joinDetail(ex.note ?? undefined, note));
    if (up) {
      up.owner = null;
      releasePeer(up);
      endAfterFlush(up);
    }
    const c = ex.client;
    c.ex = null;
    if (c.phase !== "closed") closeClient(c);
  }

  // ---- CONNECT -------------------------------------------------------------------------

  function startConnect(c: Client, head: RequestHead): void {
    const policy = deps.policy();
    const t = parseConnectTarget(head.target);
    if ("error" in t) {
      badRequest(c, 400, "malformed_request", "proxy.bad-target", t.error, "CONNECT");
      return;
    }
    const id = identify(c, head, policy);
    const action: Action = { kind: "connect", agent: id.agent, client: c.peer, host: t.host, port: t.port };
    const decision = decide(action, policy, id.lists);
    const tunnel: Tunnel = {
      type: "tunnel",
      client: c,
      action,
      decision,
      started: clock.now(),
      upstream: null,
      bytesOut: 0,
      bytesIn: 0,
      done: false,
      lastActive: clock.now(),
      agentLists: id.lists,
      receipt: nextReceipt(),
      closedBy: null,
      mode: null,
      passthrough: false,
    };
    if (decision.verdict === "block") {
      tunnel.done = true;
      const r = blockResponse(tunnel, decision, true);
      record(tunnel, r.status);
      // A transparent TLS client reads no HTTP: it is closed.
      if (c.transparent) closeClient(c);
      else respond(c, r);
      return;
    }
    c.phase = "busy";
    c.tunnel = tunnel;
    if (deps.ca && policy.tls.intercept) {
      if (policy.tls.passthrough?.match(t.host, t.port) == null) {
        interceptTunnel(c, tunnel);
        return;
      }
      tunnel.passthrough = true;
    }
    void dialFor(tunnel).then((up) => {
      if (!up) return;
      tunnel.upstream = up;
      openTunnels.add(tunnel);
      tunnel.lastActive = clock.now();
      if (tunnel.passthrough) {
        // Dialled first, like a spliced tunnel, so that an unreachable host is still a 502.
        awaitHello(c, tunnel);
        return;
      }
      tunnel.mode = "splice";
      c.phase = "tunnel";
      if (!c.transparent) send(c, ESTABLISHED, null);
      const early = c.buf;
      c.buf = null;
      if (early) {
        tunnel.bytesOut += early.length;
        send(up, early, c);
      }
      resumeClient(c);
    });
  }

  /** A client connection (or the plaintext side of an intercepted tunnel) is gone: end what it had going. */
  function clientGone(c: Client): void {
    if (c.phase === "closed" && c.socket === null) return;
    if (clients.delete(c) && c.via && c.via.outer !== c) innerClients--;
    c.socket = null;
    c.phase = "closed";
    clearHeadTimer(c);
    if (c.tunnel) endTunnel(c.tunnel);
    const ex = c.ex;
    if (ex) releaseHeld(ex);
    if (ex?.ws && !ex.done) finishWebSocket(ex, "closed by the agent");
    if (ex && !ex.done) {
      ex.done = true;
      const up = ex.upstream;
      ex.upstream = null;
      if (up) {
        up.owner = null;
        up.socket?.terminate();
      }
      record(ex, 0, ex.decision, up?.ip, "client closed the connection before the response ended");
    }
  }

  function endTunnel(t: Tunnel): void {
    if (t.done) return;
    t.done = true;
    openTunnels.delete(t);
    record(t, 200, t.closedBy ? { verdict: "block", reasons: [t.closedBy] } : t.decision);
    const up = t.upstream;
    if (up) {
      up.owner = null;
      endAfterFlush(up);
    }
    t.client.tunnel = null;
    closeClient(t.client);
  }

  // ---- interception (tls.intercept) ------------------------------------------------------

  /**
   * An allowed CONNECT whose TLS sluice terminates: 200 at once, then the client's first flight
   * is read for its server name, which must be the CONNECT host; a leaf is minted for it and the
   * requests inside are handled as plain ones (interceptedClient), their upstream leg over TLS.
   */
  function interceptTunnel(c: Client, tunnel: Tunnel): void {
    openTunnels.add(tunnel);
    tunnel.lastActive = clock.now();
    awaitHello(c, tunnel);
  }

  /** Answers 200 and reads the client's ClientHello (interceptHello). */
  function awaitHello(c: Client, tunnel: Tunnel): void {
    c.intercept = { hello: null, tls: null, inner: null, rawPaused: false };
    c.phase = "tls-hello";
    // The ClientHello gets the time a request head gets (header_timeout): no slow trickle.
    armHeadTimer(c);
    // A transparent connection asked for no tunnel: its ClientHello is already here.
    if (!c.transparent) send(c, ESTABLISHED, null);
    const early = c.buf;
    c.buf = null;
    if (early) interceptHello(c, early);
    if (c.phase === "tls-hello") resumeClient(c);
  }

  function refuseTunnel(c: Client, rule: string, detail: string): void {
    const t = c.tunnel;
    if (!t || t.done) return;
    t.closedBy = { rule, code: "malformed_request", detail };
    endTunnel(t);
  }

  function interceptHello(c: Client, chunk: Buffer): void {
    const st = c.intercept!;
    const hello = st.hello ? Buffer.concat([st.hello, chunk]) : chunk;
    st.hello = hello;
    if (c.phase === "tls-wait") return;
    const r = parseClientHello(hello);
    if (r.status === "incomplete") {
      if (hello.length > MAX_HELLO + 1024) refuseTunnel(c, "tls.bad-client-hello", "no whole ClientHello in the first 64 KiB");
      return;
    }
    if (r.status === "error") {
      // Non-TLS bytes on a CONNECT to an intercepted host are not passed on; plain HTTP is read
      // as plain requests when tls.plaintext_tunnels says so.
      const first = hello[0]!;
      if (first >= 0x41 && first <= 0x5a && !c.tunnel!.passthrough && deps.policy().tls.plaintextTunnels === "inspect") plainInTunnel(c, hello);
      else refuseTunnel(c, "tls.not-tls", `the tunnel's first bytes are not a TLS ClientHello: ${r.reason}`);
      return;
    }
    const host = c.tunnel!.action.host;
    const literal = parseIpLiteral(host) !== null;
    if (literal ? r.sni !== null && r.sni !== host : r.sni !== host) {
      refuseTunnel(c, "tls.sni-mismatch", `the TLS server name ${JSON.stringify(r.sni)} is not the CONNECT host ${host}`);
      return;
    }
    clearHeadTimer(c);
    if (c.tunnel!.passthrough) {
      passThrough(c, c.tunnel!, hello);
      return;
    }
    c.phase = "tls-wait";
    deps.ca!.mint(host).then(
      (leaf) => startInterception(c, host, leaf),
      (err: unknown) => {
        log.error("cannot mint a leaf certificate", { host, error: String(err) });
        refuseTunnel(c, "tls.mint-failed", `no certificate could be made for ${host}`);
      },
    );
  }

  /**
   * Plain HTTP in an intercepted tunnel (tls.plaintext_tunnels: inspect): the client itself reads
   * requests from here on, as plain ones to the CONNECT host (origin-form), with the CONNECT's
   * agent; the tunnel is recorded as inspected when it closes.
   */
  function plainInTunnel(c: Client, first: Buffer): void {
    const tunnel = c.tunnel!;
    c.intercept = null;
    c.via = { host: tunnel.action.host, port: tunnel.action.port, tls: false, agent: tunnel.action.agent, lists: tunnel.agentLists, outer: c };
    tunnel.mode = "intercept";
    c.phase = "head";
    c.buf = first;
    processHeads(c, 0);
  }

  /** A tls.passthrough tunnel whose server name checked out: spliced from its ClientHello on. */
  function passThrough(c: Client, tunnel: Tunnel, hello: Buffer): void {
    c.intercept = null;
    c.phase = "tunnel";
    tunnel.mode = "splice";
    tunnel.bytesOut += hello.length;
    send(tunnel.upstream!, hello, c);
  }

  function startInterception(c: Client, host: string, leaf: Leaf): void {
    const tunnel = c.tunnel;
    if (c.phase !== "tls-wait" || !tunnel || tunnel.done) return;
    const st = c.intercept!;
    const inner = newClient(null, c.peer, { host, port: tunnel.action.port, tls: true, agent: tunnel.action.agent, lists: tunnel.agentLists, outer: c });
    const t = terminateTls(
      leaf,
      {
        send(bytes) {
          tunnel.bytesIn += bytes.length;
          tunnel.lastActive = clock.now();
          send(c, bytes, null);
          return c.out.length === 0;
        },
        end: () => endAfterFlush(c),
        setPaused(paused) {
          st.rawPaused = paused;
          applyPause(c);
        },
      },
      {
        data: (b) => onClientData(inner, b),
        drain: () => drain(inner),
        close: () => {
          clientGone(inner);
          if (c.phase !== "closed") endAfterFlush(c);
        },
        error: (message) => log.debug("TLS with an intercepted client failed", { host, error: message, client: c.peer.address }),
      },
    );
    inner.socket = t.plain as unknown as Socket<never>;
    st.tls = t;
    st.inner = inner;
    tunnel.mode = "intercept";
    clients.add(inner);
    innerClients++;
    c.phase = "tls";
    const hello = st.hello!;
    st.hello = null;
    t.feed(hello);
  }

  /** A client connection, or (with `via`) the plaintext side of an intercepted tunnel, reading its first head. */
  function newClient(socket: Socket<never> | null, peer: Peer, via: Via | null): Client {
    return {
      kind: "client",
      socket,
      peer,
      buf: null,
      phase: "head",
      headDeadline: 0,
      lastActive: clock.now(),
      heldPaused: false,
      ex: null,
      tunnel: null,
      via,
      intercept: null,
      transparent: null,
      out: [],
      pausedPeer: null,
      closeWhenFlushed: false,
      flowPaused: false,
      paused: false,
      outSince: 0,
    };
  }

  // ---- transparent listener (proxy.transparent_listen) --------------------------------

  /**
   * A redirected connection's first bytes: TLS (its server name) or HTTP (its Host). The name
   * must resolve, through sluice's resolver, to the address the agent connected to: an IP
   * literal, a name that resolves elsewhere or no name at all is net.unbound-address. Then TLS
   * is handled as a CONNECT to name:port (no 200 sent: the client asked for none), plain HTTP as
   * requests to that name.
   */
  function transparentFlight(c: Client): void {
    const ff = classifyFirstFlight(c.buf!, deps.policy().proxy.maxHeaderBytes);
    if (ff.kind === "incomplete") return;
    clearHeadTimer(c);
    const od = c.transparent!;
    if (ff.kind === "other") {
      refuseTransparent(c, null, "proxy.transparent-protocol", "method_refused", `${ff.reason} (to ${od.address}:${od.port}): sluice passes only HTTP and TLS`);
      return;
    }
    const name = ff.kind === "tls" ? ff.sni : ff.host;
    if (name === null || parseIpLiteral(name) !== null) {
      refuseTransparent(c, null, "net.unbound-address", "blocked_address", `a connection to ${od.address}:${od.port} without a name sluice resolved (${ff.kind === "tls" ? "no TLS server name" : "no Host name"})`);
      return;
    }
    c.phase = "busy";
    const resolve = deps.resolveName ?? (() => Promise.resolve([] as string[]));
    const want = parseIpLiteral(od.address)?.text ?? od.address;
    resolve(name).then(
      (addresses) => {
        if (isClosed(c)) return;
        if (!addresses.some((a) => (parseIpLiteral(a)?.text ?? a) === want)) {
          refuseTransparent(c, name, "net.unbound-address", "blocked_address", `${od.address} is not an address sluice resolved for ${name}`);
          return;
        }
        const head = syntheticConnect(name, od.port);
        if (ff.kind === "tls") {
          startConnect(c, head);
          return;
        }
        // Plain HTTP: its requests, read as requests to that name (like plain HTTP in a tunnel).
        const id = identify(c, head, deps.policy());
        c.via = { host: name, port: od.port, tls: false, agent: id.agent, lists: id.lists, outer: c };
        c.phase = "head";
        processHeads(c, 0);
      },
      (err: unknown) => {
        if (isClosed(c)) return;
        refuseTransparent(c, name, "net.unbound-address", "dns_failure", `${name} does not resolve through sluice: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  function syntheticConnect(host: string, port: number): RequestHead {
    const target = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    return { method: "CONNECT", target, minor: 1, headers: [], connection: [], close: false, contentLength: null, chunked: false };
  }

  /** Refuses a transparent connection before it became a tunnel or an exchange: recorded, then closed (a 403 for HTTP). */
  function refuseTransparent(c: Client, host: string | null, rule: string, code: ReasonCode, detail: string): void {
    const od = c.transparent!;
    const receipt = nextReceipt();
    const agent = identify(c, syntheticConnect(host ?? od.address, od.port), deps.policy()).agent;
    deps.audit.record({
      agent: agent.name,
      agent_label: agent.label,
      client: c.peer.address,
      detail,
      host: host ?? od.address,
      kind: "connect",
      method: "CONNECT",
      port: od.port,
      reason: code,
      receipt,
      rule,
      status: 403,
      time: isoNow(),
      verdict: "block",
    });
    const http = c.buf !== null && c.buf.length > 0 && c.buf[0]! >= 0x41 && c.buf[0]! <= 0x5a;
    c.buf = null;
    // Plain HTTP reads its refusal (not yet a request of a name: written here, not by respond()).
    if (http) send(c, renderSluiceResponse({ status: 403, rule, reason: code, detail, block: true, close: true, receipt }), c);
    closeClient(c);
  }

  // ---- listener -----------------------------------------------------------------------

  const settings = deps.policy().proxy;
  const listen = (at: { hostname: string; port: number }, transparent: boolean): TCPSocketListener<Client> =>
    Bun.listen<Client>({
    hostname: at.hostname,
    port: at.port,
    socket: {
      open(socket) {
        socket.data = newClient(socket as unknown as Socket<never>, { address: socket.remoteAddress, port: 0 }, null);
        const c = socket.data;
        socket.setNoDelay(true);
        if (transparent) {
          // Bun.listen sockets have their descriptor as `fd` (not in bun-types).
          c.transparent = originalDestination((socket as unknown as { fd: number }).fd, socket.remoteFamily === "IPv6" ? "IPv6" : "IPv4");
          if (c.transparent === null) {
            // Not redirected by nftables: someone connected to the listener itself.
            c.phase = "closed";
            socket.end();
            return;
          }
          c.phase = "transparent";
          armHeadTimer(c);
        }
        if (clients.size - innerClients >= deps.policy().proxy.maxConnections) {
          // Over the limit: refuse at once rather than let one agent exhaust file descriptors.
          c.phase = "closed";
          const r: SluiceResponse = { status: 503, rule: "proxy.too-many-connections", reason: "internal_error", detail: "connection limit reached", block: false, close: true, receipt: nextReceipt() };
          recordRefusal(c, r);
          socket.end(renderSluiceResponse(r));
          return;
        }
        clients.add(c);
      },
      data(socket, chunk) {
        onClientData(socket.data, chunk);
      },
      drain(socket) {
        drain(socket.data);
      },
      close(socket) {
        const c = socket.data;
        // An intercepted tunnel's TLS session ends with its TCP connection.
        c.intercept?.tls?.closed();
        clientGone(c);
      },
      error(socket, err) {
        log.debug("client socket error", { error: err.message, client: socket.data?.peer.address });
      },
    },
  });
  const listener = listen(settings.listen, false);
  const transparentListener = settings.transparentListen ? listen(settings.transparentListen, true) : null;

  return {
    hostname: listener.hostname,
    port: listener.port,
    transparentPort: transparentListener?.port ?? null,
    stats: () => ({ connections: clients.size - innerClients, tunnels: openTunnels.size, idleUpstreams: pool.size() }),
    clearPool() {
      generation++;
      pool.clear();
    },
    cutOff(reason) {
      let n = 0;
      const cut = (ex: Exchange) => {
        if (ex.ws) wsRelay(ex, ex.ws.close(1008, { verdict: "block", reasons: [reason] }));
        else abortExchange(ex, blockStatus(reason.code), reason.code, reason.rule, reason.detail, true);
      };
      for (const c of [...clients]) {
        // A request inside an intercepted tunnel is recorded as cut off, before its tunnel ends.
        const inner = c.intercept?.inner?.ex ?? (c.tunnel && c.via ? c.ex : null);
        if (inner && !inner.done) cut(inner);
        if (c.tunnel && !c.tunnel.done) {
          c.tunnel.closedBy = reason;
          endTunnel(c.tunnel);
          n++;
        } else if (c.ex && !c.ex.done) {
          cut(c.ex);
          n++;
        }
      }
      return n;
    },
    async stop() {
      clearInterval(ticker);
      listener.stop(true);
      transparentListener?.stop(true);
      // Open tunnels and exchanges hold upstream sockets that would keep the process alive.
      for (const c of [...clients]) {
        c.tunnel?.upstream?.socket?.terminate();
        c.ex?.upstream?.socket?.terminate();
        c.socket?.terminate();
      }
      for (const up of flushing) up.socket?.terminate();
      pool.clear();
    },
  };
}
