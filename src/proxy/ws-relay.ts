/**
 * A WebSocket connection relayed message by message, without sockets: forward.ts feeds each
 * side's bytes in and sends what comes out. Every data message is reassembled (websocket.ts,
 * bounded by proxy.websocket.max_message), judged, and sent on as one frame of its own:
 *
 * - agent to server: DLP (request-scan's engine) on text and binary messages and on control
 *   payloads, each message alone and the messages as one stream (a secret sent a few characters
 *   per message); a `redact` finding is cut out of the message, as in a held body;
 * - server to agent: prompt injection on text messages (and binary ones that are UTF-8 text),
 *   scored over the whole connection as an event stream is (response-scan's EventScan).
 *
 * A message that must not pass closes both sides with 1008 (policy violation) and the rule as
 * the reason; a protocol error with 1002, 1007 or 1009. Nothing of a refused message is sent.
 */
import { isUtf8 } from "node:buffer";
import type { ReasonCode } from "../core/reasons.ts";
import type { Decision, Reason } from "../core/types.ts";
import { binaryText } from "../inspect/body-fragments.ts";
import { BodyStreamScanner, decideFindings, mergeVerdicts, type ContentVerdict } from "../inspect/content.ts";
import { bodyFragments, joinedFragments } from "../inspect/fragments.ts";
import type { DlpSettings, InjectionSettings } from "../policy/policy.ts";
import { escalate } from "./request-scan.ts";
import { EventScan } from "./response-scan.ts";
import { CLOSE_INVALID_DATA, CLOSE_POLICY_VIOLATION, CLOSE_TOO_BIG, closeFrame, encodeFrame, OP_BINARY, OP_CLOSE, OP_TEXT, WsReader, type WsError } from "./websocket.ts";

/** Findings kept for the record of one connection (it may live for hours). */
const MAX_RECORDED = 64;
/** Distinct findings remembered per connection, so a secret sent again is not recorded again. */
const MAX_SEEN = 1024;

export interface WsRelayOptions {
  readonly maxMessage: number;
  /** null: DLP is off. */
  readonly dlp: DlpSettings | null;
  /** null: injection scanning is off (or the host is exempt). */
  readonly injection: InjectionSettings | null;
  /** mode: audit — nothing changes on the wire; what would have been refused is recorded. */
  readonly audit: boolean;
}

/** Why sluice ended the connection, for the record. */
export interface WsEnd {
  readonly decision: Decision;
}

export interface WsOutput {
  readonly toServer: Buffer[];
  readonly toClient: Buffer[];
  /** Set when sluice closes the connection here: send the outputs, then end both sides. */
  readonly end: WsEnd | null;
}

export class WsRelay {
  readonly #fromClient: WsReader;
  readonly #fromServer: WsReader;
  readonly #dlp: WsMessageDlp | null;
  readonly #injection: EventScan | null;
  #ended = false;
  /** Why sluice closed the connection when no scanner's verdict says it (protocol, timeouts, kill switch). */
  #closedBy: Decision | null = null;
  /** Data messages passed on to the server, and to the agent. */
  messagesUp = 0;
  messagesDown = 0;

  constructor(private readonly options: WsRelayOptions) {
    this.#fromClient = new WsReader(true, options.maxMessage);
    this.#fromServer = new WsReader(false, options.maxMessage);
    this.#dlp = options.dlp ? new WsMessageDlp(options.dlp, options.audit) : null;
    this.#injection = options.injection ? new EventScan(options.injection, options.audit, "ws.message", "WebSocket messages") : null;
  }

  /** Bytes the agent sent. */
  fromClient(chunk: Buffer): WsOutput {
    const out: WsOutput = { toServer: [], toClient: [], end: null };
    if (this.#ended) return out;
    const events = this.#fromClient.feed(chunk);
    if (!Array.isArray(events)) return this.close(events.code, protocolReason(events, "client"), out);
    for (const e of events) {
      if (e.type === "control") {
        // Ping, pong and close payloads are short, but they reach the server too.
        const payload = e.opcode === OP_CLOSE ? e.payload.subarray(2) : e.payload;
        const judged = this.#dlp && payload.length > 0 ? this.#dlp.judge(payload, false) : { send: payload };
        if ("stop" in judged) return this.#refuse(out, judged.stop.decision, CLOSE_POLICY_VIOLATION);
        const sent = e.opcode === OP_CLOSE && judged.send !== payload ? Buffer.concat([e.payload.subarray(0, 2), judged.send]) : e.payload;
        out.toServer.push(encodeFrame(e.opcode, sent, true));
        continue;
      }
      const judged = this.#dlp ? this.#dlp.judge(e.payload, e.text) : { send: e.payload };
      if ("stop" in judged) return this.#refuse(out, judged.stop.decision, CLOSE_POLICY_VIOLATION);
      out.toServer.push(encodeFrame(e.text ? OP_TEXT : OP_BINARY, judged.send, true));
      this.messagesUp++;
    }
    return out;
  }

  /** Bytes the server sent. */
  fromServer(chunk: Buffer): WsOutput {
    const out: WsOutput = { toServer: [], toClient: [], end: null };
    if (this.#ended) return out;
    const events = this.#fromServer.feed(chunk);
    if (!Array.isArray(events)) return this.close(events.code, protocolReason(events, "server"), out);
    for (const e of events) {
      if (e.type === "message") {
        // Binary that is not UTF-8 text is passed on unread: no model reads it as words.
        if (this.#injection && (e.text || isUtf8(e.payload)) && this.#injection.scan([e.payload.toString("utf8")], null, this.messagesDown)) {
          return this.#refuse(out, this.#injection.decision()!, CLOSE_POLICY_VIOLATION);
        }
        this.messagesDown++;
      }
      out.toClient.push(encodeFrame(e.type === "message" ? (e.text ? OP_TEXT : OP_BINARY) : e.opcode, e.payload, false));
    }
    return out;
  }

  /** The decision to record for the connection: `base` (the handshake's) with every finding. */
  decision(base: Decision): Decision {
    let d = this.#closedBy === null ? base : mergeDecisions(this.#closedBy, base);
    const dlp = this.#dlp?.verdict ?? null;
    if (dlp !== null) d = mergeDecisions(d, this.options.audit && dlp.decision.verdict === "block" ? { ...dlp.decision, verdict: "allow", wouldBlock: true } : dlp.decision);
    const inj = this.#injection?.decision() ?? null;
    if (inj !== null) d = mergeDecisions(d, inj);
    return d;
  }

  /**
   * Sluice closes the connection (a protocol error, a timeout, the kill switch): close frames with
   * `code` both ways, the rule to the agent; `why` goes to the record.
   */
  close(code: number, why: Decision, out: WsOutput = { toServer: [], toClient: [], end: null }): WsOutput {
    this.#closedBy = why;
    return this.#refuse(out, why, code);
  }

  /** Closes both sides: `code` and the rule to the agent, `code` to the server. */
  #refuse(out: WsOutput, decision: Decision, code: number): WsOutput {
    this.#ended = true;
    const rule = decision.reasons[0]?.rule ?? "ws.closed";
    out.toClient.push(closeFrame(code, decision.verdict === "block" ? `blocked by sluice: ${rule}` : `closed by sluice: ${rule}`, false));
    out.toServer.push(closeFrame(code, "closed by sluice", true));
    return { ...out, end: { decision } };
  }
}

function protocolReason(e: WsError, side: "client" | "server"): Decision {
  const rule = e.code === CLOSE_TOO_BIG ? "ws.message-too-large" : e.code === CLOSE_INVALID_DATA ? "ws.invalid-text" : "ws.protocol-error";
  const code: ReasonCode = e.code === CLOSE_TOO_BIG ? "body_too_large" : side === "client" ? "malformed_request" : "upstream_error";
  const reason: Reason = { rule, code, detail: `the ${side === "client" ? "agent" : "server"} sent ${e.reason}` };
  return { verdict: "block", reasons: [reason] };
}

const RANK = { allow: 0, warn: 1, redact: 2, block: 3 } as const;
/** What audit mode let through ranks above a plain warn: its reason leads the record. */
const rank = (d: Decision) => RANK[d.verdict] + (d.wouldBlock ? 1.5 : 0);

/** The stricter verdict of two, with both reasons and findings (bounded). */
function mergeDecisions(a: Decision, b: Decision): Decision {
  const [strict, other] = rank(b) > rank(a) ? [b, a] : [a, b];
  const findings = [...(strict.findings ?? []), ...(other.findings ?? [])].slice(0, MAX_RECORDED);
  return {
    verdict: strict.verdict,
    reasons: [...strict.reasons, ...other.reasons].slice(0, MAX_RECORDED),
    ...(a.wouldBlock || b.wouldBlock ? { wouldBlock: true } : {}),
    ...(findings.length > 0 ? { findings } : {}),
  };
}

/**
 * DLP on what the agent sends over a WebSocket: each message parsed as a body would be (JSON
 * paths, form fields, binary strings) at `ws.message.*`, and all messages as one stream
 * (`ws.messages`, with the DLP overlap), so a secret cut into several messages is seen whole.
 */
export class WsMessageDlp {
  readonly #stream: BodyStreamScanner;
  /** Rules and previews already recorded: a secret sent again is not recorded again. */
  readonly #seen = new Set<string>();
  /** Every finding so far, for the record (bounded). */
  verdict: ContentVerdict | null = null;

  constructor(
    private readonly dlp: DlpSettings,
    private readonly audit: boolean,
  ) {
    this.#stream = new BodyStreamScanner(dlp.engine, dlp.overlapBytes, "ws.messages");
  }

  /** The bytes to send (the message, or a redacted copy), or the verdict that stops the connection. */
  judge(payload: Buffer, text: boolean): { readonly send: Uint8Array } | { readonly stop: ContentVerdict } {
    let v = this.#scan(payload);
    let send: Uint8Array = payload;
    if (v !== null && v.decision.verdict === "redact") {
      const redacted = v.redactor!.applyBytes(payload);
      const again = this.#scan(redacted);
      if (again !== null && again.decision.verdict !== "warn") v = escalate(v, "set to redact, but it is still there after redaction");
      else if (!this.audit) send = redacted;
    }
    // What goes on is what the stream has seen: a redacted secret is not found again across messages.
    const streamed = text ? Buffer.from(send).toString("utf8") : `\n${binaryText(send)}`;
    const known = new Set((v?.decision.findings ?? []).map((f) => `${f.rule}\u0000${f.preview}`));
    const hits = this.#stream.push(streamed).filter((h) => !known.has(`${h.finding.rule}\u0000${h.finding.preview}`));
    let across = decideFindings(hits);
    if (across !== null && across.decision.verdict === "redact") across = escalate(across, "set to redact, but it is split across WebSocket messages");
    v = mergeVerdicts(v, across);
    if (v === null) return { send };
    this.#remember(v);
    if (v.decision.verdict === "block" && !this.audit) return { stop: v };
    return { send: this.audit ? payload : send };
  }

  #scan(payload: Uint8Array): ContentVerdict | null {
    // Most messages are JSON (JSON-RPC, chat protocols): walked as JSON when they look like it;
    // one that does not parse is read whole as text all the same.
    const parsed = bodyFragments(looksLikeJson(payload) ? "application/json" : undefined, payload);
    const fragments = parsed.fragments.map((f) => ({ ...f, location: `ws.message${f.location.slice("body".length)}` }));
    return decideFindings(this.dlp.engine.scan([...fragments, ...joinedFragments(fragments)]));
  }

  #remember(v: ContentVerdict): void {
    const fresh = (v.decision.findings ?? []).filter((f) => !this.#seen.has(`${f.rule}\u0000${f.preview}`));
    if (fresh.length === 0 && this.verdict !== null && v.decision.verdict !== "block") return;
    // Bounded: past this many distinct findings a connection's record is full anyway.
    if (this.#seen.size < MAX_SEEN) for (const f of fresh) this.#seen.add(`${f.rule}\u0000${f.preview}`);
    const merged = mergeVerdicts(this.verdict, { decision: { ...v.decision, findings: fresh }, redactor: null });
    const d = merged!.decision;
    this.verdict = { decision: { ...d, reasons: d.reasons.slice(0, MAX_RECORDED), findings: (d.findings ?? []).slice(0, MAX_RECORDED) }, redactor: null };
  }
}

function looksLikeJson(bytes: Uint8Array): boolean {
  for (const b of bytes) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    return b === 0x7b || b === 0x5b;
  }
  return false;
}
