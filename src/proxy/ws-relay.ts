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
import type { ReasonCode } from "../core/reasons.ts";
import type { Decision, Reason } from "../core/types.ts";
import { BodyStreamScanner, decideFindings, mergeVerdicts, type ContentVerdict } from "../inspect/content.ts";
import { bodyFragments, joinedFragments } from "../inspect/fragments.ts";
import type { DlpSettings, InjectionSettings } from "../policy/policy.ts";
import { escalate } from "./request-scan.ts";
import { EventScan, SSE_BATCH } from "./response-scan.ts";
import { CLOSE_INVALID_DATA, CLOSE_POLICY_VIOLATION, CLOSE_TOO_BIG, closeFrame, encodeFrame, OP_BINARY, OP_CLOSE, OP_TEXT, WsReader, type WsError, type WsEvent } from "./websocket.ts";

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
  /**
   * What the server sends less than this many milliseconds after the last injection scan is held
   * (up to SSE_BATCH bytes of payload) and scanned with what follows, as an event stream's events are
   * (response-scan.ts): fromServer() says how long to wait, and the caller calls flushServer()
   * then. 0 (the default): every read is scanned at once.
   */
  readonly holdMs?: number;
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
  /** When the server's messages are held to be scanned with the next ones: call flushServer() in this many milliseconds. */
  readonly wait?: number;
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
  /** What the server sent that waits to be scanned (holdMs), and its payloads' bytes. */
  #heldDown: WsEvent[] = [];
  #heldBytes = 0;
  /** When the server's messages were last scanned (performance.now()). */
  #lastScan = -Infinity;

  constructor(private readonly options: WsRelayOptions) {
    this.#fromClient = new WsReader(true, options.maxMessage);
    this.#fromServer = new WsReader(false, options.maxMessage);
    this.#dlp = options.dlp ? new WsMessageDlp(options.dlp, options.audit) : null;
    this.#injection = options.injection ? new EventScan(options.injection, options.audit, "ws.message", "WebSocket messages") : null;
  }

  /**
   * Bytes the agent sent. Everything that came in one read is judged before any of it is sent,
   * and the stream checks run once per read, not once per message: a flood of tiny messages
   * costs what one read of them does.
   */
  fromClient(chunk: Buffer): WsOutput {
    const out: WsOutput = { toServer: [], toClient: [], end: null };
    if (this.#ended) return out;
    const events = this.#fromClient.feed(chunk);
    if (!Array.isArray(events)) return this.close(events.code, protocolReason(events, "client"), out);
    if (events.length === 0) return out;
    const dlp = this.#dlp;
    const frames: Buffer[] = [];
    const sent: Piece[] = [];
    let messages = 0;
    for (const e of events) {
      const control = e.type === "control";
      // Ping, pong and close payloads are short, but they reach the server too.
      const payload = control && e.opcode === OP_CLOSE ? e.payload.subarray(2) : e.payload;
      let send: Uint8Array = payload;
      // What enforce mode sends: the streams judge that (audit mode sends the payload as it was).
      let enforced: Uint8Array = payload;
      if (dlp !== null && payload.length > 0) {
        const judged = dlp.judge(payload);
        if ("stop" in judged) return this.#refuse(out, judged.stop.decision, CLOSE_POLICY_VIOLATION);
        send = judged.send;
        enforced = judged.enforced;
      }
      if (control) {
        const whole = e.opcode !== OP_CLOSE ? send : send === payload ? e.payload : Buffer.concat([e.payload.subarray(0, 2), send]);
        // A redaction that makes a control frame too long for one (§5.5) cannot be sent as one.
        if (whole.length > 125) return this.#refuse(out, tooLongAfterRedaction(), CLOSE_POLICY_VIOLATION);
        frames.push(encodeFrame(e.opcode, whole, true));
        sent.push({ control: true, text: false, bytes: enforced });
      } else {
        frames.push(encodeFrame(e.text ? OP_TEXT : OP_BINARY, send, true));
        sent.push({ control: false, text: e.text, bytes: enforced });
        messages++;
      }
    }
    if (dlp !== null) {
      const stop = dlp.across(sent);
      if (stop !== null) return this.#refuse(out, stop.decision, CLOSE_POLICY_VIOLATION);
    }
    out.toServer.push(...frames);
    this.messagesUp += messages;
    return out;
  }

  /**
   * Bytes the server sent: judged a read at a time, like the agent's, or (holdMs) held when they
   * come soon after the last scan. `now`: performance.now(), for tests.
   */
  fromServer(chunk: Buffer, now = performance.now()): WsOutput {
    const out: WsOutput = { toServer: [], toClient: [], end: null };
    if (this.#ended) return out;
    const events = this.#fromServer.feed(chunk);
    if (!Array.isArray(events)) return this.close(events.code, protocolReason(events, "server"), out);
    if (events.length === 0) return out;
    if (this.#injection === null) return this.#toClient(events, out);
    let bytes = 0;
    for (const e of events) bytes += e.payload.length;
    const since = now - this.#lastScan;
    const hold = this.options.holdMs ?? 0;
    if (since < hold && this.#heldBytes + bytes < SSE_BATCH) {
      this.#heldDown.push(...events);
      this.#heldBytes += bytes;
      return { ...out, wait: hold - since };
    }
    return this.#scanDown(this.#heldDown.length === 0 ? events : [...this.#heldDown, ...events], now, out);
  }

  /** Scans what the server sent that was held (fromServer's `wait` has passed) and passes it on. */
  flushServer(now = performance.now()): WsOutput {
    const out: WsOutput = { toServer: [], toClient: [], end: null };
    if (this.#ended || this.#heldDown.length === 0) return out;
    return this.#scanDown(this.#heldDown, now, out);
  }

  #scanDown(events: readonly WsEvent[], now: number, out: WsOutput): WsOutput {
    this.#heldDown = [];
    this.#heldBytes = 0;
    this.#lastScan = now;
    // Every payload the agent's client can hand its model as words: messages of either kind
    // (binary read as a lossy decoder would), and close reasons and pings.
    const texts = events.map(readableOf).filter((t) => t.length > 0);
    if (texts.length > 0 && this.#injection!.scan(texts, null, this.messagesDown)) return this.#refuse(out, this.#injection!.decision()!, CLOSE_POLICY_VIOLATION);
    return this.#toClient(events, out);
  }

  /** The server's events as frames to the agent. */
  #toClient(events: readonly WsEvent[], out: WsOutput): WsOutput {
    for (const e of events) {
      if (e.type === "message") this.messagesDown++;
      out.toClient.push(encodeFrame(e.type === "message" ? (e.text ? OP_TEXT : OP_BINARY) : e.opcode, e.payload, false));
    }
    return out;
  }

  /** Bytes held for incomplete frames and messages, both ways (for sluice's global bound). */
  get pending(): number {
    return this.#fromClient.pending + this.#fromServer.pending;
  }

  /**
   * The decision to record for the connection: `base` (the handshake's) with every finding. The
   * handshake's own findings are always kept, whatever the messages add: they mask the path.
   */
  decision(base: Decision): Decision {
    let d: Decision = { verdict: "allow", reasons: [] };
    if (this.#closedBy !== null) d = mergeDecisions(d, this.#closedBy);
    const dlp = this.#dlp?.verdict ?? null;
    if (dlp !== null) {
      // Audit mode changed nothing on the wire: a block is a would-block, a redaction a warn.
      const v = dlp.decision.verdict;
      d = mergeDecisions(d, !this.options.audit ? dlp.decision : v === "block" ? { ...dlp.decision, verdict: "allow", wouldBlock: true } : v === "redact" ? { ...dlp.decision, verdict: "warn" } : dlp.decision);
    }
    const inj = this.#injection?.decision() ?? null;
    if (inj !== null) d = mergeDecisions(d, inj);
    const merged = mergeDecisions(d, base);
    return base.findings && base.findings.length > 0 ? { ...merged, findings: [...base.findings, ...(d.findings ?? [])].slice(0, base.findings.length + MAX_RECORDED) } : merged;
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
 * DLP on what the agent sends over a WebSocket: each payload parsed as a body would be (JSON
 * paths, form fields, binary strings) at `ws.message.*`; and the data messages as one stream
 * (`ws.messages`), control payloads as another (`ws.control`), each joined as the server can join
 * them (no separator), so a secret cut into several messages or pings is seen whole. The piece
 * that starts a known secret is refused too, not only the one that completes it.
 */
export class WsMessageDlp {
  readonly #data: BodyStreamScanner;
  readonly #control: BodyStreamScanner;
  /** The last characters of each stream, for known secrets begun at the end of a message. */
  #dataTail = "";
  #controlTail = "";
  /** Rules and previews already recorded: a secret sent again is not recorded again. */
  readonly #seen = new Set<string>();
  /** Every finding so far, for the record (bounded). */
  verdict: ContentVerdict | null = null;

  constructor(
    private readonly dlp: DlpSettings,
    private readonly audit: boolean,
  ) {
    this.#data = new BodyStreamScanner(dlp.engine, dlp.overlapBytes, "ws.messages");
    this.#control = new BodyStreamScanner(dlp.engine, dlp.overlapBytes, "ws.control");
  }

  /**
   * One payload alone: the bytes to send (as they were, or redacted; `enforced`: what enforce
   * mode sends, which audit mode does not), or the verdict that stops the connection.
   */
  judge(payload: Buffer): { readonly send: Uint8Array; readonly enforced: Uint8Array } | { readonly stop: ContentVerdict } {
    let v = this.#scan(payload);
    if (v === null) return { send: payload, enforced: payload };
    let enforced: Uint8Array = payload;
    if (v.decision.verdict === "redact") {
      const redacted = v.redactor!.applyBytes(payload);
      const again = this.#scan(redacted);
      if (again !== null && again.decision.verdict !== "warn") v = escalate(v, "set to redact, but it is still there after redaction");
      else enforced = redacted;
    }
    this.#remember(v);
    if (v.decision.verdict === "block" && !this.audit) return { stop: v };
    return { send: this.audit ? payload : enforced, enforced };
  }

  /**
   * The payloads of one read as they will be sent (redactions made), joined onto what came
   * before in their stream: the verdict that stops the connection, or null.
   */
  across(pieces: readonly Piece[]): ContentVerdict | null {
    let data = "";
    let control = "";
    for (const p of pieces) {
      const b = Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength);
      if (p.control) control += b.toString("latin1");
      else data += p.text ? b.toString("utf8") : b.toString("latin1");
    }
    let v: ContentVerdict | null = null;
    if (data.length > 0) v = mergeVerdicts(v, this.#stream(this.#data, data));
    if (control.length > 0) v = mergeVerdicts(v, this.#stream(this.#control, control));
    if (data.length > 0) this.#dataTail = (this.#dataTail + data).slice(-PARTIAL_TAIL);
    if (control.length > 0) this.#controlTail = (this.#controlTail + control).slice(-PARTIAL_TAIL);
    for (const [where, tail, added] of [["ws.messages", this.#dataTail, data], ["ws.control", this.#controlTail, control]] as const) {
      const name = added.length > 0 ? this.dlp.engine.partialKnownSecret(tail) : null;
      if (name === null) continue;
      // A piece cannot be redacted out of what follows it: redact blocks, warn records.
      const verdict = this.dlp.engine.actionFor("dlp.known-secret") === "warn" ? "warn" : "block";
      const reason = { rule: "dlp.known-secret", code: "dlp_finding" as const, detail: `dlp.known-secret in ${where}: the beginning of known:${name} ends a message (a secret sent in pieces)` };
      v = mergeVerdicts(v, { decision: { verdict, reasons: [reason], findings: [{ rule: "dlp.known-secret", location: where, preview: `known:${name}`, via: ["partial"] }] }, redactor: null });
    }
    if (v === null) return null;
    this.#remember(v);
    return v.decision.verdict === "block" && !this.audit ? v : null;
  }

  #stream(scanner: BodyStreamScanner, text: string): ContentVerdict | null {
    const v = decideFindings(scanner.push(text));
    // Pieces of other messages, already sent or sent apart: nothing to cut them out of.
    return v !== null && v.decision.verdict === "redact" ? escalate(v, "set to redact, but it is split across WebSocket messages") : v;
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

/** A payload as it goes to the server, for the streams. */
interface Piece {
  readonly control: boolean;
  readonly text: boolean;
  readonly bytes: Uint8Array;
}

/** Characters of each stream kept to find the beginning of a known secret at the end of a message. */
const PARTIAL_TAIL = 4096;

/** What of an event the agent's client can read as words: a close frame's reason, any other payload. */
const readableOf = (e: WsEvent): string => readable(e.type === "control" && e.opcode === OP_CLOSE ? e.payload.subarray(2) : e.payload);

/** A payload as text the way an agent's client would read it: a UTF-16 byte-order mark first, else UTF-8, lossy. */
function readable(payload: Buffer): string {
  if (payload.length === 0) return "";
  if (payload[0] === 0xff && payload[1] === 0xfe) return new TextDecoder("utf-16le").decode(payload);
  if (payload[0] === 0xfe && payload[1] === 0xff) return new TextDecoder("utf-16be").decode(payload);
  return payload.toString("utf8");
}

function tooLongAfterRedaction(): Decision {
  return { verdict: "block", reasons: [{ rule: "dlp.redact-failed", code: "dlp_finding", detail: "a control frame's payload, redacted, is over 125 bytes: it cannot be sent as one" }] };
}

function looksLikeJson(bytes: Uint8Array): boolean {
  for (const b of bytes) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    return b === 0x7b || b === 0x5b;
  }
  return false;
}
