/**
 * Runs wrk and parses its report. wrk has no proxy support, so a run through a proxy points wrk
 * at the proxy port with a Lua script whose requests are absolute-form (RFC 9112 §3.2.2).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { track } from "./procs.ts";

export interface WrkOptions {
  /** The URL wrk connects to (the origin, or the proxy). */
  readonly url: string;
  readonly durationS: number;
  readonly connections: number;
  readonly threads: number;
  /** Path of a Lua script (`-s`), for absolute-form requests through a proxy. */
  readonly script?: string;
}

export interface SocketErrors {
  readonly connect: number;
  readonly read: number;
  readonly write: number;
  readonly timeout: number;
}

export interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p75Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly requests: number;
  readonly seconds: number;
  readonly socketErrors: SocketErrors;
  readonly non2xx: number;
  readonly raw: string;
}

/**
 * Writes a Lua script that sends `GET <absolute URL>` with a Host header matching the URL (wrk
 * would otherwise put the proxy's address there), plus any extra headers.
 */
export function writeProxyScript(dir: string, name: string, absoluteUrl: string, extraHeaders: Record<string, string> = {}): string {
  const headers = { Host: new URL(absoluteUrl).host, ...extraHeaders };
  const table = Object.entries(headers)
    .map(([k, v]) => `[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join(", ");
  const path = join(dir, `${name}.lua`);
  // Formatted once: wrk calls request() per request, and returning a constant costs nothing.
  writeFileSync(path, `local req = wrk.format("GET", ${JSON.stringify(absoluteUrl)}, { ${table} })\nrequest = function() return req end\n`);
  return path;
}

/**
 * Like writePostScript, but the body is `template` with every `marker` (8 plain characters)
 * replaced by the request's number, 8 digits (00000001, 00000002, ... per wrk thread), so no two
 * requests send the same body. The request is formatted once and cut at the markers; each request
 * only joins the pieces (the load generator must cost the same per request as a constant body,
 * or the direct baseline would be slowed by it).
 */
export function writePostTemplateScript(
  dir: string,
  name: string,
  url: string,
  template: string,
  marker: string,
  opts: { absolute: boolean; headers?: Record<string, string> },
): string {
  if (!/^[A-Za-z0-9@_]{8}$/.test(marker)) throw new Error("the marker must be 8 plain characters (the width of the number)");
  const { table, target } = postTarget(url, opts);
  const path = join(dir, `${name}.lua`);
  writeFileSync(
    path,
    `local req = wrk.format("POST", ${JSON.stringify(target)}, { ${table} }, ${luaLongString(template)})
local parts, from = {}, 1
while true do
  local s, e = string.find(req, ${JSON.stringify(marker)}, from, true)
  if not s then parts[#parts + 1] = string.sub(req, from); break end
  parts[#parts + 1] = string.sub(req, from, s - 1)
  from = e + 1
end
local n = 0
request = function()
  n = n + 1
  local num = string.format("%08d", n % 100000000)
  local out = { parts[1] }
  for i = 2, #parts do out[#out + 1] = num; out[#out + 1] = parts[i] end
  return table.concat(out)
end
`,
  );
  return path;
}

/** The Lua header table (Host first) and the request target of a POST script. */
function postTarget(url: string, opts: { absolute: boolean; headers?: Record<string, string> }): { table: string; target: string } {
  const u = new URL(url);
  const headers = { Host: u.host, ...opts.headers };
  const table = Object.entries(headers)
    .map(([k, v]) => `[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join(", ");
  return { table, target: opts.absolute ? url : `${u.pathname}${u.search}` };
}

/** `text` as a Lua long-bracket string: raw bytes, no escapes to get wrong. */
function luaLongString(text: string): string {
  let eq = "";
  while (text.includes(`]${eq}]`)) eq += "=";
  // A newline right after the opening bracket would be dropped by Lua: the body must not start with one.
  if (text.startsWith("\n") || text.startsWith("\r")) throw new Error("a Lua long string cannot start with a line break");
  return `[${eq}[${text}]${eq}]`;
}

/**
 * Writes a Lua script that sends `POST <target>` with `body` (Content-Length set by wrk.format)
 * and a Host header for `url`. `absolute` puts the whole URL in the request line, for a proxy;
 * otherwise the request line has the path, for the origin itself.
 */
export function writePostScript(
  dir: string,
  name: string,
  url: string,
  body: string,
  opts: { absolute: boolean; headers?: Record<string, string> },
): string {
  const { table, target } = postTarget(url, opts);
  const path = join(dir, `${name}.lua`);
  writeFileSync(path, `local body = ${luaLongString(body)}\nlocal req = wrk.format("POST", ${JSON.stringify(target)}, { ${table} }, body)\nrequest = function() return req end\n`);
  return path;
}

export async function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const args = [
    "wrk",
    "-t",
    String(opts.threads),
    "-c",
    String(opts.connections),
    "-d",
    `${opts.durationS}s`,
    "--latency",
    ...(opts.script ? ["-s", opts.script] : []),
    opts.url,
  ];
  const proc = track("wrk", Bun.spawn(args, { stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true }));
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`wrk exited with ${code}:\n${out}${err}`);
  return parseWrk(out + err);
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "311.37us" / "1.20ms" / "2.00s" -> milliseconds. */
export function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`unrecognised wrk time ${JSON.stringify(text)}`);
  return Number(m[1]) * TIME_UNITS[m[2]!]!;
}

function need(re: RegExp, text: string, what: string): RegExpExecArray {
  const m = re.exec(text);
  if (!m) throw new Error(`wrk output has no ${what}:\n${text}`);
  return m;
}

export function parseWrk(text: string): WrkResult {
  const pct = (p: number) => toMs(need(new RegExp(`^\\s*${p}%\\s+(\\S+)\\s*$`, "m"), text, `${p}% latency`)[1]!);
  const latency = need(/^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+/m, text, "latency line");
  const total = need(/^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)/m, text, "request count");
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    rps: Number(need(/^Requests\/sec:\s+([\d.]+)/m, text, "Requests/sec")[1]),
    p50Ms: pct(50),
    p75Ms: pct(75),
    p90Ms: pct(90),
    p99Ms: pct(99),
    maxMs: toMs(latency[3]!),
    requests: Number(total[1]),
    seconds: toMs(`${total[2]}${total[3]}`) / 1000,
    socketErrors: errors
      ? { connect: Number(errors[1]), read: Number(errors[2]), write: Number(errors[3]), timeout: Number(errors[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    raw: text,
  };
}

export function socketErrorCount(e: SocketErrors): number {
  return e.connect + e.read + e.write + e.timeout;
}
