/**
 * Content inspection of a request: its fragments (URL, headers, body) through the DLP engine,
 * and the findings turned into one Decision (ARCHITECTURE.md, "The one flow"). Pure.
 *
 * Actions per finding (scan/dlp.ts): `block` wins over `redact`, which wins over `warn`. A
 * finding configured to `redact` that was only visible through a decoder (the secret is base64
 * inside the body, say) cannot be cut out of the bytes as sent, so it blocks instead: sluice never
 * forwards a secret it was told to remove.
 */
import type { Decision, Finding, Fragment, HttpRequestAction, Reason } from "../core/types.ts";
import type { DlpEngine, DlpHit } from "../scan/dlp.ts";
import { bodyFragments, contentTypeOf, headerFragments, joinedFragments, SENSITIVE_HEADERS, urlFragments, type FragmentLimits } from "./fragments.ts";

/**
 * Replaces secrets found as written with `[REDACTED:<rule>]`. The values live in a private field:
 * a Redactor serialises to `{}`, so a decision that carries one can be logged without them.
 */
export class Redactor {
  readonly #pairs: (readonly [literal: string, replacement: string])[] = [];

  add(literal: string, rule: string): void {
    if (literal.length > 0 && !this.#pairs.some(([l]) => l === literal)) this.#pairs.push([literal, `[REDACTED:${rule}]`]);
    // Longest first, so a secret that contains another is replaced whole.
    this.#pairs.sort((a, b) => b[0].length - a[0].length);
  }

  /** Adds every secret of `other`. */
  absorb(other: Redactor): void {
    for (const [literal, replacement] of other.#pairs) this.add(literal, replacement.slice("[REDACTED:".length, -1));
  }

  get size(): number {
    return this.#pairs.length;
  }

  apply(text: string): string {
    let out = text;
    for (const [literal, replacement] of this.#pairs) out = out.split(literal).join(replacement);
    return out;
  }

  /** The same on bytes: the secrets' UTF-8 bytes replaced, every other byte kept as it was. */
  applyBytes(bytes: Uint8Array): Uint8Array {
    let out = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const [literal, replacement] of this.#pairs) {
      const needle = Buffer.from(literal, "utf8");
      const parts: Buffer[] = [];
      let last = 0;
      for (let at = out.indexOf(needle); at >= 0; at = out.indexOf(needle, at + needle.length)) {
        parts.push(out.subarray(last, at), Buffer.from(replacement, "utf8"));
        last = at + needle.length;
      }
      if (parts.length > 0) out = Buffer.concat([...parts, out.subarray(last)]);
    }
    return out;
  }

  toJSON(): Record<string, never> {
    return {};
  }
}

/**
 * Locations a redaction cannot fix: the host routes the request (and was already resolved), and
 * a joined fragment's text never occurs as written (its pieces are apart).
 */
const UNREDACTABLE = /^(?:url\.host|header\.host|joined\()/;

export interface ContentVerdict {
  /** block, redact or warn; never allow (no findings is `null`). */
  readonly decision: Decision;
  /** Present when the verdict is redact. */
  readonly redactor: Redactor | null;
}

function reasonOf(hit: DlpHit, detailSuffix = ""): Reason {
  const f = hit.finding;
  const via = f.via.length > 0 ? ` (via ${f.via.join(" > ")})` : "";
  // A credential in a header made for credentials is most often the agent's own key for the
  // destination: still a finding (the agent should not hold it; credential injection removes
  // that need), but the record says which kind of header it was.
  const header = /^header\.([a-z0-9-]+)/.exec(f.location)?.[1];
  const sensitive = header !== undefined && SENSITIVE_HEADERS.has(header) ? " (a credential header)" : "";
  return { rule: f.rule, code: "dlp_finding", detail: `${f.rule} in ${f.location}${sensitive}: ${f.preview}${via}${detailSuffix}` };
}

/** The decision for a set of findings, or null when there are none. */
export function decideFindings(hits: readonly DlpHit[]): ContentVerdict | null {
  if (hits.length === 0) return null;
  const blocking: Reason[] = [];
  const redacting: Reason[] = [];
  const warning: Reason[] = [];
  const redactor = new Redactor();
  for (const hit of hits) {
    if (hit.action === "block") blocking.push(reasonOf(hit));
    else if (hit.action === "redact" && hit.literal === null) blocking.push(reasonOf(hit, "; set to redact, but it was encoded and cannot be cut out"));
    else if (hit.action === "redact" && UNREDACTABLE.test(hit.finding.location)) blocking.push(reasonOf(hit, "; set to redact, but a host name or a secret split across values cannot be cut out"));
    else if (hit.action === "redact") {
      redacting.push(reasonOf(hit, "; redacted"));
      redactor.add(hit.literal!, hit.finding.rule);
    } else warning.push(reasonOf(hit, "; warn only"));
  }
  const findings: Finding[] = hits.map((h) => h.finding);
  const reasons = [...blocking, ...redacting, ...warning];
  const verdict = blocking.length > 0 ? "block" : redacting.length > 0 ? "redact" : "warn";
  return { decision: { verdict, reasons, findings }, redactor: verdict === "redact" ? redactor : null };
}

/** The URL and headers of a request. */
export function headFragments(action: HttpRequestAction): Fragment[] {
  const fragments = [...urlFragments(action.hostAsWritten ?? action.host, action.path, action.query), ...headerFragments(action.headers)];
  return [...fragments, ...joinedFragments(fragments)];
}

export function inspectHead(action: HttpRequestAction, dlp: DlpEngine): ContentVerdict | null {
  // Everything the fragments are made of, for the engine's clean-request memory (scanOnce).
  let key = `${action.hostAsWritten ?? action.host}\n${action.path}\n${action.query}`;
  for (const [name, value] of action.headers) key += `\n${name}:${value}`;
  return decideFindings(dlp.scanOnce(key, () => headFragments(action)));
}

export interface BodyInspection {
  readonly verdict: ContentVerdict | null;
  /** What the body was taken for (json, form, binary, ...). */
  readonly kind: string;
  /** A parse problem; the body was then also scanned whole as text, so nothing went unseen. */
  readonly note?: string;
}

/** A whole request body (its Content-Encoding already undone) with its content type. */
export function inspectBody(contentType: string | undefined, body: Uint8Array, dlp: DlpEngine, limits?: FragmentLimits): BodyInspection {
  const parsed = bodyFragments(contentType, body, limits);
  const fragments = [...parsed.fragments, ...joinedFragments(parsed.fragments, limits)];
  const verdict = decideFindings(dlp.scan(fragments));
  return parsed.error === undefined ? { verdict, kind: parsed.kind } : { verdict, kind: parsed.kind, note: parsed.error };
}

/**
 * Scans a body that streams through in pieces, as text, with the last `overlap` characters of
 * each piece scanned again with the next, so a secret cut by a chunk boundary is seen whole.
 * Memory stays at one piece plus the overlap, whatever the body's size. A finding is reported
 * once even when the overlap shows it twice.
 */
/** Longest encoded run kept whole across reads of a streamed body. */
export const MAX_RUN_TAIL = 64 * 1024;

/** The base64 (both alphabets) and hex run characters, with padding. */
function isRunChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47 || c === 95 || c === 45 || c === 61;
}

export class BodyStreamScanner {
  #tail = "";
  readonly #seen = new Set<string>();

  constructor(
    private readonly dlp: DlpEngine,
    private readonly overlap: number,
    private readonly location = "body.stream",
  ) {}

  /** The new findings in `text` (the next piece of the body). */
  push(text: string): DlpHit[] {
    const window = this.#tail + text;
    let cut = Math.max(0, window.length - this.overlap);
    // An encoded run (base64, hex) cut by the overlap would be decoded from the wrong place next
    // time: keep it from its start, unless it is longer than MAX_RUN_TAIL.
    if (cut > 0 && isRunChar(window.charCodeAt(cut))) {
      let start = cut;
      const limit = Math.max(0, cut - MAX_RUN_TAIL);
      while (start > limit && isRunChar(window.charCodeAt(start - 1))) start--;
      if (start > limit || start === 0) cut = start;
    }
    this.#tail = window.slice(cut);
    const fresh: DlpHit[] = [];
    for (const hit of this.dlp.scan([{ location: this.location, text: window }])) {
      const key = `${hit.finding.rule}\u0000${hit.finding.preview}`;
      if (this.#seen.has(key)) continue;
      this.#seen.add(key);
      fresh.push(hit);
    }
    return fresh;
  }
}

/**
 * A whole request, head and held body. The body has its Content-Encoding undone already. The
 * head goes through the engine's memory of clean heads (an agent repeats its URL and headers
 * from request to request), the body is scanned afresh.
 */
export function inspectRequest(action: HttpRequestAction, body: Uint8Array, dlp: DlpEngine, limits?: FragmentLimits): BodyInspection {
  const head = inspectHead(action, dlp);
  const inspected = inspectBody(contentTypeOf(action.headers), body, dlp, limits);
  return { ...inspected, verdict: mergeVerdicts(head, inspected.verdict) };
}

/**
 * The path to put in a record when findings point into it: the segments they name replaced by
 * `[REDACTED]`, or the whole path when a finding covers more than one segment. Records carry the
 * path (never the query), so a token sent as a path segment must not reach them through it.
 */
export function maskedPath(path: string, findings: readonly Finding[] | undefined): string {
  if (!findings || findings.length === 0) return path;
  const masked = new Set<number>();
  const inSegments = new Set<string>();
  const wholePath: Finding[] = [];
  for (const f of findings) {
    if (!f.location.includes("url.path")) continue;
    const indices = [...f.location.matchAll(/url\.path\[(\d+)\]/g)].map((m) => Number(m[1]));
    if (indices.length === 0) wholePath.push(f);
    else inSegments.add(`${f.rule}\u0000${f.preview}`);
    for (const i of indices) masked.add(i);
  }
  // The whole path is also scanned: a secret seen there and in a segment is that segment's.
  const whole = wholePath.some((f) => !inSegments.has(`${f.rule}\u0000${f.preview}`));
  if (whole) return "[REDACTED]";
  if (masked.size === 0) return path;
  let i = 0;
  return path
    .split("/")
    .map((segment) => (segment.length === 0 ? segment : masked.has(i++) ? "[REDACTED]" : segment))
    .join("/");
}

/** Two verdicts as one: the stricter verdict, all reasons and findings, both redactors' secrets. */
export function mergeVerdicts(a: ContentVerdict | null, b: ContentVerdict | null): ContentVerdict | null {
  if (a === null) return b;
  if (b === null) return a;
  const rank = { warn: 0, redact: 1, block: 2, allow: -1 } as const;
  const [strict, other] = rank[a.decision.verdict] >= rank[b.decision.verdict] ? [a, b] : [b, a];
  const decision: Decision = {
    verdict: strict.decision.verdict,
    reasons: [...strict.decision.reasons, ...other.decision.reasons],
    findings: [...(strict.decision.findings ?? []), ...(other.decision.findings ?? [])],
  };
  if (decision.verdict !== "redact") return { decision, redactor: null };
  const redactor = new Redactor();
  for (const r of [a.redactor, b.redactor]) if (r) redactor.absorb(r);
  return { decision, redactor };
}
