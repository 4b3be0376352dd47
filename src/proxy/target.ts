/**
 * Request targets a forward proxy accepts (RFC 9112 section 3.2): absolute-form `http://...`
 * for plain requests, authority-form `host:port` for CONNECT. Userinfo in the authority is
 * refused: it is a credential in a URL and a classic parser-confusion vector (`a@b`).
 * Hosts come back normalised by net/host (splitHostPort normalises).
 */
import { splitHostPort, splitHostPortWithDefault } from "../net/host.ts";

export interface Target {
  readonly host: string;
  readonly port: number;
  /** Path without query, starting with "/". */
  readonly path: string;
  /** Query without "?", or "". */
  readonly query: string;
  /** Origin-form for the upstream request line: path plus "?query". */
  readonly originForm: string;
  /** Host header value for the upstream: host, bracketed when IPv6, port when not default. */
  readonly authority: string;
}

export type TargetResult = Target | { error: string };

const ABSOLUTE_HTTPS = /^https:\/\/([^/?#]*)(.*)$/i;
const ABSOLUTE_HTTP = /^http:\/\/([^/?#]*)(.*)$/i;

/**
 * The target of a request inside an intercepted tunnel to `host`:`port` (RFC 9112 §3.2.1):
 * origin-form; absolute-form naming that same origin is taken too. The host is the tunnel's.
 * `scheme`: https inside TLS, http for plain requests in a tunnel (tls.plaintext_tunnels).
 */
export function parseTunnelTarget(target: string, host: string, port: number, scheme: "https" | "http" = "https"): TargetResult {
  let originForm = target;
  const defaultPort = scheme === "https" ? 443 : 80;
  if (!target.startsWith("/")) {
    const abs = (scheme === "https" ? ABSOLUTE_HTTPS : ABSOLUTE_HTTP).exec(target);
    if (abs === null) return { error: `request target in a ${scheme === "https" ? "TLS " : ""}tunnel must be origin-form (/path)` };
    const hp = normaliseAuthority(`${abs[1]}${/:\d+$/.test(abs[1]!) ? "" : `:${defaultPort}`}`);
    if ("error" in hp || hp.host !== host || hp.port !== port) return { error: `request target ${JSON.stringify(abs[1])} is not the tunnel's host` };
    originForm = abs[2] || "/";
  }
  if (originForm.includes("#")) return { error: "fragment in request target" };
  const q = originForm.indexOf("?");
  const bracketed = host.includes(":") ? `[${host}]` : host;
  return {
    host,
    port,
    path: q < 0 ? originForm : originForm.slice(0, q),
    query: q < 0 ? "" : originForm.slice(q + 1),
    originForm,
    authority: port === defaultPort ? bracketed : `${bracketed}:${port}`,
  };
}

export function parseAbsoluteTarget(target: string): TargetResult {
  if (target.startsWith("/")) return { error: "origin-form request: sluice is a forward proxy, send absolute-form (set HTTP_PROXY)" };
  const scheme = target.slice(0, 8).toLowerCase();
  if (scheme === "https://") return { error: "https:// in a plain request: use CONNECT (set HTTPS_PROXY)" };
  if (!scheme.startsWith("http://")) return { error: "request target must be absolute-form http://" };
  const rest = target.slice(7);
  let end = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const c = rest.charCodeAt(i);
    if (c === 0x2f || c === 0x3f) {
      end = i;
      break;
    }
    if (c === 0x23) return { error: "fragment in request target" };
  }
  const authority = rest.slice(0, end);
  if (authority.includes("@")) return { error: "userinfo in request target is refused" };
  if (rest.includes("#")) return { error: "fragment in request target" };
  const hp = normaliseAuthority(authority);
  if ("error" in hp) return hp;
  let originForm = rest.slice(end);
  if (originForm === "") originForm = "/";
  else if (originForm.startsWith("?")) originForm = `/${originForm}`;
  const q = originForm.indexOf("?");
  return {
    host: hp.host,
    port: hp.port,
    path: q < 0 ? originForm : originForm.slice(0, q),
    query: q < 0 ? "" : originForm.slice(q + 1),
    originForm,
    authority: hp.authority,
  };
}

/**
 * Authorities repeat (an agent talks to a few hosts), and normalising one (IDN mapping, IP
 * parsing in every spelling) costs more than the rest of the target: remember the results.
 * Pure function of the input, so a bounded cache cannot change a decision.
 */
const AUTHORITY_CACHE_MAX = 1024;
const authorityCache = new Map<string, { host: string; port: number; authority: string } | { error: string }>();

function normaliseAuthority(authority: string): { host: string; port: number; authority: string } | { error: string } {
  let hit = authorityCache.get(authority);
  if (hit) return hit;
  const hp = splitHostPortWithDefault(authority, 80);
  hit = hp.ok ? { host: hp.host, port: hp.port, authority: formatAuthority(hp.host, hp.port, 80) } : { error: `bad authority: ${hp.error}` };
  if (authorityCache.size >= AUTHORITY_CACHE_MAX) authorityCache.clear();
  authorityCache.set(authority, hit);
  return hit;
}

export function parseConnectTarget(target: string): { host: string; port: number } | { error: string } {
  if (target.includes("@") || target.includes("/")) return { error: "CONNECT target must be host:port" };
  const hp = splitHostPort(target);
  if (!hp.ok) return { error: `bad CONNECT target: ${hp.error}` };
  return { host: hp.host, port: hp.port };
}

export function formatAuthority(host: string, port: number, defaultPort: number): string {
  const h = host.includes(":") ? `[${host}]` : host;
  return port === defaultPort ? h : `${h}:${port}`;
}
