/**
 * Prompt injection in responses, without sockets: forward.ts holds a scannable response whole
 * (up to injection.max_buffer), hands its bytes here, and sends what comes back: the response as
 * it was, a stripped copy, or a block.
 */
import * as zlib from "node:zlib";
import type { Decision, Reason } from "../core/types.ts";
import { asFindings, byteOrderMark, eventFragments, fragmentSegments, inspectResponse, isKeyPath, joinedByPath, responseKind, responseSegments, SNIFF_BYTES, sniffsBinary, sseEvents, streamRest, textRuns, undeclaredType } from "../inspect/response.ts";
import type { InjectionFinding, ScoreTally, SegmentIn } from "../scan/injection/engine.ts";
import type { InjectionSettings } from "../policy/policy.ts";
import { decodeContentEncoding } from "../scan/decode/content-encoding.ts";
import { isEncoded } from "./request-scan.ts";

export type ResponseJudgement =
  /** Send `body` (the bytes as received, or a stripped copy: then without Content-Encoding). */
  | { readonly kind: "forward"; readonly body: Uint8Array; readonly stripped: boolean; readonly decision: Decision | null }
  | { readonly kind: "block"; readonly decision: Decision; readonly reason: Reason };

const CHARSET = /;\s*charset\s*=\s*"?([A-Za-z0-9._:-]+)"?/i;

/**
 * The body as text, as a client decodes it: a byte-order mark first (it overrides the label,
 * WHATWG Encoding §4.1 "decode"), then the declared charset, UTF-8 when there is none; lossy, so
 * a bad byte does not hide the rest. Null for a charset this runtime cannot decode: such a body
 * is not judged unread.
 */
function bodyText(bytes: Uint8Array, contentType: string | undefined): string | null {
  const label = byteOrderMark(bytes) ?? CHARSET.exec(contentType ?? "")?.[1] ?? "utf-8";
  try {
    return new TextDecoder(label as ConstructorParameters<typeof TextDecoder>[0]).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Judges a whole response body. `audit` (mode: audit) changes nothing on the wire: a block or a
 * strip is recorded as what would have happened.
 */
export function judgeHeldResponse(inj: InjectionSettings, audit: boolean, contentType: string | undefined, contentEncoding: string | undefined, body: Uint8Array): ResponseJudgement {
  const kind = responseKind(contentType);
  if (kind === null || body.length === 0) return { kind: "forward", body, stripped: false, decision: null };
  let plain = body;
  if (isEncoded(contentEncoding)) {
    const inflated = decodeContentEncoding(body, contentEncoding, inj.inflate, zlib);
    if (!inflated.ok) {
      const reason: Reason = { rule: `inj.response-${inflated.code.replace("_", "-")}`, code: "body_undecodable", detail: `response body: ${inflated.detail}` };
      if (audit) return { kind: "forward", body, stripped: false, decision: { verdict: "allow", wouldBlock: true, reasons: [reason] } };
      return { kind: "block", decision: { verdict: "block", reasons: [reason] }, reason };
    }
    plain = inflated.bytes;
  }
  // Sent without a type and binary by the browsers' rule: only its runs of text are read, and
  // what cannot be cut out of bytes is blocked rather than stripped.
  const binary = undeclaredType(contentType) && sniffsBinary(plain);
  const decoded = bodyText(plain, contentType);
  if (decoded === null) {
    const reason: Reason = { rule: "inj.response-unknown-charset", code: "body_undecodable", detail: `response body: charset ${JSON.stringify(CHARSET.exec(contentType ?? "")?.[1])} cannot be decoded, so it cannot be scanned` };
    if (audit) return { kind: "forward", body, stripped: false, decision: { verdict: "allow", wouldBlock: true, reasons: [reason] } };
    return { kind: "block", decision: { verdict: "block", reasons: [reason] }, reason };
  }
  const text = binary ? textRuns(decoded) : decoded;
  const v = inspectResponse(kind, text, inj.engine, binary && inj.action === "strip" ? "block" : inj.action);
  if (v.findings.length === 0) return { kind: "forward", body, stripped: false, decision: null };
  const top = [...v.findings].sort((a, b) => b.weight - a.weight)[0]!;
  const rules = [...new Set(v.findings.map((f) => f.rule))];
  const over = v.verdict !== "allow";
  const escalated = v.escalated ?? (binary && over && inj.action === "strip" ? "the body is binary (sent without a type)" : undefined);
  const detail = `injection score ${v.score}${over ? " >=" : " <"} threshold ${inj.engine.threshold}: ${rules.join(", ")}${escalated ? `; strip was not possible: ${escalated}` : ""}`;
  const reason: Reason = { rule: top.rule, code: "injection_detected", detail };
  const findings = asFindings(v.findings);
  switch (v.verdict) {
    case "allow":
      // Under the threshold: passed on, the findings recorded.
      return { kind: "forward", body, stripped: false, decision: { verdict: "allow", reasons: [reason], findings } };
    case "warn":
      return { kind: "forward", body, stripped: false, decision: { verdict: "warn", reasons: [reason], findings } };
    case "strip":
      if (audit) return { kind: "forward", body, stripped: false, decision: { verdict: "warn", wouldBlock: true, reasons: [reason], findings } };
      return { kind: "forward", body: new TextEncoder().encode(v.body!), stripped: true, decision: { verdict: "redact", reasons: [reason], findings } };
    case "block":
      if (audit) return { kind: "forward", body, stripped: false, decision: { verdict: "allow", wouldBlock: true, reasons: [reason], findings } };
      return { kind: "block", decision: { verdict: "block", reasons: [reason], findings }, reason };
  }
}

/** Text of one JSON path kept across events, so an instruction streamed a few tokens per event is seen whole. */
const SSE_WINDOW = 2048;
/** The most text of one incomplete event held; past it the stream ends (an event is not passed on unread). */
const SSE_MAX_PENDING = 1024 * 1024;
/** JSON paths whose windows are kept at once. */
const SSE_MAX_PATHS = 256;
/**
 * A live event stream is scanned at most once per SSE_HOLD_MS (the proxy's SseStream): events
 * that come sooner after a scan are held until then, or until SSE_BATCH characters of them are
 * waiting, and scanned together. Each scan reads every path's window again (SSE_WINDOW), so one
 * scan per event made a stream of thousands of one-token events cost a window's reading per token.
 */
export const SSE_HOLD_MS = 10;
export const SSE_BATCH = 4096;

/**
 * Injection scanning over a sequence of events: the events of a `text/event-stream`, or the
 * messages of a WebSocket. Text at the same JSON path in successive events (a chat completion's
 * `delta.content`) is scanned with the last SSE_WINDOW characters before it, and rules count once
 * per stream, so an instruction spread over many small events is still found.
 */
export class EventScan {
  readonly #windows = new Map<string, { text: string; escapes: number }>();
  /** The score over every batch of events, counted as the engine counts one response. */
  readonly #tally: ScoreTally = { counted: new Map(), score: 0 };
  readonly #findings: InjectionFinding[] = [];

  /** `root`: the events' location (body.sse, ws.message); `what`: how the record names the stream. */
  constructor(
    private readonly inj: InjectionSettings,
    private readonly audit: boolean,
    private readonly root: string,
    private readonly what: string,
  ) {}

  /**
   * Scans a batch of events (their data) and, when given, the text they came in as sent (`raw`:
   * every line of an event stream reaches the client); true when the stream must stop. `first`:
   * the first event's number in the stream, for locations.
   */
  scan(events: readonly string[], raw: string | null, first = 0): boolean {
    // Text at one JSON path (`body.sse[3].choices[0].delta.content` -> `body.sse.choices[0].delta.content`)
    // joined over this batch of events, then read with the last SSE_WINDOW characters before it,
    // as the client puts it together: a comment or hidden element opened in one event and
    // closed in another is a hidden carrier.
    const fragments = events.flatMap((data, i) => eventFragments(first + i, data, this.root));
    const windowed: SegmentIn[] = [];
    for (const { location: path, text: joined, escapes } of joinedByPath(fragments, this.root)) {
      // Keys are read in each event (below), whole: a window of them would be read again per event.
      if (isKeyPath(path, this.root)) continue;
      // The whole batch's text, after the window before it: a batch of many events (held, or in
      // one read) is read joined in full, not only its last SSE_WINDOW characters.
      // The escapes written at the path so far count together (a stream can send a letter an event).
      const before = this.#windows.get(path);
      const text = (before?.text ?? "") + joined;
      const written = (before?.escapes ?? 0) + (escapes ?? 0);
      // A stream with many paths keeps the windows of the most recent ones only (bounded memory).
      this.#windows.delete(path);
      this.#windows.set(path, { text: text.slice(-SSE_WINDOW), escapes: written });
      if (this.#windows.size > SSE_MAX_PATHS) this.#windows.delete(this.#windows.keys().next().value!);
      windowed.push(...fragmentSegments([{ location: path, text, ...(written > 0 ? { escapes: written } : {}) }]));
    }
    // Each event on its own too (whole messages one per event: joined, "Done" + "Ignore ..." would
    // read as one word).
    windowed.push(...fragmentSegments(fragments));
    if (raw !== null) windowed.push({ location: this.root, carrier: "text", text: raw });
    const r = this.inj.engine.scan(windowed, this.#tally);
    for (const f of r.findings) {
      if (this.#findings.length >= 64) break;
      if (!this.#findings.some((g) => g.rule === f.rule && g.location === f.location)) this.#findings.push(f);
    }
    return this.#tally.score >= this.inj.engine.threshold && this.inj.action !== "warn" && !this.audit;
  }

  /** The findings so far, for the record; null when there are none. */
  decision(): Decision | null {
    if (this.#findings.length === 0) return null;
    const over = this.#tally.score >= this.inj.engine.threshold;
    const top = [...this.#findings].sort((a, b) => b.weight - a.weight)[0]!;
    const rules = [...new Set(this.#findings.map((f) => f.rule))];
    const reason: Reason = { rule: top.rule, code: "injection_detected", detail: `injection score ${this.#tally.score}${over ? " >=" : " <"} threshold ${this.inj.engine.threshold} in ${this.what}: ${rules.join(", ")}` };
    const findings = asFindings(this.#findings);
    if (!over) return { verdict: "allow", reasons: [reason], findings };
    if (this.inj.action === "warn") return { verdict: "warn", reasons: [reason], findings };
    if (this.audit) return { verdict: "allow", wouldBlock: true, reasons: [reason], findings };
    return { verdict: "block", reasons: [reason], findings };
  }
}

/**
 * A `text/event-stream` response scanned event by event as it streams (WHATWG HTML §9.2): each
 * complete event is scanned (EventScan) before it is passed on; an incomplete one waits for its
 * end. Once the score reaches the threshold the stream ends with a final `error` event (block;
 * strip cannot take back what was sent, so it blocks too).
 */
export class SseStream {
  readonly #decoder = new TextDecoder("utf-8");
  #pending = "";
  readonly #scan: EventScan;
  #stopped = false;
  /** Stopped because one event grew past SSE_MAX_PENDING. */
  #tooLong = false;
  /** When the events were last scanned (performance.now()). */
  #lastScan = -Infinity;

  /**
   * `holdMs`: complete events that come less than this after the last scan are held (up to
   * SSE_BATCH characters of them) and scanned together when it has passed: push() says how long
   * to wait, and the caller calls flush() then. 0 (the default): each push is scanned at once.
   */
  constructor(
    inj: InjectionSettings,
    audit: boolean,
    private readonly holdMs = 0,
  ) {
    this.#scan = new EventScan(inj, audit, "body.sse", "an event stream");
  }

  /** The findings so far, for the record. */
  decision(): Decision | null {
    if (this.#tooLong) {
      const reason: Reason = { rule: "inj.event-too-large", code: "body_too_large", detail: `an event of the stream grew past ${SSE_MAX_PENDING} bytes without ending; the stream was ended unread` };
      return { verdict: "block", reasons: [reason], findings: this.#scan.decision()?.findings ?? [] };
    }
    return this.#scan.decision();
  }

  /**
   * The next body bytes: returns the text to pass on now (complete, clean events), whether the
   * stream must stop here (then the caller sends stopEvent() and ends it), and, when complete
   * events are held (holdMs), in how many milliseconds to flush() them.
   */
  push(bytes: Uint8Array, end = false, now = performance.now(), force = false): { readonly out: string; readonly stop: boolean; readonly wait: number } {
    if (this.#stopped) return { out: "", stop: true, wait: 0 };
    this.#pending += this.#decoder.decode(bytes, { stream: !end });
    const cut = end ? this.#pending.length : lastEventEnd(this.#pending);
    if (cut < 0 && this.#pending.length > SSE_MAX_PENDING) {
      // An event longer than this is not passed on unread: the stream ends here (fail closed).
      this.#tooLong = true;
      this.#stopped = true;
      return { out: "", stop: true, wait: 0 };
    }
    if (cut <= 0) return { out: "", stop: false, wait: 0 };
    const since = now - this.#lastScan;
    if (!end && !force && cut < SSE_BATCH && since < this.holdMs) return { out: "", stop: false, wait: this.holdMs - since };
    this.#lastScan = now;
    const events = this.#pending.slice(0, cut);
    this.#pending = this.#pending.slice(cut);
    // The events as sent, every line, are read too (comments, other fields, text that is not an
    // event): all of it reaches the client.
    if (this.#scan.scan(sseEvents(events), streamRest(events))) {
      this.#stopped = true;
      return { out: "", stop: true, wait: 0 };
    }
    return { out: events, stop: false, wait: 0 };
  }

  /** Scans the complete events held (push's `wait` has passed): what to pass on, and whether to stop. */
  flush(now = performance.now()): { readonly out: string; readonly stop: boolean; readonly wait: number } {
    return this.push(new Uint8Array(0), false, now, true);
  }

  /** The event that ends a blocked stream: what the agent's client reads instead of the rest. */
  stopEvent(): string {
    const d = this.decision();
    const r = d?.reasons[0];
    return `event: error\ndata: ${JSON.stringify({ error: "blocked by sluice", rule: r?.rule, reason: r?.code, detail: r?.detail })}\n\n`;
  }
}

/**
 * Offset just past the last blank line (the end of the last complete event), or -1. Lines end in
 * CRLF, LF or CR (WHATWG HTML §9.2.6), in any mix: a blank line is two line ends in a row.
 */
function lastEventEnd(text: string): number {
  for (let i = text.length - 1; i > 0; i--) {
    const c = text.charCodeAt(i);
    if (c !== 0x0a && c !== 0x0d) continue;
    // `i` ends a line; the line before it is blank when the character before its terminator is one too.
    let j = i - 1;
    if (c === 0x0a && text.charCodeAt(j) === 0x0d) j--;
    if (j >= 0 && (text.charCodeAt(j) === 0x0a || text.charCodeAt(j) === 0x0d)) {
      // A CR at the very end may be the first half of a CRLF still to come.
      if (c === 0x0d && i === text.length - 1) continue;
      return i + 1;
    }
  }
  return -1;
}

/** Text judged together each time a response too large to hold is scanned as it streams. */
export const STREAM_WINDOW = 1024 * 1024;
/** Text of the previous window read again with the next, so an instruction across the cut is seen whole. */
export const STREAM_OVERLAP = 4096;

/**
 * A response over injection.max_buffer scanned as it streams (`injection.oversize: stream`): its
 * bytes are held until STREAM_WINDOW of them (or the end) have come, judged as text with the last
 * STREAM_OVERLAP characters of the window before, and passed on as received when the score,
 * counted over the whole response, stays under the threshold. At the threshold the response
 * stops there: what was judged clean is already with the client, the rest is never sent, and the
 * client sees a response cut short (block; strip cannot take back what was sent, so it blocks too).
 * A window that is not whole JSON is read as text.
 */
export class WindowedScan {
  /** Made at the first bytes: a byte-order mark decides over the label, as clients do. */
  #decoder: TextDecoder | null = null;
  readonly #label: string;
  readonly #kind: NonNullable<ReturnType<typeof responseKind>>;
  /** Sent without a type: its first bytes are sniffed (sniffsBinary). */
  readonly #undeclared: boolean;
  /** Binary by the sniff: only its runs of text are read (textRuns). */
  #binary = false;
  readonly #tally: ScoreTally = { counted: new Map(), score: 0 };
  readonly #findings: InjectionFinding[] = [];
  #pending: Uint8Array[] = [];
  #pendingSize = 0;
  #tail = "";
  #stopped = false;

  /** Throws a TypeError for a charset this runtime cannot decode (the caller refuses the response). */
  constructor(
    private readonly inj: InjectionSettings,
    private readonly audit: boolean,
    contentType: string | undefined,
    private readonly window = STREAM_WINDOW,
  ) {
    this.#kind = responseKind(contentType) ?? "text";
    this.#undeclared = undeclaredType(contentType);
    this.#label = CHARSET.exec(contentType ?? "")?.[1] ?? "utf-8";
    // Refused now, not at the first bytes, when the label names nothing this runtime decodes.
    new TextDecoder(this.#label as ConstructorParameters<typeof TextDecoder>[0]);
  }

  /** The next body bytes (`end`: the last): the bytes judged clean to pass on now, and whether the response must stop here. */
  push(bytes: Uint8Array, end = false): { readonly out: Uint8Array[]; readonly stop: boolean } {
    if (this.#stopped) return { out: [], stop: true };
    if (bytes.length > 0) {
      this.#pending.push(bytes);
      this.#pendingSize += bytes.length;
    }
    if (!end && this.#pendingSize < this.window) return { out: [], stop: false };
    const out = this.#pending;
    this.#pending = [];
    this.#pendingSize = 0;
    if (this.#decoder === null) {
      // The first bytes (SNIFF_BYTES of them, across the pieces they came in): a byte-order mark,
      // and for a body without a type, the sniff.
      const parts: Uint8Array[] = [];
      for (let i = 0, size = 0; i < out.length && size < SNIFF_BYTES; size += out[i]!.length, i++) parts.push(out[i]!);
      const first = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      this.#binary = this.#undeclared && sniffsBinary(first);
      this.#decoder = new TextDecoder((byteOrderMark(first) ?? this.#label) as ConstructorParameters<typeof TextDecoder>[0]);
    }
    let text = "";
    for (const b of out) text += this.#decoder.decode(b, { stream: true });
    if (end) text += this.#decoder.decode();
    if (this.#binary) text = textRuns(text);
    // A window of a JSON body is seldom whole JSON: read as text, its string escapes undone (a
    // parser would turn "\n" into a line break, and "ignore\nprevious" into two words).
    if (this.#kind === "json") text = unescapeJsonStrings(text);
    const read = this.#tail + text;
    this.#tail = read.slice(-STREAM_OVERLAP);
    const kind = this.#kind === "json" ? "text" : this.#kind;
    const r = this.inj.engine.scan(responseSegments(kind, read), this.#tally);
    for (const f of r.findings) {
      if (this.#findings.length >= 64) break;
      if (!this.#findings.some((g) => g.rule === f.rule && g.location === f.location)) this.#findings.push(f);
    }
    if (this.#tally.score >= this.inj.engine.threshold && this.inj.action !== "warn" && !this.audit) {
      this.#stopped = true;
      return { out: [], stop: true };
    }
    return { out, stop: false };
  }

  /** The findings so far, for the record. */
  decision(): Decision | null {
    if (this.#findings.length === 0) return null;
    const over = this.#tally.score >= this.inj.engine.threshold;
    const top = [...this.#findings].sort((a, b) => b.weight - a.weight)[0]!;
    const rules = [...new Set(this.#findings.map((f) => f.rule))];
    const reason: Reason = {
      rule: top.rule,
      code: "injection_detected",
      detail: `injection score ${this.#tally.score}${over ? " >=" : " <"} threshold ${this.inj.engine.threshold} in a response scanned as it streamed (over injection.max_buffer): ${rules.join(", ")}`,
    };
    const findings = asFindings(this.#findings);
    if (!over) return { verdict: "allow", reasons: [reason], findings };
    if (this.inj.action === "warn") return { verdict: "warn", reasons: [reason], findings };
    if (this.audit) return { verdict: "allow", wouldBlock: true, reasons: [reason], findings };
    return { verdict: "block", reasons: [reason], findings };
  }
}

const JSON_ESCAPE = /\\(?:u([0-9A-Fa-f]{4})|(["\\/bfnrt]))/g;
const JSON_SIMPLE: Readonly<Record<string, string>> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/** JSON string escapes undone wherever they are (a window of a JSON body is not whole JSON). */
export function unescapeJsonStrings(text: string): string {
  if (!text.includes("\\")) return text;
  return text.replace(JSON_ESCAPE, (_, hex: string | undefined, simple: string | undefined) => (hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : JSON_SIMPLE[simple!]!));
}
