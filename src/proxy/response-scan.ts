/**
 * Prompt injection in responses, without sockets: forward.ts holds a scannable response whole
 * (up to injection.max_buffer), hands its bytes here, and sends what comes back: the response as
 * it was, a stripped copy, or a block.
 */
import * as zlib from "node:zlib";
import type { Decision, Reason } from "../core/types.ts";
import { asFindings, eventSegments, inspectResponse, responseKind, sseEvents, type ResponseKind } from "../inspect/response.ts";
import type { InjectionFinding } from "../scan/injection/engine.ts";
import type { InjectionSettings } from "../policy/policy.ts";
import { decodeContentEncoding } from "../scan/decode/content-encoding.ts";
import { isEncoded } from "./request-scan.ts";

export type ResponseJudgement =
  /** Send `body` (the bytes as received, or a stripped copy: then without Content-Encoding). */
  | { readonly kind: "forward"; readonly body: Uint8Array; readonly stripped: boolean; readonly decision: Decision | null }
  | { readonly kind: "block"; readonly decision: Decision; readonly reason: Reason };

/** The kind of a response to hold and scan, or null to pass it on as it streams. */
export function scannableKind(contentType: string | undefined): ResponseKind | null {
  return responseKind(contentType);
}

const CHARSET = /;\s*charset\s*=\s*"?([A-Za-z0-9._:-]+)"?/i;

/** The body as text in its declared charset (UTF-8 when none, or one TextDecoder does not know), lossy: a bad byte must not hide the rest. */
function bodyText(bytes: Uint8Array, contentType: string | undefined): string {
  const label = CHARSET.exec(contentType ?? "")?.[1];
  if (label !== undefined) {
    try {
      return new TextDecoder(label as ConstructorParameters<typeof TextDecoder>[0]).decode(bytes);
    } catch {
      // An unknown label: read as UTF-8.
    }
  }
  return new TextDecoder("utf-8").decode(bytes);
}

/**
 * Judges a whole response body. `audit` (mode: audit) changes nothing on the wire: a block or a
 * strip is recorded as what would have happened.
 */
export function judgeHeldResponse(inj: InjectionSettings, audit: boolean, contentType: string | undefined, contentEncoding: string | undefined, body: Uint8Array): ResponseJudgement {
  const kind = scannableKind(contentType);
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
  const v = inspectResponse(kind, bodyText(plain, contentType), inj.engine, inj.action);
  if (v.findings.length === 0) return { kind: "forward", body, stripped: false, decision: null };
  const top = [...v.findings].sort((a, b) => b.weight - a.weight)[0]!;
  const rules = [...new Set(v.findings.map((f) => f.rule))];
  const over = v.verdict !== "allow";
  const detail = `injection score ${v.score}${over ? " >=" : " <"} threshold ${inj.engine.threshold}: ${rules.join(", ")}${v.escalated ? `; strip was not possible: ${v.escalated}` : ""}`;
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
/** The last bytes of an event not yet complete that are held at most; past it, the stream is judged as it is. */
const SSE_MAX_PENDING = 1024 * 1024;

/**
 * A `text/event-stream` response scanned event by event as it streams (WHATWG HTML §9.2): each
 * complete event is scanned before it is passed on; an incomplete one waits for its end. Text at
 * the same JSON path in successive events (a chat completion's `delta.content`) is scanned with
 * the last SSE_WINDOW characters before it, and rules count once per stream, so an instruction
 * spread over many small events is still found. Once the score reaches the threshold the stream
 * ends with a final `error` event (block; strip cannot take back what was sent, so it blocks too).
 */
export class SseStream {
  readonly #decoder = new TextDecoder("utf-8");
  #pending = "";
  readonly #windows = new Map<string, string>();
  readonly #counted = new Map<string, number>();
  readonly #findings: InjectionFinding[] = [];
  #score = 0;
  #stopped = false;

  constructor(
    private readonly inj: InjectionSettings,
    private readonly audit: boolean,
  ) {}

  /** The findings so far, for the record. */
  decision(): Decision | null {
    if (this.#findings.length === 0) return null;
    const over = this.#score >= this.inj.engine.threshold;
    const top = [...this.#findings].sort((a, b) => b.weight - a.weight)[0]!;
    const rules = [...new Set(this.#findings.map((f) => f.rule))];
    const reason: Reason = { rule: top.rule, code: "injection_detected", detail: `injection score ${this.#score}${over ? " >=" : " <"} threshold ${this.inj.engine.threshold} in an event stream: ${rules.join(", ")}` };
    const findings = asFindings(this.#findings);
    if (!over) return { verdict: "allow", reasons: [reason], findings };
    if (this.inj.action === "warn") return { verdict: "warn", reasons: [reason], findings };
    if (this.audit) return { verdict: "allow", wouldBlock: true, reasons: [reason], findings };
    return { verdict: "block", reasons: [reason], findings };
  }

  /**
   * The next body bytes: returns the text to pass on now (complete, clean events) and whether the
   * stream must stop here (then the caller sends stopEvent() and ends it).
   */
  push(bytes: Uint8Array, end = false): { readonly out: string; readonly stop: boolean } {
    if (this.#stopped) return { out: "", stop: true };
    this.#pending += this.#decoder.decode(bytes, { stream: !end });
    let cut = end ? this.#pending.length : lastEventEnd(this.#pending);
    if (cut < 0 && this.#pending.length > SSE_MAX_PENDING) cut = this.#pending.length;
    if (cut <= 0) return { out: "", stop: false };
    const events = this.#pending.slice(0, cut);
    this.#pending = this.#pending.slice(cut);
    if (this.#scan(events)) {
      this.#stopped = true;
      return { out: "", stop: true };
    }
    return { out: events, stop: false };
  }

  /** The event that ends a blocked stream: what the agent's client reads instead of the rest. */
  stopEvent(): string {
    const d = this.decision();
    const r = d?.reasons[0];
    return `event: error\ndata: ${JSON.stringify({ error: "blocked by sluice", rule: r?.rule, reason: r?.code, detail: r?.detail })}\n\n`;
  }

  /** Scans complete events; true when the stream must stop. */
  #scan(events: string): boolean {
    const segments = sseEvents(events).flatMap((data, i) => eventSegments(i, data));
    const windowed = segments.map((s) => {
      // `body.sse[3].choices[0].delta.content` -> one window for every event's delta.content.
      const path = s.location.replace(/^body\.sse\[\d+\]/, "body.sse");
      const text = ((this.#windows.get(path) ?? "") + s.text).slice(-SSE_WINDOW);
      this.#windows.set(path, text);
      return { ...s, location: path, text };
    });
    const r = this.inj.engine.scan(windowed);
    for (const f of r.findings) {
      if (this.#counted.has(f.rule)) continue;
      this.#counted.set(f.rule, f.weight);
      this.#score += f.weight;
      if (this.#findings.length < 64) this.#findings.push(f);
    }
    return this.#score >= this.inj.engine.threshold && this.inj.action !== "warn" && !this.audit;
  }
}

/** Offset just past the last blank line (the end of the last complete event), or -1. */
function lastEventEnd(text: string): number {
  const lf = text.lastIndexOf("\n\n");
  const crlf = text.lastIndexOf("\r\n\r\n");
  const cr = text.lastIndexOf("\r\r");
  return Math.max(lf < 0 ? -1 : lf + 2, crlf < 0 ? -1 : crlf + 4, cr < 0 ? -1 : cr + 2);
}
