/**
 * Host patterns for egress allow and deny lists, compiled once (smokescreen-style ACL loading):
 *
 *   api.github.com          that host only
 *   *.example.com           any subdomain at any depth, NOT example.com itself
 *   10.1.2.3, [::1]         an IP literal, in any spelling (normalised by net/host)
 *   ...:8443                any of the above restricted to one port
 *
 * Matching is a Map lookup for the exact host, then one Set/Map lookup per parent suffix: cost is
 * proportional to the number of labels in the host, independent of the number of patterns.
 */
import { getPublicSuffix } from "tldts";
import { parsePort, normaliseHost } from "./host.ts";

/** Pass as `port` to match a host whatever the port of the pattern. */
export const ANY_PORT = -1;

export interface HostMatcher {
  /** The original text of the pattern that matched, or null. `host` must already be normalised. */
  match(host: string, port: number): string | null;
  readonly size: number;
}

/** Patterns keyed by one host or suffix: a pattern for any port, and per-port ones. */
interface Bucket {
  anyPort: string | null;
  ports: Map<number, string> | null;
}

/**
 * Compiles patterns; throws one Error listing every bad pattern with its index and the reason,
 * so a config with three typos reports three problems at load, never one per request.
 */
export function compileHostPatterns(patterns: readonly string[], opts: { purpose?: "allow" | "deny" } = {}): HostMatcher {
  const overSuffixOk = opts.purpose === "deny";
  const exact = new Map<string, Bucket>();
  const wildcard = new Map<string, Bucket>();
  const problems: string[] = [];

  patterns.forEach((pattern, index) => {
    const compiled = compilePattern(pattern, overSuffixOk);
    if ("error" in compiled) {
      problems.push(`#${index} ${JSON.stringify(pattern)}: ${compiled.error}`);
      return;
    }
    addTo(compiled.wildcard ? wildcard : exact, compiled.host, compiled.port, pattern);
  });
  if (problems.length > 0) throw new Error(`invalid host patterns: ${problems.join("; ")}`);

  const hasWildcards = wildcard.size > 0;
  return {
    size: patterns.length,
    match(host: string, port: number): string | null {
      const hit = lookup(exact.get(host), port);
      if (hit !== null) return hit;
      if (!hasWildcards) return null;
      // Walk proper parent suffixes only, longest first, so the most specific wildcard wins
      // and `*.example.com` never matches `example.com`.
      let dot = host.indexOf(".");
      while (dot !== -1) {
        const found = lookup(wildcard.get(host.slice(dot + 1)), port);
        if (found !== null) return found;
        dot = host.indexOf(".", dot + 1);
      }
      return null;
    },
  };
}

/**
 * A port-specific pattern is preferred over an any-port one for the same host. ANY_PORT asks
 * whether the host is named at all (DNS: a name is resolvable if any of its ports is allowed).
 */
function lookup(bucket: Bucket | undefined, port: number): string | null {
  if (bucket === undefined) return null;
  if (port === ANY_PORT) return bucket.anyPort ?? bucket.ports?.values().next().value ?? null;
  return bucket.ports?.get(port) ?? bucket.anyPort;
}

/** First pattern wins for the same host and port, so the returned text is stable. */
function addTo(map: Map<string, Bucket>, host: string, port: number | null, pattern: string): void {
  let bucket = map.get(host);
  if (bucket === undefined) {
    bucket = { anyPort: null, ports: null };
    map.set(host, bucket);
  }
  if (port === null) {
    bucket.anyPort ??= pattern;
    return;
  }
  bucket.ports ??= new Map();
  if (!bucket.ports.has(port)) bucket.ports.set(port, pattern);
}

type CompiledPattern = { readonly host: string; readonly port: number | null; readonly wildcard: boolean } | { readonly error: string };

/** One allow-list pattern read: its normalised host (the base, for a wildcard), port and kind; or why it is bad. */
export function readHostPattern(pattern: string): CompiledPattern {
  return compilePattern(pattern, false);
}

/**
 * `overSuffixOk`: a deny list may name `*.ngrok.io` or `*.github.io` (denying everything anyone
 * can register there is the point); only an allow list must not.
 */
function compilePattern(raw: string, overSuffixOk: boolean): CompiledPattern {
  const pattern = raw.trim();
  if (pattern.length === 0) return { error: "empty pattern" };

  const split = splitPort(pattern);
  if ("error" in split) return split;
  const { hostText, port } = split;

  if (hostText === "*") return { error: "a bare wildcard matches every host; list the hosts instead" };
  const wildcard = hostText.startsWith("*.");
  const base = wildcard ? hostText.slice(2) : hostText;
  if (base.includes("*")) return { error: "a wildcard is only allowed as the whole leading label, as in *.example.com" };
  if (wildcard && base.length === 0) return { error: "wildcard without a domain" };

  const normalised = normaliseHost(base);
  if (!normalised.ok) return { error: normalised.error };
  if (!wildcard) return { host: normalised.host, port, wildcard: false };

  if (normalised.ip !== null) return { error: "a wildcard cannot apply to an IP address" };
  if (overSuffixOk) return { host: normalised.host, port, wildcard: true };
  // A wildcard over a public suffix (`*.com`, `*.co.uk`) admits hosts anyone can register. The
  // private section of the Public Suffix List counts too: under `github.io`, `workers.dev` or
  // `s3.amazonaws.com` any stranger can get a subdomain and run a server that receives what an
  // agent exfiltrates. Names under an unlisted TLD fall to the PSL default rule "*", so `*.corp`
  // is refused while `*.example.corp` is allowed.
  const suffix = getPublicSuffix(normalised.host, {
    allowPrivateDomains: true,
    extractHostname: false,
    validateHostname: false,
    detectIp: false,
  });
  if (suffix === normalised.host) {
    return { error: `${JSON.stringify(normalised.host)} is a public suffix; a wildcard over it matches domains anyone can register` };
  }
  return { host: normalised.host, port, wildcard: true };
}

/** Splits an optional `:port`; an IPv6 literal with a port must be bracketed (`[::1]:8443`). */
function splitPort(pattern: string): { readonly hostText: string; readonly port: number | null } | { readonly error: string } {
  if (pattern.startsWith("[")) {
    const close = pattern.indexOf("]");
    if (close === -1) return { error: "unterminated [ in IPv6 literal" };
    const rest = pattern.slice(close + 1);
    if (rest.length === 0) return { hostText: pattern.slice(0, close + 1), port: null };
    if (!rest.startsWith(":")) return { error: "unexpected text after IPv6 literal" };
    const port = parsePort(rest.slice(1));
    if (port === null) return { error: `invalid port ${JSON.stringify(rest.slice(1))}: want 1..65535` };
    return { hostText: pattern.slice(0, close + 1), port };
  }
  const first = pattern.indexOf(":");
  // More than one colon without brackets: an IPv6 literal with no port.
  if (first === -1 || pattern.indexOf(":", first + 1) !== -1) return { hostText: pattern, port: null };
  const port = parsePort(pattern.slice(first + 1));
  if (port === null) return { error: `invalid port ${JSON.stringify(pattern.slice(first + 1))}: want 1..65535` };
  return { hostText: pattern.slice(0, first), port };
}
