/**
 * Prompt injection in what flows back to the agent (issue 5): a response body reduced to
 * segments by its type, scanned by the injection engine, and judged against the threshold:
 * block, strip the offending spans and hidden carriers, or warn. Pure: the proxy and
 * `sluice scan --as response` call it the same way (and MCP results will).
 */
import type { Finding } from "../core/types.ts";
import type { InjectionEngine, InjectionFinding, InjectionResult, SegmentIn } from "../scan/injection/engine.ts";
import { safeLocation } from "../scan/dlp.ts";
import { htmlEntityDecode } from "../scan/decode/html.ts";
import { htmlSegments, type Carrier } from "../scan/injection/html.ts";
import { WORD_RULE } from "../scan/injection/words.ts";
import { mergeSpans, partitionPoint } from "../scan/spans.ts";
import { jsonTextFragments, mediaType, ndjsonTextFragments, type BodyFragments } from "./body-fragments.ts";
import { mimeLeaves } from "./mime.ts";

export type ResponseKind = "html" | "json" | "markdown" | "text" | "xml" | "event-stream" | "email";
export type InjectionAction = "block" | "strip" | "warn";

/** Types that are not text a model reads: passed on unscanned. */
const BINARY_PREFIXES = ["image/", "audio/", "video/", "font/", "model/", "application/vnd.ms-", "application/vnd.openxmlformats", "application/grpc"];
const BINARY_TYPES = new Set([
  "application/octet-stream", "application/pdf", "application/zip", "application/gzip", "application/x-gzip", "application/x-tar",
  "application/x-7z-compressed", "application/x-rar-compressed", "application/x-bzip2", "application/x-xz", "application/zstd",
  "application/wasm", "application/x-protobuf", "application/protobuf", "application/x-msdownload", "application/msword",
  "application/java-archive", "application/x-sqlite3", "application/cbor", "application/msgpack", "application/x-msgpack",
]);

/**
 * The kind of a response body by its Content-Type; null for types that are not text a model
 * reads (images, archives, application/octet-stream, ...). Anything else is read: an unknown or
 * missing type as text, and so is an ambiguous one (two different values: which one does the
 * client believe?).
 */
export function responseKind(contentType: string | undefined): ResponseKind | null {
  if (contentType !== undefined && contentType.includes(",")) return "text";
  const type = mediaType(contentType);
  if (type === "text/html" || type === "application/xhtml+xml") return "html";
  if (type === "application/json" || type === "text/json" || type.endsWith("+json")) return "json";
  if (type === "text/markdown" || type === "text/x-markdown") return "markdown";
  if (type === "text/event-stream") return "event-stream";
  if (type === "message/rfc822" || type === "message/global") return "email";
  if (type === "application/xml" || type === "text/xml" || type.endsWith("+xml")) return "xml";
  if (BINARY_TYPES.has(type) || BINARY_PREFIXES.some((p) => type.startsWith(p))) return null;
  return "text";
}

/** The encoding a body's byte-order mark names (it decides over a charset label, as clients do), or null. */
export function byteOrderMark(bytes: Uint8Array): "utf-8" | "utf-16be" | "utf-16le" | null {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return "utf-8";
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return "utf-16be";
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return "utf-16le";
  return null;
}

/** How much of a body the binary sniff reads (WHATWG MIME Sniffing §3: the resource header). */
export const SNIFF_BYTES = 1445;

/**
 * Whether a body is binary by the rule browsers use for one sent without a type (WHATWG MIME
 * Sniffing §7.2, distinguishing text from binary): no byte-order mark, and a binary data byte
 * (0x00-0x08, 0x0B, 0x0E-0x1A, 0x1C-0x1F) among its first SNIFF_BYTES.
 */
export function sniffsBinary(bytes: Uint8Array): boolean {
  if (byteOrderMark(bytes) !== null) return false;
  for (let i = 0, n = Math.min(bytes.length, SNIFF_BYTES); i < n; i++) {
    const b = bytes[i]!;
    if (b <= 0x08 || b === 0x0b || (b >= 0x0e && b <= 0x1a) || (b >= 0x1c && b <= 0x1f)) return true;
  }
  return false;
}

/**
 * Whether a response declares no Content-Type at all (absent or blank): only then is its body
 * sniffed. A value with anything in it (a bare charset, two types joined) declares text, and
 * clients read it so.
 */
export const undeclaredType = (contentType: string | undefined): boolean => contentType === undefined || contentType.trim() === "";

/** Shortest run of text characters kept from a binary body (textRuns). */
export const TEXT_RUN_MIN = 6;
/** What is not text in a decoded binary body: C0 controls but tab, line feed, form feed and carriage return; DEL and C1; U+FFFD (bytes that were no UTF-8). */
const NOT_TEXT = /[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]+/g;

/**
 * The text of a body sent without a type that sniffs as binary: its runs of text characters,
 * one a line, those shorter than TEXT_RUN_MIN left out but at either end of `text` (a piece of a
 * stream: the run may go on in the next piece). An instruction written in such a body is still
 * read whole (a client blind to types shows it to the model: curl, most fetch tools); random
 * bytes read as text hold chance words (17 of 60 random 128 KiB bodies reached the threshold),
 * in runs of a few characters, which are left out (then none did).
 */
export function textRuns(text: string): string {
  const out: string[] = [];
  let at = 0;
  NOT_TEXT.lastIndex = 0;
  for (let m = NOT_TEXT.exec(text); ; m = NOT_TEXT.exec(text)) {
    const end = m === null ? text.length : m.index;
    if (end - at >= TEXT_RUN_MIN || (end > at && (at === 0 || end === text.length))) out.push(text.slice(at, end));
    if (m === null) break;
    at = NOT_TEXT.lastIndex;
  }
  return out.join("\n");
}

/** Carriers that are (or sit among) what the reader is shown: never cut out whole by strip. */
const SHOWN_CARRIERS: ReadonlySet<string> = new Set(["visible", "text", "code", "script"]);

/** Tags or a comment: text in this shape is read with html.ts (markdown allows inline HTML). */
const LOOKS_LIKE_HTML = /<!--|<\/?[a-z][a-z0-9-]*[\s>/]/i;

/**
 * Markdown fenced code blocks (CommonMark §4.5). Inline code spans (§6.1) stay in their sentence:
 * an instruction reads through them.
 */
const MARKDOWN_CODE = /(^|\n)(```|~~~)[^\n]*\n[\s\S]*?(?:\n\2[^\n]*(?=\n|$)|$)/g;

/**
 * A text with where its markdown code blocks are (documentation quotes attacks there): kept in
 * place, so an instruction split around a fence is still read whole, and what lies wholly inside
 * a block counts as code (engine.ts).
 */
function plainSegments(location: string, text: string): SegmentIn[] {
  const quotes = markdownQuotes(text);
  if (text.indexOf("```") < 0 && text.indexOf("~~~") < 0) return [quotes === null ? { location, carrier: "text", text } : { location, carrier: "text", text, quotes }];
  const code: [number, number][] = [];
  MARKDOWN_CODE.lastIndex = 0;
  for (let m = MARKDOWN_CODE.exec(text); m !== null; m = MARKDOWN_CODE.exec(text)) {
    const start = m.index + m[1]!.length;
    // A fence inside an HTML block (a tag on a line of the paragraph above it) is raw HTML, not
    // code (CommonMark §4.6): a renderer hides a comment there.
    if (!inHtmlBlock(text, start, code.length > 0 ? code[code.length - 1]![1] : 0)) code.push([start, m.index + m[0].length]);
    if (m[0].length === 0) MARKDOWN_CODE.lastIndex++;
  }
  return [{ location, carrier: "text", text, ...(code.length > 0 ? { code } : {}), ...(quotes !== null ? { quotes } : {}) }];
}

/**
 * Markdown's block quotes (CommonMark §5.1: lines that start, after up to three spaces, with
 * `>`; a mail's quoted reply is written the same way): each run of such lines, or null when
 * there is none.
 */
function markdownQuotes(text: string): [number, number][] | null {
  let out: [number, number][] | null = null;
  for (let k = text.indexOf(">"); k >= 0; ) {
    // The start of k's line, if only up to three spaces stand before k on it.
    let line = k;
    while (line > 0 && k - line <= 3 && text.charCodeAt(line - 1) === 32) line--;
    if (!(line === 0 || text.charCodeAt(line - 1) === 10) || k - line > 3) {
      k = text.indexOf(">", k + 1);
      continue;
    }
    // The run of quoted lines from there.
    let end = text.indexOf("\n", k);
    for (;;) {
      if (end < 0) {
        end = text.length;
        break;
      }
      let next = end + 1;
      while (next < text.length && next - end - 1 < 3 && text.charCodeAt(next) === 32) next++;
      if (text.charCodeAt(next) !== 62) break;
      end = text.indexOf("\n", next);
    }
    (out ??= []).push([line, end]);
    k = end < text.length ? text.indexOf(">", end) : -1;
  }
  return out;
}

/**
 * Whether the line at `at` lies in an HTML block (CommonMark §4.6, types 6 and 7, roughly): a
 * line of its paragraph, back to a blank line (or `floor`), starts with a tag (up to three
 * spaces, then `<` and a letter or `/`).
 */
function inHtmlBlock(text: string, at: number, floor: number): boolean {
  let end = at;
  while (end > floor) {
    const start = Math.max(floor, text.lastIndexOf("\n", end - 2) + 1);
    let k = start;
    while (k < end && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9 || text.charCodeAt(k) === 13)) k++;
    // A blank line ends the paragraph.
    if (k >= end || text.charCodeAt(k) === 10) return false;
    if (k - start <= 3 && text.charCodeAt(k) === 60) {
      const c = text.charCodeAt(k + 1) | 0x20;
      if ((c >= 97 && c <= 122) || text.charCodeAt(k + 1) === 47) return true;
    }
    end = start;
  }
  return false;
}

/**
 * Inline code spans (CommonMark §6.1, on one line): where each lies, backticks included. One
 * pass: each run of backticks closes at the next run of the same length on its line; a backtick
 * after an odd number of backslashes is a literal one.
 */
function inlineCode(text: string): [number, number][] {
  if (!text.includes("`")) return [];
  const out: [number, number][] = [];
  // Line by line, only the lines that hold a backtick.
  for (let first = text.indexOf("`"); first >= 0; ) {
    const lineStart = text.lastIndexOf("\n", first) + 1;
    let lineEnd = text.indexOf("\n", first);
    if (lineEnd < 0) lineEnd = text.length;
    const runs: [at: number, length: number][] = [];
    for (let i = first; i >= 0 && i < lineEnd; i = text.indexOf("`", i)) {
      let j = i;
      while (j < lineEnd && text.charCodeAt(j) === 96) j++;
      let slashes = 0;
      while (i - 1 - slashes >= lineStart && text.charCodeAt(i - 1 - slashes) === 92) slashes++;
      const from = slashes % 2 === 1 ? i + 1 : i;
      if (j > from) runs.push([from, j - from]);
      i = j;
    }
    // The next run of the same length after each, found from the end.
    const next = new Int32Array(runs.length).fill(-1);
    const lastOf = new Map<number, number>();
    for (let k = runs.length - 1; k >= 0; k--) {
      next[k] = lastOf.get(runs[k]![1]) ?? -1;
      lastOf.set(runs[k]![1], k);
    }
    for (let k = 0; k < runs.length; ) {
      const close = next[k]!;
      if (close < 0) {
        k++;
        continue;
      }
      out.push([runs[k]![0], runs[close]![0] + runs[close]![1]]);
      k = close + 1;
    }
    first = text.indexOf("`", lineEnd);
  }
  return out;
}

/** Whether [start, end) lies wholly in one of `spans` (sorted, apart). */
function within(spans: readonly [number, number][], start: number, end: number): boolean {
  // The last span starting at or before `start`.
  const span = spans[partitionPoint(spans.length, (i) => spans[i]![0] <= start) - 1];
  return span !== undefined && end <= span[1];
}

function textSegments(location: string, text: string, offset: number | null, html = false): SegmentIn[] {
  // Every shape LOOKS_LIKE_HTML matches starts with "<": most texts are ruled out without the regex.
  if (text.indexOf("<") < 0 || !LOOKS_LIKE_HTML.test(text)) return plainSegments(location, text);
  // Text that is not an HTML page (plain text, markdown, a JSON value) is read as written, tags
  // and all; only its comments and other hidden carriers are read apart as well, so no markup in
  // it (a stray <script>) can take text out of the scan. Markup shown as code (a fenced block,
  // an inline code span) hides nothing: a README that shows `<!-- ... -->` shows it, and a tag
  // written in code opens no element (`` `<div style="display:none">` `` and what follows it are
  // shown), so the markup is read with the tags inside code taken out (one character for one).
  const plain = html ? null : plainSegments(location, text);
  const shownAsCode = plain === null ? [] : mergeSpans([...(plain[0]!.code ?? []).map(([a, b]): [number, number] => [a, b]), ...inlineCode(text)]);
  const segments = htmlSegments(tagsOutOfCode(text, shownAsCode), html);
  let carriers: { carrier: Carrier | "text"; text: string; start: number; end: number; code?: SegmentIn["code"]; quotes?: SegmentIn["quotes"] }[] = segments;
  if (plain !== null) {
    const hidden = segments.slice(1).filter((s) => !within(shownAsCode, s.start, s.end));
    carriers = [...plain.map((s) => ({ ...s, start: 0, end: text.length })), ...hidden];
  }
  return carriers.map((s) => ({
    location,
    carrier: s.carrier,
    text: s.text,
    ...(s.code ? { code: s.code } : {}),
    ...(s.quotes ? { quotes: s.quotes } : {}),
    // Raw ranges only where the text is the body itself (not a value inside JSON).
    ...(offset !== null && !SHOWN_CARRIERS.has(s.carrier) ? { range: [offset + s.start, offset + s.end] as const } : {}),
  }));
}

/** `text` with each `<` inside `code` (spans, in order) a space: no tag there opens or closes an element. */
function tagsOutOfCode(text: string, code: readonly [number, number][]): string {
  let out = "";
  let at = 0;
  for (const [a, b] of code) {
    const inside = text.slice(a, b);
    if (!inside.includes("<")) continue;
    out += text.slice(at, a) + inside.replaceAll("<", " ");
    at = b;
  }
  return at === 0 ? text : out + text.slice(at);
}

/** A piece of text at a location, before it is split into what is shown and what is hidden. */
export interface TextFragment {
  readonly location: string;
  readonly text: string;
  /** Text a classifier's record reports on (a moderation result's input): shown as data (SegmentIn.reported). */
  readonly reported?: boolean;
  /** How many plain characters a JSON string wrote as `\u` escapes (escapedStrings): ESCAPED_MIN or more make SegmentIn.escaped. */
  readonly escapes?: number;
}

/**
 * `\u` escapes of what no JSON encoder escapes: ASCII letters, digits and the space (encoders
 * escape quotes, backslashes, control characters, non-ASCII text and, some, `<>&'/=`). A string
 * that writes ESCAPED_MIN of them or more (`"\u0049\u0067\u006e\u006f\u0072\u0065 ..."`), or a
 * text a stream sends in pieces that together do, was written so that whoever reads the bytes (a
 * filter, a reviewer) does not read its words; a model is given the parsed value.
 */
const ESCAPED_PLAIN = /\\u00(?:20|3[0-9]|4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a])/i;
/** The same, tried where a backslash is. */
const ESCAPED_PLAIN_AT = new RegExp(ESCAPED_PLAIN.source, "iy");
const ESCAPED_MIN = 2;

/**
 * The parsed values of the strings of the JSON text `json` (keys too) that escape plain
 * characters, and how many each does: for a caller that judges the parsed value of a message it
 * received as text (an MCP message), to pass to responseSegments.
 */
export function escapedStrings(json: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!ESCAPED_PLAIN.test(json)) return out;
  // String literals from the start: in JSON a quotation mark outside a string opens one.
  for (let i = json.indexOf('"'); i >= 0; i = json.indexOf('"', i + 1)) {
    const start = i;
    let escapes = 0;
    for (i++; i < json.length && json.charCodeAt(i) !== 34; i++) {
      if (json.charCodeAt(i) !== 92) continue;
      ESCAPED_PLAIN_AT.lastIndex = i;
      if (ESCAPED_PLAIN_AT.test(json)) escapes++;
      i++;
    }
    if (i >= json.length) break;
    if (escapes === 0) continue;
    try {
      const value = JSON.parse(json.slice(start, i + 1)) as string;
      out.set(value, Math.max(escapes, out.get(value) ?? 0));
    } catch {
      // Not a string literal after all (the text is not JSON there): nothing to mark.
    }
  }
  return out;
}

/**
 * The string values of a JSON text (or, after a parse error, its text), under `root`; those it
 * writes with escaped letters, or that are in `escaped` (the strings a text this one was made
 * from escaped), marked.
 */
function jsonFragments(root: string, text: string, escaped?: ReadonlyMap<string, number>): TextFragment[] {
  // Fragment locations start with body.json, moved onto `root` (the common root keeps them as
  // they are, without building them again); after a parse error they are body.text or
  // body.binary, which go under `root` by their last name.
  let parsed = jsonTextFragments(text, undefined, true);
  // JSON Lines served as JSON: one document a line.
  if (parsed.error !== undefined) parsed = ndjsonTextFragments(text, undefined, true) ?? parsed;
  // A body that did not parse cleanly (a key written twice, read by another reader as its first
  // value) reports on nothing for sure.
  return markEscaped(textFragments(root, parsed.error === undefined ? parsed : { ...parsed, reported: undefined }), text, escaped);
}

/** `fragments` of the JSON text `json` with the escapes it (escapedStrings), or `given`, wrote in each. */
function markEscaped(fragments: TextFragment[], json: string, given?: ReadonlyMap<string, number>): TextFragment[] {
  const found = escapedStrings(json);
  if (found.size === 0 && (given === undefined || given.size === 0)) return fragments;
  return fragments.map((f) => {
    const escapes = Math.max(found.get(f.text) ?? 0, given?.get(f.text) ?? 0);
    return escapes > 0 ? { ...f, escapes } : f;
  });
}

/** BodyFragments as TextFragments under `root` (body.json..., body.ndjson[i]..., body.text). */
function textFragments(root: string, { fragments, reported }: BodyFragments): TextFragment[] {
  const out: TextFragment[] = fragments.map((f) => ({
    location: !f.location.startsWith("body.json") ? `${root}.${f.location.slice("body.".length)}` : root === "body.json" ? f.location : `${root}${f.location.slice("body.json".length)}`,
    text: f.text,
  }));
  for (const i of reported ?? []) out[i] = { ...out[i]!, reported: true };
  return out;
}

/** A text body that is JSON Lines (a log, an export), read as JSON: null when it is not. */
function ndjsonSegments(text: string): SegmentIn[] | null {
  const first = text.trimStart().charCodeAt(0);
  if ((first !== 123 && first !== 91) || !text.includes("\n")) return null;
  const parsed = ndjsonTextFragments(text, undefined, true);
  return parsed === null ? null : fragmentSegments(markEscaped(textFragments("body.text", parsed), text));
}

/** Fragments read as texts: what is shown of each, and its hidden carriers apart. */
export const fragmentSegments = (fragments: readonly TextFragment[]): SegmentIn[] =>
  fragments.flatMap((f) => {
    const segments = textSegments(f.location, f.text, null);
    // What is shown of a reported text is reported; a hidden carrier inside it is hidden.
    const marked = f.reported === true ? segments.map((s) => (SHOWN_CARRIERS.has(s.carrier) ? { ...s, reported: true } : s)) : segments;
    return (f.escapes ?? 0) >= ESCAPED_MIN ? marked.map((s) => ({ ...s, escaped: true })) : marked;
  });

const jsonSegments = (root: string, text: string, escaped?: ReadonlyMap<string, number>): SegmentIn[] => fragmentSegments(jsonFragments(root, text, escaped));

/**
 * The segments of a response body of `kind`. `escaped` (JSON only): strings to read as written
 * with escaped letters, when `text` was serialised again from a value parsed out of another text
 * (escapedStrings of that one).
 */
export function responseSegments(kind: ResponseKind, text: string, escaped?: ReadonlyMap<string, number>): SegmentIn[] {
  switch (kind) {
    case "html":
      return textSegments("body.html", text, 0, true);
    case "xml": {
      // A feed's entries carry HTML escaped as text (Atom's `<content type="html">`, RSS's
      // `<description>`): read as the page a feed reader renders, its code as code and its
      // comments hidden. The markup is then not where it is in the body: no ranges.
      const unescaped = escapedMarkupUnescaped(text);
      return textSegments("body.xml", unescaped ?? text, unescaped === null ? 0 : null, true);
    }
    case "json":
      return jsonSegments("body.json", text, escaped);
    case "text":
      return ndjsonSegments(text) ?? textSegments("body.text", text, 0);
    case "markdown":
      return textSegments(`body.${kind}`, text, 0);
    case "event-stream":
      // The events' text per JSON path, joined, and the rest of the stream as sent (comments,
      // other fields, data that is not JSON: the client gets all of it).
      return [...fragmentSegments(joinedByPath(sseEvents(text).flatMap((data, i) => eventFragments(i, data)), "body.sse")), { location: "body.sse", carrier: "text", text: streamRest(text) }];
    case "email":
      // Each part as a mail client shows it (mime.ts): an HTML part reduced to what is shown,
      // with its hidden carriers apart, as an HTML response is; the rest read as text.
      return mimeLeaves(text).flatMap((leaf) => textSegments(`body.email${leaf.path}`, leaf.text, leaf.offset, leaf.type === "text/html" || leaf.type === "application/xhtml+xml"));
  }
}

/** XML's markup (a CDATA section, a comment, a tag, a processing instruction) and the text between. */
const XML_TOKEN = /<!\[CDATA\[[\s\S]*?(?:\]\]>|$)|<!--[\s\S]*?(?:-->|$)|<[^>]*>?|[^<]+/g;

/**
 * `xml` with each text that holds escaped markup (`&lt;p&gt;`) unescaped in place, once (what a
 * feed reader renders as HTML); null when none does. CDATA sections, comments and tags stay as
 * written: a CDATA section's HTML is markup already, and what it escapes is shown as text.
 */
function escapedMarkupUnescaped(xml: string): string | null {
  if (!xml.includes("&lt;")) return null;
  let changed = false;
  const out = xml.replace(XML_TOKEN, (token) => {
    if (token.charCodeAt(0) === 60 || !token.includes("&lt;")) return token;
    const decoded = htmlEntityDecode(token);
    if (decoded === null || !LOOKS_LIKE_HTML.test(decoded)) return token;
    changed = true;
    return decoded;
  });
  return changed ? out : null;
}

/** Whether `location` (joinedByPath's, under `root`) is where keys are: `body.sse-key.choices[0]`. */
export const isKeyPath = (location: string, root: string): boolean => location.startsWith(`${root}-key`);

/** The text of one event's data (`root`: body.sse, or ws.message for WebSocket messages): JSON walked, anything else whole. */
export function eventFragments(index: number, data: string, root = "body.sse"): TextFragment[] {
  const location = `${root}[${index}]`;
  const trimmed = data.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) return jsonFragments(location, trimmed);
  return [{ location, text: data }];
}

/**
 * A streamed answer arrives a few tokens per event, at the same JSON path in each
 * (`choices[0].delta.content`): the text at one path over all events, joined as sent, is one
 * fragment at `<root>.<path>`, read whole, so an instruction, or a comment or hidden element
 * around one, spread over events is read as the client puts it together. Keys are not streamed
 * (no client joins them): the distinct keys at one path, one per line, each whole (written
 * together, 8,000 events' `choices` would make one 56,000-letter word for the decoders).
 */
export function joinedByPath(fragments: readonly TextFragment[], root: string): TextFragment[] {
  const index = new RegExp(`^${root.replace(/\./g, "\\.")}\\[\\d+\\]`);
  const byPath = new Map<string, { parts: string[]; reported: boolean; escapes: number }>();
  for (const f of fragments) {
    const location = f.location.replace(index, root);
    const joined = byPath.get(location);
    if (joined === undefined) byPath.set(location, { parts: [f.text], reported: f.reported === true, escapes: f.escapes ?? 0 });
    else {
      joined.parts.push(f.text);
      // Reported only when every part is; the escapes of all (a stream sends a few letters an event).
      joined.reported &&= f.reported === true;
      joined.escapes += f.escapes ?? 0;
    }
  }
  return [...byPath].map(([location, { parts, reported, escapes }]) => {
    const text = isKeyPath(location, root) ? [...new Set(parts)].join("\n") : parts.join("");
    return { location, text, ...(reported ? { reported } : {}), ...(escapes > 0 ? { escapes } : {}) };
  });
}

/**
 * An event stream as sent without its data lines that are JSON on their own: every string of
 * those (keys too) is read at its path already, as the client puts it together; read again
 * here, escaped and cut into deltas, a quoted chat template in a doc would lose the code block
 * around it.
 */
export function streamRest(text: string): string {
  if (!text.includes("data:")) return text;
  // Lines as sseEvents reads them (CR, LF or CRLF ends one), ends kept: a data line with a CR in
  // its JSON is two lines to the stream, and neither is dropped.
  return text
    .split(/(?<=\r\n|\r(?!\n)|\n)/)
    .filter((line) => {
      if (!line.startsWith("data:")) return true;
      const data = line.slice(5).trim();
      if (!(data.startsWith("{") || data.startsWith("["))) return true;
      try {
        JSON.parse(data);
        return false;
      } catch {
        return true;
      }
    })
    .join("");
}

/** The data of each event of a `text/event-stream` body (WHATWG HTML §9.2.6): data lines joined by line breaks. */
export function sseEvents(text: string): string[] {
  const events: string[] = [];
  let data: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === "") {
      if (data.length > 0) events.push(data.join("\n"));
      data = [];
    } else if (line.startsWith("data:")) data.push(line.slice(line.charCodeAt(5) === 0x20 ? 6 : 5));
  }
  if (data.length > 0) events.push(data.join("\n"));
  return events;
}

export interface InjectionVerdict {
  /** `allow`: under the threshold (findings, if any, are recorded as notes). */
  readonly verdict: "allow" | InjectionAction;
  readonly score: number;
  readonly findings: readonly InjectionFinding[];
  /** For `strip`: the body to forward, with the offending spans and carriers cut out. */
  readonly body?: string;
  /** Why `strip` became `block`, when it did. */
  readonly escalated?: string;
}

const TAG_CHARACTERS = /[\u{e0000}-\u{e007f}]/gu;
/** What a cut instruction is replaced with, so the page says something was there. */
export const STRIPPED = "[removed by sluice]";

/**
 * Judges a response body. `action` applies when the score reaches the engine's threshold;
 * `strip` that cannot remove every finding from the bytes as written (it was seen only after
 * decoding or normalising) blocks instead, and so does a stripped body that still scores.
 */
export function inspectResponse(kind: ResponseKind, text: string, engine: InjectionEngine, action: InjectionAction): InjectionVerdict {
  const result = engine.scan(responseSegments(kind, text));
  if (result.score < engine.threshold) return { verdict: "allow", score: result.score, findings: result.findings };
  if (action !== "strip") return { verdict: action, score: result.score, findings: result.findings };
  const stripped = strip(text, result);
  if (typeof stripped !== "string") return { verdict: "block", score: result.score, findings: result.findings, escalated: stripped.why };
  const again = engine.scan(responseSegments(kind, stripped));
  if (again.score >= engine.threshold) return { verdict: "block", score: result.score, findings: result.findings, escalated: "still over the threshold after stripping" };
  return { verdict: "strip", score: result.score, findings: result.findings, body: stripped };
}

/** The body without what the findings point at, or why that cannot be done. */
function strip(text: string, result: InjectionResult): string | { why: string } {
  const ranges: (readonly [number, number])[] = [];
  const literals = new Set<string>();
  let tags = false;
  for (const f of result.findings) {
    if (f.range !== undefined) ranges.push(f.range);
    // The word model's window is no span to cut: it only added to what the rules found, and
    // the stripped body is judged again.
    else if (f.rule === WORD_RULE.id) continue;
    else if (f.reading === "unicode-tags") tags = true;
    else if (f.literal !== null && text.includes(f.literal)) literals.add(f.literal);
    else return { why: `${f.rule} was seen only after ${f.reading === "decoded" ? `decoding (${(f.via ?? []).join(", ")})` : f.reading}, so it cannot be cut out of the body as written` };
  }
  // Every place of every cut in the text as written: hidden carriers go whole, visible matches
  // are replaced by STRIPPED; cuts that overlap or touch are one (two matches of one order, found
  // by two rules, overlap: cut one after the other, the second would no longer be found).
  const cuts: [start: number, end: number, replace: boolean][] = ranges.map(([a, b]) => [a, b, false]);
  for (const literal of literals) for (let i = text.indexOf(literal); i >= 0; i = text.indexOf(literal, i + literal.length)) cuts.push([i, i + literal.length, true]);
  cuts.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let out = "";
  let at = 0;
  for (let k = 0; k < cuts.length; ) {
    const start = cuts[k]![0];
    let end = cuts[k]![1];
    let replace = cuts[k]![2];
    for (k++; k < cuts.length && cuts[k]![0] <= end; k++) {
      end = Math.max(end, cuts[k]![1]);
      replace ||= cuts[k]![2];
    }
    out += text.slice(at, start) + (replace ? STRIPPED : "");
    at = end;
  }
  out += text.slice(at);
  if (tags) out = out.replace(TAG_CHARACTERS, "");
  return out;
}

/** Findings in the shape of decisions and audit records (rule, location, a preview; never the text). */
export function asFindings(findings: readonly InjectionFinding[]): Finding[] {
  return findings.map((f) => {
    // A JSON key can be a secret: long token-like runs in a location are cut short (as for DLP).
    const location = safeLocation(f.location);
    return { rule: f.rule, location: f.carrier === "text" || f.carrier === "visible" ? location : `${location} (${f.carrier})`, preview: f.preview, via: f.via ? [...f.via] : f.reading === "raw" ? [] : [f.reading] };
  });
}
