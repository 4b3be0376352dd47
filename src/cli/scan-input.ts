/**
 * Input parsing for `sluice scan`: a raw HTTP/1.1 request or response, or MCP JSON-RPC
 * messages, turned into what the proxy would scan (ARCHITECTURE.md "The one flow": an Action,
 * its Fragments). The message parsers are the proxy's own (proxy/http1.ts, proxy/chunked.ts),
 * with allowances for text that people paste rather than bytes off a socket: LF-only line
 * endings, no blank line after a head without a body, an `HTTP/2` version as printed by
 * `curl -i`, a Content-Length that an editor's trailing newline no longer matches. Nothing here
 * prints or returns a value from the input except as Fragments for the engine.
 */
import type { Fragment, HeaderList, HttpRequestAction } from "../core/types.ts";
import { headFragments } from "../inspect/content.ts";
import { bodyFragments, headerFragments, joinedFragments } from "../inspect/fragments.ts";
import { splitHostPortWithDefault } from "../net/host.ts";
import { CHUNKED_ERROR, CHUNKED_INCOMPLETE, ChunkedReader } from "../proxy/chunked.ts";
import { parseRequestHead, parseResponseHead, type ParseError } from "../proxy/http1.ts";
import { headerValue } from "../proxy/request-scan.ts";

/** A parsed HTTP message: its head as fragments (joins included) and its body still content-encoded. */
export interface HttpMessage {
  readonly headFragments: Fragment[];
  readonly headers: HeaderList;
  /** After Transfer-Encoding: chunked was undone; Content-Encoding is still applied. */
  readonly body: Uint8Array;
  /** Bytes after the end of the body (a second message, pasted junk): scanned as text. */
  readonly extra: string;
  /** Things the user should know (framing was repaired or ignored); never contain input text. */
  readonly notes: string[];
}

export type Parsed<T> = T | { readonly error: string };

const CRLF = "\r\n";
const LF = 0x0a;

/** Splits head and body at the first empty line, CRLF or bare LF; a head with no empty line is all head. */
function splitHead(input: Buffer): { head: string; rest: Buffer; lfOnly: boolean } {
  let start = 0;
  if (input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf) start = 3; // UTF-8 BOM from an editor
  // RFC 9112 section 2.2: empty lines before the start line are ignored.
  while (input[start] === 0x0d || input[start] === LF) start++;
  const crlf = input.indexOf("\r\n\r\n", start);
  const lf = input.indexOf("\n\n", start);
  let end: number;
  let sep: number;
  if (crlf >= 0 && (lf < 0 || crlf < lf)) [end, sep] = [crlf, 4];
  else if (lf >= 0) [end, sep] = [lf, 2];
  else [end, sep] = [input.length, 0];
  let head = input.subarray(start, end).toString("latin1");
  const lfOnly = !head.includes("\r\n") && head.includes("\n");
  if (head.endsWith("\r")) head = head.slice(0, -1);
  // The parser is strict about CRLF (a bare LF is a smuggling ambiguity on the wire); in a file
  // it is an editor's choice, so lines are normalised to CRLF before parsing.
  head = head.replace(/\r?\n/g, CRLF);
  return { head: `${head}${CRLF}${CRLF}`, rest: input.subarray(Math.min(input.length, end + sep)), lfOnly };
}

/** `HTTP/2` and `HTTP/3` (as curl -i prints them) parse as HTTP/1.1: their headers mean the same here. */
function asHttp11(line: string, at: "start" | "end"): string {
  return at === "start" ? line.replace(/^HTTP\/[23](?:\.0)?(?= )/, "HTTP/1.1") : line.replace(/ HTTP\/[23](?:\.0)?(?=\r\n)/, " HTTP/1.1");
}

const isBlank = (bytes: Uint8Array): boolean => bytes.every((b) => b === 0x20 || b === 0x09 || b === 0x0d || b === LF);

/** The body after the head: chunked decoded, or cut at Content-Length, or all that follows. */
function readBody(rest: Buffer, framing: { contentLength: number | null; chunked: boolean }, lfOnly: boolean, notes: string[]): Parsed<{ body: Uint8Array; extra: string }> {
  let body: Uint8Array = rest;
  let after: Uint8Array = new Uint8Array(0);
  if (framing.chunked) {
    let decoded = dechunk(rest);
    // A chunked body pasted with LF-only lines: try again with CRLF (chunk sizes may then be off
    // by the line breaks inside the data, and the reader says so).
    if ("error" in decoded && lfOnly) decoded = dechunk(Buffer.from(rest.toString("latin1").replace(/\r?\n/g, CRLF), "latin1"));
    if ("error" in decoded) return { error: `malformed chunked body: ${decoded.error}` };
    if (decoded.truncated) notes.push("the chunked body ends before its last chunk; scanned what is there");
    body = decoded.body;
    after = rest.subarray(decoded.end);
  } else if (framing.contentLength !== null) {
    if (framing.contentLength > rest.length) notes.push(`Content-Length is ${framing.contentLength} but ${rest.length} bytes follow the head; scanned those`);
    body = rest.subarray(0, Math.min(rest.length, framing.contentLength));
    after = rest.subarray(body.length);
  } else if (isBlank(rest)) {
    body = new Uint8Array(0);
  }
  if (after.length === 0 || isBlank(after)) return { body, extra: "" };
  notes.push(`${after.length} bytes follow the end of the body; scanned as text (location body.extra)`);
  return { body, extra: new TextDecoder("utf-8").decode(after) };
}

function dechunk(data: Buffer): { body: Uint8Array; end: number; truncated: boolean } | { error: string } {
  const reader = new ChunkedReader();
  const parts: Uint8Array[] = [];
  const end = reader.feed(data, 0, (from, to) => parts.push(data.subarray(from, to)));
  if (end === CHUNKED_ERROR) return { error: reader.error };
  return { body: Buffer.concat(parts), end: end === CHUNKED_INCOMPLETE ? data.length : end, truncated: end === CHUNKED_INCOMPLETE };
}

/**
 * The URL parts of a request target in any form (RFC 9112 section 3.2): origin-form with the Host
 * header, absolute-form (http or https), authority-form (CONNECT), asterisk-form. Unlike the
 * proxy, which refuses userinfo and fragments in a target, scan keeps them as fragments: a
 * credential in a URL is exactly what it looks for.
 */
function targetParts(method: string, target: string, headers: HeaderList): { action: Omit<HttpRequestAction, "kind" | "agent" | "client" | "method" | "headers">; extra: Fragment[] } {
  const extra: Fragment[] = [];
  let scheme: "http" | "https" = "http";
  let authority = headerValue(headers, "host") ?? "";
  let rest = target;
  const absolute = /^(https?):\/\/([^/?#]*)/i.exec(target);
  if (absolute) {
    scheme = absolute[1]!.toLowerCase() as "http" | "https";
    authority = absolute[2]!;
    rest = target.slice(absolute[0].length);
    const at = authority.lastIndexOf("@");
    if (at >= 0) {
      // The whole `scheme://user:pass@host` so that dlp.credentials-in-url sees its shape.
      extra.push({ location: "url.userinfo", text: absolute[0] });
      authority = authority.slice(at + 1);
    }
  } else if (method.toUpperCase() === "CONNECT") {
    [authority, rest] = [target, ""];
  } else if (target === "*") {
    rest = "";
  }
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    extra.push({ location: "url.fragment", text: rest.slice(hash + 1) });
    rest = rest.slice(0, hash);
  }
  const q = rest.indexOf("?");
  const path = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? "" : rest.slice(q + 1);
  const defaultPort = scheme === "https" ? 443 : 80;
  const hp = splitHostPortWithDefault(authority, defaultPort);
  // A host that does not normalise is kept as written (lower-cased): it is scanned, not dialled.
  const host = hp.ok ? hp.host : authority.toLowerCase();
  return { action: { scheme, host, port: hp.ok ? hp.port : defaultPort, path, query }, extra };
}

function parseFailure(what: string, e: ParseError): { error: string } {
  return { error: `not an HTTP ${what}: ${e.message}` };
}

/** A raw HTTP request: the fragments the proxy scans in its head (URL, headers, their joins) and the body. */
export function parseHttpRequest(input: Buffer): Parsed<HttpMessage> {
  const { head, rest, lfOnly } = splitHead(input);
  const firstLine = head.slice(0, head.indexOf(CRLF));
  const parsed = parseRequestHead(asHttp11(firstLine, "end") + head.slice(firstLine.length));
  if (parsed.error) return parseFailure("request", parsed);
  const notes: string[] = [];
  const body = readBody(rest, parsed, lfOnly, notes);
  if ("error" in body) return body;
  const { action, extra } = targetParts(parsed.method, parsed.target, parsed.headers);
  const request: HttpRequestAction = {
    kind: "http.request",
    // Offline there is no agent and no peer; neither is part of what is scanned.
    agent: { name: "scan", via: "anonymous" },
    client: { address: "", port: 0 },
    method: parsed.method,
    headers: parsed.headers,
    ...action,
  };
  return { headFragments: [...headFragments(request), ...extra], headers: parsed.headers, body: body.body, extra: body.extra, notes };
}

/** A raw HTTP response (interim 1xx heads skipped): its headers, reason phrase and body. */
export function parseHttpResponse(input: Buffer): Parsed<HttpMessage> {
  let remaining = input;
  for (;;) {
    const { head, rest, lfOnly } = splitHead(remaining);
    const parsed = parseResponseHead(asHttp11(head, "start"));
    if (parsed.error) return parseFailure("response", parsed);
    // curl -i prints `HTTP/1.1 100 Continue` and its empty line before the final response.
    if (parsed.status >= 100 && parsed.status < 200 && rest.length > 0) {
      remaining = rest;
      continue;
    }
    const notes: string[] = [];
    const body = readBody(rest, parsed, lfOnly, notes);
    if ("error" in body) return body;
    const fragments = headerFragments(parsed.headers);
    if (parsed.reason.length > 0) fragments.push({ location: "status.reason", text: parsed.reason });
    return { headFragments: [...fragments, ...joinedFragments(fragments)], headers: parsed.headers, body: body.body, extra: body.extra, notes };
  }
}

// ---------------------------------------------------------------------------------------------
// MCP (JSON-RPC 2.0) messages.

interface Message {
  readonly value: Record<string, unknown>;
  /** The message's own JSON text (one NDJSON line), or null when it is an element of a batch. */
  readonly text: string | null;
}

/**
 * One JSON-RPC message, a batch (array), or one message per line (NDJSON, as the MCP stdio
 * transport frames them). Error messages name the line, never its content: JSON.parse messages
 * quote the input.
 */
function parseMessages(text: string): Parsed<{ messages: Message[]; whole: string | null }> {
  const clean = text.replace(/^\uFEFF/, "");
  let whole: unknown;
  let ok = true;
  try {
    whole = JSON.parse(clean);
  } catch {
    ok = false;
  }
  if (ok) {
    const list = Array.isArray(whole) ? whole : [whole];
    if (list.length === 0) return { error: "an empty JSON-RPC batch" };
    const messages: Message[] = [];
    for (const [i, m] of list.entries()) {
      if (!isMessage(m)) return { error: `${Array.isArray(whole) ? `element ${i} of the batch` : "the input"} is not a JSON-RPC message (an object with method, result or error)` };
      messages.push({ value: m, text: Array.isArray(whole) ? null : clean });
    }
    return { messages, whole: Array.isArray(whole) ? clean : null };
  }
  const messages: Message[] = [];
  const lines = clean.split("\n");
  for (const [n, raw] of lines.entries()) {
    const line = raw.trim();
    if (line.length === 0) continue;
    let m: unknown;
    try {
      m = JSON.parse(line);
    } catch {
      return { error: lines.filter((l) => l.trim().length > 0).length > 1 ? `invalid JSON on line ${n + 1}` : "invalid JSON" };
    }
    if (!isMessage(m)) return { error: `line ${n + 1} is not a JSON-RPC message (an object with method, result or error)` };
    messages.push({ value: m, text: line });
  }
  if (messages.length === 0) return { error: "no JSON-RPC message in the input" };
  return { messages, whole: null };
}

function isMessage(m: unknown): m is Record<string, unknown> {
  return typeof m === "object" && m !== null && !Array.isArray(m) && ("method" in m || "result" in m || "error" in m);
}

const PLAIN_METHOD = /^[A-Za-z0-9_$/-]{1,64}$/;
/** One path segment as body-fragments writes them: `.ident`, `[12]`, `["json string"]`. */
const SEGMENT = /^(?:\.([A-Za-z_$][A-Za-z0-9_$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\])/;

function methodSegment(method: string): string {
  return PLAIN_METHOD.test(method) ? `.${method}` : `[${JSON.stringify(method.slice(0, 64))}]`;
}

/** Reads the first segment of `path`: its name (or index) and what follows. */
function firstSegment(path: string): { name: string; rest: string } | null {
  const m = SEGMENT.exec(path);
  if (!m) return null;
  const name = m[1] ?? m[2] ?? (JSON.parse(m[3]!) as string);
  return { name, rest: path.slice(m[0].length) };
}

/**
 * Maps a body-fragments location of one message to an MCP one: `params` under the method
 * (`mcp.tools/call.arguments.query`), `result` and `error` under the method of the request with
 * the same id when the input has it (`mcp.tools/list.result.tools[0].description`), other members
 * by name (`mcp.id`). Keys are `<object path>.(key)`. With several messages, `mcp[<i>]`.
 */
function mcpLocation(path: string, isKey: boolean, message: Record<string, unknown>, index: number, many: boolean, methods: ReadonlyMap<string, string>): string {
  const root = many ? `mcp[${index}]` : "mcp";
  const suffix = isKey ? ".(key)" : "";
  const first = firstSegment(path);
  if (first === null) return `${root}${path}${suffix}`;
  const method = typeof message.method === "string" ? message.method : undefined;
  if (first.name === "params" && method !== undefined) return `${root}${methodSegment(method)}${first.rest}${suffix}`;
  if (first.name === "result" || first.name === "error") {
    const asked = "id" in message ? methods.get(JSON.stringify(message.id)) : undefined;
    return `${root}${asked === undefined ? "" : methodSegment(asked)}.${first.name}${first.rest}${suffix}`;
  }
  return `${root}${path}${suffix}`;
}

/** Re-roots one fragment location (`body.json...`, `body.json-key...`, `body.text`) of a message. */
function mapLocation(location: string, message: Record<string, unknown>, index: number, many: boolean, methods: ReadonlyMap<string, string>, batch: boolean): string {
  const joined = /^joined\((.*)\.\.(.*)\)$/.exec(location);
  if (joined) return `joined(${mapLocation(joined[1]!, message, index, many, methods, batch)}..${mapLocation(joined[2]!, message, index, many, methods, batch)})`;
  let isKey = false;
  let path: string;
  if (location.startsWith("body.json-key")) [isKey, path] = [true, location.slice("body.json-key".length)];
  else if (location.startsWith("body.json")) path = location.slice("body.json".length);
  else return `${many && !batch ? `mcp[${index}]` : "mcp"}.text`;
  if (batch) {
    // A batch is one document: its paths start with the element's index.
    const first = firstSegment(path);
    if (first === null) return `mcp${path}${isKey ? ".(key)" : ""}`;
    return mcpLocation(first.rest, isKey, message, Number(first.name), many, methods);
  }
  return mcpLocation(path, isKey, message, index, many, methods);
}

/**
 * The fragments of MCP messages, from the JSON walk the proxy uses for bodies (long numbers kept
 * as written, bounded depth), with MCP locations, and the joins over sibling values.
 */
export function parseMcp(text: string): Parsed<{ fragments: Fragment[]; count: number }> {
  const parsed = parseMessages(text);
  if ("error" in parsed) return parsed;
  const { messages, whole } = parsed;
  const methods = new Map<string, string>();
  for (const m of messages) if (typeof m.value.method === "string" && "id" in m.value) methods.set(JSON.stringify(m.value.id), m.value.method);
  const many = messages.length > 1;
  const out: Fragment[] = [];
  const docs: { text: string; index: number | null }[] = whole !== null ? [{ text: whole, index: null }] : messages.map((m, i) => ({ text: m.text!, index: i }));
  for (const doc of docs) {
    const body = bodyFragments("application/json", Buffer.from(doc.text, "utf8"));
    const all = [...body.fragments, ...joinedFragments(body.fragments)];
    for (const f of all) {
      let index = doc.index ?? 0;
      if (doc.index === null) {
        // Batch: the element a location belongs to is its first path segment.
        const inner = /^(?:joined\()?body\.json(?:-key)?\[(\d+)\]/.exec(f.location);
        index = inner ? Number(inner[1]) : 0;
      }
      const message = messages[index]?.value ?? {};
      out.push({ location: mapLocation(f.location, message, index, many, methods, doc.index === null), text: f.text });
    }
  }
  return { fragments: out, count: messages.length };
}
