/**
 * Validated Config -> frozen Policy. Pure: token files are read by the loader and passed in as
 * digests. Every pattern and CIDR is compiled here, each list under its own path, and every
 * problem is collected before failing, so a bad entry fails at load with its path, never per
 * request, and one run shows them all.
 */
import { ConfigError } from "../core/errors.ts";
import { parseCidr } from "../net/cidr.ts";
import { ANY_PORT, compileHostPatterns, readHostPattern } from "../net/host-pattern.ts";
import { compileAgents, type AgentSpec } from "../policy/agents.ts";
import { compileEgress } from "../policy/egress.ts";
import type { Credential, Policy } from "../policy/policy.ts";
import type { KnownSecret } from "../scan/known-secrets.ts";
import { clipText, redactSecrets } from "../scan/dlp.ts";
import type { ArgRules } from "../scan/arg-rules.ts";
import type { CompiledRules } from "../scan/rules/compile.ts";
import { compileDlp } from "./dlp.ts";
import { compileInjection } from "./injection.ts";
import { placeholderFor } from "./placeholders.ts";
import { LABEL_MAX, type Config } from "./schema.ts";

export interface CompileInputs {
  /** sha256 hex of each agent's token_file content, by agent index. */
  readonly agentTokenDigests: ReadonlyMap<number, string>;
  readonly digest: string;
  /** Nameservers from /etc/resolv.conf, used when dns.upstreams is not given. */
  readonly systemNameservers: readonly { hostname: string; port: number }[];
  /** The built-in DLP rule pack (rules/dlp), compiled once per process. */
  readonly builtinRules: CompiledRules;
  /** The built-in injection rule pack (rules/injection); none when not given. */
  readonly injectionRules?: CompiledRules;
  /** The injection pack with rules/mcp: judges MCP tool definitions and server instructions. */
  readonly mcpRules?: CompiledRules;
  /** rules/mcp-args: judged over tools/call arguments. */
  readonly argRules?: ArgRules;
  /** Values of dlp.known_secrets, read by the loader; in memory only. */
  readonly knownSecrets?: readonly KnownSecret[];
  /** Contents of tls.extra_ca_files, read by the loader. */
  readonly extraCa?: readonly string[];
  /** Real values of `credentials`, by entry name, read by the loader; in memory only. */
  readonly credentialValues?: ReadonlyMap<string, string>;
}

type Issue = { path: string; message: string };

const RESERVED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "proxy-authorization", "proxy-connection", "expect"]);

export function compilePolicy(config: Config, inputs: CompileInputs): Policy {
  const issues: Issue[] = [];
  const attempt = <T>(path: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      issues.push({ path, message: err instanceof Error ? err.message : String(err) });
      return undefined;
    }
  };
  /** Compiles a list, reporting bad patterns under `path`: null when empty or bad. */
  const checkPatterns = (path: string, list: readonly string[] | undefined) =>
    list && list.length > 0 ? (attempt(path, () => compileHostPatterns(list, { purpose: path.endsWith(".deny") ? "deny" : "allow" })) ?? null) : null;

  checkPatterns("egress.allow", config.egress.allow);
  checkPatterns("egress.deny", config.egress.deny);
  const passthrough = checkPatterns("tls.passthrough", config.tls.passthrough);
  const mcpHosts = config.mcp.servers.flatMap((s) => s.hosts ?? []);
  // Shadow MCP is read in the request bodies DLP holds: without DLP it would check nothing.
  if (config.mcp.shadow !== undefined && config.mcp.shadow !== "off" && !config.dlp.enabled) issues.push({ path: "mcp.shadow", message: "reads the request bodies DLP holds, and dlp.enabled is false: it would check nothing; set mcp.shadow: off, or enable dlp" });
  const shadow = config.mcp.shadow ?? (config.dlp.enabled ? "block" : "off");
  const mcpServers = mcpHosts.length > 0 ? checkPatterns("mcp.servers", mcpHosts) : null;
  config.mcp.servers.forEach((server, i) => {
    for (const name of server.credentials) if (!config.credentials.some((e) => e.name === name)) issues.push({ path: `mcp.servers.${i}.credentials`, message: `no credential named ${name}` });
  });
  const credentialHosts = config.credentials.map((e, i) => checkPatterns(`credentials.${i}.hosts`, e.hosts));
  config.credentials.forEach((e, i) => {
    const earlier = config.credentials.slice(0, i);
    if (earlier.some((o) => o.name === e.name)) issues.push({ path: `credentials.${i}.name`, message: `duplicate credential name ${e.name}` });
    if (e.header && /[^\x20-\x7e]/.test(e.header.value)) issues.push({ path: `credentials.${i}.header.value`, message: "must be printable ASCII" });
    // Framing and routing headers are sluice's to write.
    if (e.header && RESERVED_HEADERS.has(e.header.name.toLowerCase())) issues.push({ path: `credentials.${i}.header.name`, message: `${e.header.name} cannot be set by a credential` });
    // The value itself is never quoted: only that it cannot go in a header.
    const value = inputs.credentialValues?.get(e.name);
    if (value !== undefined && /[^\x20-\x7e]/.test(value)) issues.push({ path: `credentials.${i}.source`, message: `the value of credential ${e.name} holds characters other than printable ASCII, so it cannot go in a header` });
    const mine = e.placeholder?.toLowerCase();
    for (const o of earlier) {
      const theirs = o.placeholder?.toLowerCase();
      if (mine && theirs && (mine.startsWith(theirs) || theirs.startsWith(mine))) {
        issues.push({ path: `credentials.${i}.placeholder`, message: `overlaps the placeholder of credential ${o.name} (one is the other, or begins it)` });
      }
    }
    if (!config.tls.intercept && !e.allow_plaintext) {
      issues.push({ path: `credentials.${i}`, message: `credential ${e.name} would never be injected: it goes only inside intercepted TLS, and tls.intercept is off` });
    }
    // An exact host that an earlier header entry, or tls.passthrough, already takes would never
    // get this entry's header (replace entries apply wherever their placeholder is sent).
    for (const pattern of e.hosts) {
      const read = readHostPattern(pattern);
      if ("error" in read || read.wildcard) continue;
      const port = read.port ?? ANY_PORT;
      const first = e.header ? earlier.find((o, j) => o.header && credentialHosts[j]?.match(read.host, port)) : undefined;
      if (first) issues.push({ path: `credentials.${i}.hosts`, message: `${pattern} is already covered by credential ${first.name}, which comes first: this entry would never be used there` });
      else if (passthrough?.match(read.host, port)) {
        issues.push({ path: `credentials.${i}.hosts`, message: `${pattern} is in tls.passthrough: its tunnels are not decrypted, so the credential would never be injected` });
      }
    }
  });
  config.egress.trusted_cidrs.forEach((c, i) => attempt(`egress.trusted_cidrs.${i}`, () => parseCidr(c)));

  const names = new Map<string, number>();
  const tokens = new Map<string, number>();
  const specs: AgentSpec[] = config.agents.map((a, i) => {
    a.source_cidrs.forEach((c, j) => attempt(`agents.${i}.source_cidrs.${j}`, () => parseCidr(c)));
    checkPatterns(`agents.${i}.egress.allow`, a.egress?.allow);
    checkPatterns(`agents.${i}.egress.deny`, a.egress?.deny);
    const first = names.get(a.name);
    if (first !== undefined) issues.push({ path: `agents.${i}.name`, message: `duplicate agent name ${a.name} (also agents.${first})` });
    else names.set(a.name, i);
    const digest = a.token_sha256 ?? inputs.agentTokenDigests.get(i);
    if (digest) {
      const other = tokens.get(digest);
      if (other !== undefined) issues.push({ path: `agents.${i}`, message: `same token as agents.${other}: tokens identify agents, they must differ` });
      else tokens.set(digest, i);
    }
    return { name: a.name, sourceCidrs: a.source_cidrs, ...(a.label !== undefined ? { label: a.label } : {}), ...(digest ? { tokenSha256: digest } : {}), ...(a.egress ? { egress: a.egress } : {}) };
  });
  const d = config.dns;
  checkPatterns("dns.internal_domains", d.internal_domains);
  const upstreams = d.upstreams ?? inputs.systemNameservers;
  if (upstreams.length === 0) issues.push({ path: "dns.upstreams", message: "none given, and /etc/resolv.conf names no nameserver" });
  if (d.listen !== "off") {
    const l = d.listen;
    // Forwarding to ourselves would loop every query until it timed out.
    const wildcard = l.hostname === "0.0.0.0" || l.hostname === "::";
    const loopback = (h: string) => h.startsWith("127.") || h === "::1";
    if (upstreams.some((u) => u.port === l.port && (u.hostname === l.hostname || (wildcard && loopback(u.hostname))))) {
      issues.push({ path: "dns.upstreams", message: `includes sluice's own dns.listen ${l.hostname}:${l.port}` });
    }
  }
  if (d.min_ttl > d.max_ttl) issues.push({ path: "dns.min_ttl", message: "is greater than dns.max_ttl" });
  const dlp = compileDlp(config.dlp, inputs.builtinRules, inputs.knownSecrets ?? [], issues);
  checkPatterns("injection.exempt_hosts", config.injection.exempt_hosts);
  const injection = compileInjection(config.injection, config.dlp.body, inputs.injectionRules ?? null, issues);
  // The same settings over the pack with the tool-poisoning rules (its problems are the injection pack's, reported once).
  // Only `sluice mcp` compiles the tool pack (load.ts); without it there is none, not a weaker one.
  const toolInjection = injection === null || inputs.mcpRules === undefined ? null : compileInjection(config.injection, config.dlp.body, inputs.mcpRules, []);
  if (issues.length > 0) throw new ConfigError(issues);

  // Everything was checked above; a throw here is a bug, reported as such rather than hidden.
  const egress = compileEgress(config.egress);
  // A label goes into records: whatever DLP finds in it (a token on a jail's command line) is cut
  // out of the whole of it, and only then is it shortened (a cut never leaves half a secret).
  const agents = compileAgents(specs.map((s, i) => (s.label === undefined ? s : { ...s, label: clipText(dlp === null ? s.label : redactSecrets(s.label, dlp.engine, `agents.${i}.label`), LABEL_MAX) })));
  const p = config.proxy;
  return Object.freeze({
    mode: config.mode,
    proxy: Object.freeze({
      listen: p.listen,
      transparentListen: p.transparent_listen ?? null,
      maxHeaderBytes: p.max_header_bytes,
      headerTimeoutMs: p.header_timeout,
      idleTimeoutMs: p.idle_timeout,
      connectTimeoutMs: p.connect_timeout,
      upstreamTimeoutMs: p.upstream_timeout,
      tunnelMaxMs: p.tunnel_max_duration,
      upstreamIdleTimeoutMs: p.upstream_idle_timeout,
      maxIdleUpstreamPerHost: p.max_idle_upstream_per_host,
      maxConnections: p.max_connections,
      requireAgent: p.require_agent ?? specs.some((a) => a.tokenSha256 !== undefined),
      websocket: Object.freeze({ enabled: p.websocket.enabled, maxMessageBytes: p.websocket.max_message, maxHeldTotalBytes: p.websocket.max_held_total }),
    }),
    egress,
    dns: Object.freeze({
      listen: d.listen === "off" ? null : d.listen,
      upstreams: Object.freeze([...upstreams]),
      timeoutMs: d.timeout,
      attempts: d.attempts,
      minTtlMs: d.min_ttl,
      maxTtlMs: d.max_ttl,
      negativeTtlMs: d.negative_ttl,
      cacheSize: d.cache_size,
      ipv6: d.ipv6,
      internalDomains: d.internal_domains.length > 0 ? compileHostPatterns(d.internal_domains, { purpose: "allow" }) : null,
      exfil: Object.freeze({
        enabled: d.exfil.enabled,
        ...(d.exfil.max_name_length !== undefined ? { maxNameLength: d.exfil.max_name_length } : {}),
        ...(d.exfil.subdomains_per_minute !== undefined ? { subdomainsPerMinute: d.exfil.subdomains_per_minute } : {}),
        allowDomains: Object.freeze([...d.exfil.allow_domains]),
      }),
    }),
    agents,
    dlp: dlp === null ? null : Object.freeze(dlp),
    injection: injection === null ? null : Object.freeze(injection),
    trustedCidrs: Object.freeze([...config.egress.trusted_cidrs]),
    mcpShadow: shadow === "off" ? null : Object.freeze({ action: shadow, servers: mcpServers ?? null }),
    mcpToolPolicy: toolPolicy(config.mcp.servers),
    mcpToolInjection: toolInjection === null ? null : Object.freeze(toolInjection),
    mcpArguments: config.mcp.arguments === "off" || inputs.argRules === undefined ? null : Object.freeze({ rules: inputs.argRules, action: config.mcp.arguments }),
    credentials: Object.freeze(
      config.credentials.flatMap((e, i): Credential[] => {
        const value = inputs.credentialValues?.get(e.name);
        // No value: the loader reported it (a test compiling without values gets no entry).
        if (value === undefined) return [];
        return [
          Object.freeze({
            name: e.name,
            hostPatterns: Object.freeze([...e.hosts]),
            // Checked above: compiled whenever the policy gets here.
            hosts: credentialHosts[i]!,
            mode: e.header ? "header" : "replace",
            headerName: e.header?.name ?? "",
            headerLower: e.header?.name.toLowerCase() ?? "",
            headerValue: e.header?.value.replaceAll("{secret}", value) ?? "",
            secret: value,
            placeholder: e.placeholder ?? placeholderFor(e.name),
            allowPlaintext: e.allow_plaintext,
            clientHeader: e.client_header,
          }),
        ];
      }),
    ),
    tls: Object.freeze({
      intercept: config.tls.intercept,
      extraCa: Object.freeze([...(inputs.extraCa ?? [])]),
      passthrough,
      plaintextTunnels: config.tls.plaintext_tunnels,
    }),
    digest: inputs.digest,
  });
}

/** `*` matches any run of characters; everything else is literal. */
function toolGlob(patterns: readonly string[]): RegExp {
  return new RegExp(`^(?:${patterns.map((p) => p.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[\\s\\S]*")).join("|")})$`);
}

/** mcp.servers allow_tools / deny_tools, compiled: why a server's tool is refused, or null. */
function toolPolicy(servers: Config["mcp"]["servers"]): (server: string, tool: string) => string | null {
  const compiled = servers
    .filter((s) => s.allow_tools !== undefined || s.deny_tools.length > 0)
    .map((s) => ({ name: s.name, allow: s.allow_tools ? toolGlob(s.allow_tools) : null, deny: s.deny_tools.length > 0 ? toolGlob(s.deny_tools) : null }));
  return (server, tool) => {
    const entry = compiled.find((s) => s.name === server);
    if (entry === undefined) return null;
    if (entry.deny?.test(tool)) return `tool ${tool} of ${server} is in mcp.servers deny_tools`;
    if (entry.allow !== null && !entry.allow.test(tool)) return `tool ${tool} of ${server} is not in mcp.servers allow_tools`;
    return null;
  };
}
