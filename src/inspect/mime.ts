/**
 * A mail message (`message/rfc822`, an `.eml` file) read as its parts, the way a mail client
 * shows it (RFC 5322 headers, RFC 2045/2046 bodies): the header block, then each part by its
 * type, a multipart body part by part (nested up to MAX_DEPTH), base64 and quoted-printable
 * parts decoded. Lenient, as mail is: CRLF or LF line breaks, a missing close delimiter, an
 * unknown charset read as UTF-8. Nothing is dropped: a body that does not parse as a message is
 * one leaf of text, and a part that does not decode is read as written. Pure.
 */
import { hexDigit } from "../scan/decode/text.ts";
import { BOUNDARY, headerParams, mediaType } from "./body-fragments.ts";

/** One piece of the message to read. */
export interface MimeLeaf {
  /** Where it lies: `-headers`, `[1]`, `[1][0]`, `[1]-preamble` (appended to the body's location). */
  readonly path: string;
  /** Its media type, lower case: `text/plain` for header blocks, preambles and epilogues. */
  readonly type: string;
  readonly text: string;
  /** Where `text` starts in the body; null when it was decoded (its characters are not the body's). */
  readonly offset: number | null;
}

/** Multiparts inside multiparts (or messages inside messages) read as parts; deeper ones as text. */
export const MAX_DEPTH = 8;
/** Parts read per message, in all: the rest of a body with more is one leaf of text. */
export const MAX_PARTS = 1000;

const HEADER_LINE = /^[!-9;-~]+[ \t]*:/;

/** The leaves of message `text`: its headers and parts in order. */
export function mimeLeaves(text: string): MimeLeaf[] {
  const out: MimeLeaf[] = [];
  readEntity(text, 0, text.length, "", 0, out, { parts: 0 });
  return out;
}

/** The entity (headers, blank line, body) in text[start, end) into `out`. */
function readEntity(text: string, start: number, end: number, path: string, depth: number, out: MimeLeaf[], budget: { parts: number }): void {
  const split = headerEnd(text, start, end);
  if (split === null) {
    out.push(leaf(path, "text/plain", text, start, end));
    return;
  }
  const [headersEnd, bodyStart] = split;
  const headers = headerFields(text.slice(start, headersEnd));
  out.push(leaf(`${path}-headers`, "text/plain", text, start, headersEnd));
  const contentType = headers.get("content-type") ?? "text/plain";
  const type = mediaType(contentType) || "text/plain";
  if (depth < MAX_DEPTH && type.startsWith("multipart/")) {
    const boundary = headerParams(contentType).get("boundary");
    if (boundary !== undefined && BOUNDARY.test(boundary) && readMultipart(text, bodyStart, end, boundary, path, depth, out, budget)) return;
  }
  if (depth < MAX_DEPTH && (type === "message/rfc822" || type === "message/global")) {
    readEntity(text, bodyStart, end, `${path}[0]`, depth + 1, out, budget);
    return;
  }
  const encoding = (headers.get("content-transfer-encoding") ?? "").trim().toLowerCase();
  const decoded = type.startsWith("text/") || type === "application/xhtml+xml" ? decodeBody(text.slice(bodyStart, end), encoding, headerParams(contentType).get("charset")) : null;
  out.push(decoded === null ? leaf(path, type, text, bodyStart, end) : { path, type, text: decoded, offset: null });
}

/**
 * Reads the parts of a multipart body in text[start, end); false (and nothing added) when no
 * delimiter line is found. A delimiter is a line that is `--boundary`, then white space; the
 * close delimiter is `--boundary--`.
 */
function readMultipart(text: string, start: number, end: number, boundary: string, path: string, depth: number, out: MimeLeaf[], budget: { parts: number }): boolean {
  const dash = `--${boundary}`;
  // Each delimiter line: where it starts, where the next line starts, whether it closes. Sought in
  // the body alone (a search of the whole text, once per part, would read past it every time).
  const body = text.slice(start, end);
  const lines: [at: number, next: number, close: boolean][] = [];
  for (let found = body.indexOf(dash); found >= 0; found = body.indexOf(dash, found + dash.length)) {
    const at = start + found;
    if (at > start && text.charCodeAt(at - 1) !== 10) continue;
    let k = at + dash.length;
    const close = text.startsWith("--", k);
    if (close) k += 2;
    while (k < end && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9 || text.charCodeAt(k) === 13)) k++;
    if (k < end && text.charCodeAt(k) !== 10) continue;
    lines.push([at, Math.min(end, k + 1), close]);
    if (close) break;
  }
  if (lines.length === 0) return false;
  const before = (at: number) => (at > start && text.charCodeAt(at - 1) === 10 ? (at - 1 > start && text.charCodeAt(at - 2) === 13 ? at - 2 : at - 1) : at);
  const preamble = before(lines[0]![0]);
  if (text.slice(start, preamble).trim().length > 0) out.push(leaf(`${path}-preamble`, "text/plain", text, start, preamble));
  for (let i = 0; i < lines.length; i++) {
    const [, from, close] = lines[i]!;
    if (close) break;
    // A part runs to the line break before the next delimiter (or to the end: a missing close delimiter).
    const to = i + 1 < lines.length ? before(lines[i + 1]![0]) : end;
    if (++budget.parts > MAX_PARTS) {
      out.push(leaf(`${path}[${i}]`, "text/plain", text, from, end));
      return true;
    }
    readEntity(text, from, to, `${path}[${i}]`, depth + 1, out, budget);
  }
  const last = lines[lines.length - 1]!;
  if (last[2] && text.slice(last[1], end).trim().length > 0) out.push(leaf(`${path}-epilogue`, "text/plain", text, last[1], end));
  return true;
}

const leaf = (path: string, type: string, text: string, start: number, end: number): MimeLeaf => ({ path, type, text: text.slice(start, end), offset: start });

/**
 * Where the header block of text[start, end) ends and the body starts: the first blank line,
 * when every line before it is a header field or the continuation of one (the first a field);
 * null when the text does not start with headers (a part with no headers starts with its blank
 * line). Read line by line, no further than the first line that is neither.
 */
function headerEnd(text: string, start: number, end: number): [headersEnd: number, bodyStart: number] | null {
  for (let at = start; at < end; ) {
    let nl = text.indexOf("\n", at);
    if (nl < 0 || nl >= end) nl = end;
    const line = text.slice(at, nl > at && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl);
    // A blank line ends the block (the text's first line blank: no headers, an empty block).
    if (line.length === 0) return [at > start ? at - (text.charCodeAt(at - 2) === 13 ? 2 : 1) : start, Math.min(end, nl + 1)];
    if (!HEADER_LINE.test(line) && (at === start || !/^[ \t]/.test(line))) return null;
    at = nl + 1;
  }
  return [end, end];
}

/** Header fields by lower-case name (the first of each), continuation lines unfolded. */
function headerFields(block: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of block.replace(/\r?\n(?=[ \t])/g, "").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    if (colon > 0 && !fields.has(name)) fields.set(name, line.slice(colon + 1).trim());
  }
  return fields;
}

/** A text part's content decoded from its transfer encoding and charset; null when it is not encoded, or does not decode. */
function decodeBody(body: string, encoding: string, charset: string | undefined): string | null {
  let bytes: Uint8Array | null = null;
  if (encoding === "base64") {
    const compact = body.replace(/[\s]+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return null;
    bytes = Buffer.from(compact, "base64");
  } else if (encoding === "quoted-printable") bytes = quotedPrintableBytes(body);
  if (bytes === null) return null;
  try {
    return new TextDecoder((charset ?? "utf-8") as ConstructorParameters<typeof TextDecoder>[0]).decode(bytes);
  } catch {
    // An unknown charset: read as UTF-8, as most mail is.
    return new TextDecoder("utf-8").decode(bytes);
  }
}

/** RFC 2045 §6.7: `=XX` escapes (either case) and soft line breaks; any other `=` kept as it is. */
function quotedPrintableBytes(body: string): Uint8Array {
  const out: number[] = [];
  const latin = Buffer.from(body, "utf8");
  for (let i = 0; i < latin.length; i++) {
    const c = latin[i]!;
    if (c !== 61) {
      out.push(c);
      continue;
    }
    const hi = i + 2 < latin.length ? hexDigit(latin[i + 1]!) : -1;
    const lo = hi >= 0 ? hexDigit(latin[i + 2]!) : -1;
    if (lo >= 0) {
      out.push((hi << 4) | lo);
      i += 2;
      continue;
    }
    // A soft line break: `=`, white space, then CRLF or LF.
    let k = i + 1;
    while (latin[k] === 32 || latin[k] === 9) k++;
    if (latin[k] === 13 && latin[k + 1] === 10) i = k + 1;
    else if (latin[k] === 10) i = k;
    else out.push(c);
  }
  return Uint8Array.from(out);
}
