/**
 * DLP on request bodies, without sockets: forward.ts feeds bytes in and sends what comes out.
 *
 * - Held bodies (up to dlp.body.max_buffer): read whole, their Content-Encoding undone within
 *   the decompression limits, parsed by type (JSON paths, form fields, multipart parts, ...),
 *   scanned, maybe redacted, and only then sent, with a Content-Length of what is sent.
 * - Streamed bodies (larger): scanned as they pass, as text, with an overlap so a secret across
 *   two reads is seen whole; the last `overlap` bytes are held back until the next read (or the
 *   end), so the first half of such a secret has not left when the second half shows it. A
 *   finding that blocks cuts the upstream connection: the origin never gets a complete request.
 */
import * as zlib from "node:zlib";
import type { Decision, HeaderList, HttpRequestAction } from "../core/types.ts";
import { BodyStreamScanner, decideFindings, inspectBody, inspectRequest, mergeVerdicts, type ContentVerdict } from "../inspect/content.ts";
import { binaryText } from "../inspect/body-fragments.ts";
import { bodyKind, contentTypeOf } from "../inspect/fragments.ts";
import type { DlpSettings } from "../policy/policy.ts";
import { decodeContentEncoding } from "../scan/decode/content-encoding.ts";

/** Every value of a header, joined as RFC 9110 §5.3 allows for list headers; undefined when absent. */
export function headerValue(headers: HeaderList, lower: string): string | undefined {
  let out: string | undefined;
  for (const [name, value] of headers) if (name.length === lower.length && name.toLowerCase() === lower) out = out === undefined ? value : `${out}, ${value}`;
  return out;
}

/** True when a Content-Encoding other than identity applies to the body. */
export function isEncoded(contentEncoding: string | undefined): boolean {
  return contentEncoding !== undefined && contentEncoding.split(",").some((c) => c.trim() !== "" && c.trim().toLowerCase() !== "identity");
}

export type HeldOutcome =
  | { readonly ok: true; readonly verdict: ContentVerdict | null; readonly body: Uint8Array }
  | { readonly ok: false; readonly rule: string; readonly code: "body_undecodable"; readonly detail: string; readonly verdict: ContentVerdict | null };

/**
 * Judges a whole request: its head and its held body, in one scan. A redaction is applied to the
 * body's bytes and the result scanned again: a secret that is still there (it was written
 * differently in the raw bytes, e.g. JSON-escaped) turns the verdict into a block.
 */
export function judgeHeldBody(dlp: DlpSettings, action: HttpRequestAction, body: Uint8Array): HeldOutcome {
  const headers = action.headers;
  const encoding = headerValue(headers, "content-encoding");
  // Ambiguous (two different values): undefined, the body is sniffed (inspect/fragments.ts).
  const contentType = contentTypeOf(headers);
  let plain = body;
  if (isEncoded(encoding)) {
    const inflated = decodeContentEncoding(body, encoding, dlp.inflate, zlib);
    if (!inflated.ok) return { ok: false, rule: `dlp.body-${inflated.code.replace("_", "-")}`, code: "body_undecodable", detail: `request body: ${inflated.detail}`, verdict: null };
    plain = inflated.bytes;
  }
  const verdict = inspectRequest(action, plain, dlp.engine).verdict;
  if (verdict === null || verdict.decision.verdict !== "redact") return { ok: true, verdict, body };
  if (plain !== body) return { ok: true, verdict: escalate(verdict, "set to redact, but the body is compressed"), body };
  const redacted = verdict.redactor!.applyBytes(body);
  const again = inspectBody(contentType, redacted, dlp.engine).verdict;
  if (again !== null && again.decision.verdict !== "warn") return { ok: true, verdict: escalate(verdict, "set to redact, but it is still there after redaction"), body };
  return { ok: true, verdict, body: redacted };
}

/** A redact verdict that cannot be carried out, as a block that says why. */
export function escalate(v: ContentVerdict, why: string): ContentVerdict {
  const [first, ...rest] = v.decision.reasons;
  const reasons = first ? [{ ...first, detail: `${first.detail}; ${why}` }, ...rest] : [];
  return { decision: { ...v.decision, verdict: "block", reasons }, redactor: null };
}

const CRLF = Buffer.from("\r\n");
const LAST_CHUNK = Buffer.from("0\r\n\r\n");

/**
 * A body scanned as it streams. Bytes in are the body's data (chunked framing already removed);
 * bytes out are what to send upstream, framed again as chunks when the request was chunked
 * (trailers are not forwarded).
 */
export class StreamedBody {
  readonly #scanner: BodyStreamScanner;
  readonly #text = new TextDecoder("utf-8");
  #held: Uint8Array = new Uint8Array(0);
  /** Every finding so far (all warn-only unless audit mode let a block pass), for the record. */
  verdict: ContentVerdict | null = null;
  /** Output to send once the request head has gone upstream (a held body that outgrew the buffer). */
  pendingOut: Uint8Array[] = [];

  constructor(
    private readonly dlp: DlpSettings,
    private readonly chunked: boolean,
  ) {
    this.#scanner = new BodyStreamScanner(dlp.engine, dlp.overlapBytes);
  }

  /**
   * Scans `data`; returns what may be sent now and, when a finding must stop the body, its
   * verdict (`stop`). The caller stops (enforce) or records and sends on (audit mode).
   */
  push(data: Uint8Array): { send: Uint8Array[]; stop?: ContentVerdict } {
    if (data.length === 0) return { send: [] };
    let stop: ContentVerdict | undefined;
    {
      // Each read is judged on its own: binary data is scanned as the text inside it (printable
      // runs, UTF-16), text as UTF-8, so no prefix byte makes the rest of a body go unread.
      // Binary is read together with the bytes held back from the last read, so a string or
      // UTF-16 text cut by the read boundary is whole (binaryText needs 6 characters in a row).
      // (It repeats the held bytes' strings, so it starts on a new line rather than glued to the
      // scanner's own tail, where a string would run into its repeat.)
      const binary = bodyKind(undefined, data.subarray(0, 1024)) === "binary";
      const withHeld = () => (this.#held.length === 0 ? data : Buffer.concat([this.#held, data]));
      let text = binary ? `\n${binaryText(withHeld())}` : this.#text.decode(data, { stream: true });
      if (!binary && text.includes("\0")) text += `\n${binaryText(withHeld())}`;
      let found = decideFindings(this.#scanner.push(text));
      if (found !== null && found.decision.verdict === "redact") found = escalate(found, "set to redact, but the body is streamed (larger than dlp.body.max_buffer)");
      if (found !== null && found.decision.verdict === "block") stop = found;
      this.verdict = mergeVerdicts(this.verdict, found);
    }
    const all = this.#held.length === 0 ? data : Buffer.concat([this.#held, data]);
    const keep = Math.min(all.length, this.dlp.overlapBytes);
    // A copy, so a held tail does not pin the whole read buffer it came from.
    this.#held = Uint8Array.prototype.slice.call(all, all.length - keep);
    const send = this.#frame(all.subarray(0, all.length - keep));
    return stop ? { send, stop } : { send };
  }

  /** The end of the body: what was held back, and the last chunk when chunked. */
  end(): Uint8Array[] {
    const out = this.#frame(this.#held);
    this.#held = new Uint8Array(0);
    if (this.chunked) out.push(LAST_CHUNK);
    return out;
  }

  #frame(data: Uint8Array): Uint8Array[] {
    if (data.length === 0) return [];
    return this.chunked ? [Buffer.from(`${data.length.toString(16)}\r\n`), data, CRLF] : [data];
  }
}

/**
 * The decision to record and enact for a request with content findings, the findings' reasons
 * first. In audit mode nothing is changed on the wire: a redaction becomes a warn (its reasons
 * say what would have been redacted); blocks are softened by applyMode as usual.
 */
export function withContent(base: Decision, v: ContentVerdict | null, audit: boolean): Decision {
  if (v === null) return base;
  const verdict = audit && v.decision.verdict === "redact" ? "warn" : v.decision.verdict;
  return { verdict, reasons: [...v.decision.reasons, ...base.reasons], findings: v.decision.findings ?? [] };
}
