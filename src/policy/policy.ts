/** The compiled, frozen policy every listener reads. Built by config/compile; swapped whole on reload. */
import type { AgentDirectory } from "./agents.ts";
import type { HostMatcher } from "../net/host-pattern.ts";
import type { CompiledEgress } from "./egress.ts";
import type { DlpEngine } from "../scan/dlp.ts";
import type { InjectionEngine } from "../scan/injection/engine.ts";
import type { ArgRules } from "../scan/arg-rules.ts";

export interface DlpSettings {
  readonly engine: DlpEngine;
  /** Bodies up to this size are held and scanned whole; larger ones are scanned as they stream. */
  readonly maxBufferBytes: number;
  /** All bodies held at once, over all connections; past it, bodies stream. */
  readonly maxHeldTotalBytes: number;
  /** Bytes of a streamed body held back until the next chunk arrives (a secret across chunks). */
  readonly overlapBytes: number;
  readonly inflate: { readonly maxOutputBytes: number; readonly maxRatio: number };
}

export interface InjectionSettings {
  readonly engine: InjectionEngine;
  readonly action: "block" | "strip" | "warn";
  /** Hosts whose responses are not scanned; null: none. */
  readonly exempt: HostMatcher | null;
  readonly maxBufferBytes: number;
  readonly oversize: "block" | "stream" | "pass";
  /** Compressed responses are decoded within the dlp.body limits (the same bombs, the same defence). */
  readonly inflate: { readonly maxOutputBytes: number; readonly maxRatio: number };
}

export interface ProxySettings {
  readonly listen: { readonly hostname: string; readonly port: number };
  /** The transparent listener (proxy.transparent_listen), or null. */
  readonly transparentListen: { readonly hostname: string; readonly port: number } | null;
  readonly maxHeaderBytes: number;
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly tunnelMaxMs: number;
  readonly upstreamIdleTimeoutMs: number;
  readonly maxIdleUpstreamPerHost: number;
  readonly maxConnections: number;
  /** Explicit, or true by default once any agent is identified by token (see config/compile). */
  readonly requireAgent: boolean;
  /** WebSocket upgrades: relayed message by message (proxy/ws-relay.ts), or refused when disabled. */
  readonly websocket: { readonly enabled: boolean; readonly maxMessageBytes: number; readonly maxHeldTotalBytes: number };
}

export interface DnsSettings {
  /** null: no DNS server (the proxy still resolves through the same resolver). */
  readonly listen: { readonly hostname: string; readonly port: number } | null;
  readonly upstreams: readonly { readonly hostname: string; readonly port: number }[];
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  readonly negativeTtlMs: number;
  readonly cacheSize: number;
  readonly ipv6: boolean;
  /** Names allowed to resolve to private addresses. */
  readonly internalDomains: HostMatcher | null;
  readonly exfil: {
    readonly enabled: boolean;
    readonly maxNameLength?: number;
    readonly subdomainsPerMinute?: number;
    readonly allowDomains: readonly string[];
  };
}

export interface Policy {
  readonly mode: "enforce" | "audit";
  readonly proxy: ProxySettings;
  readonly egress: CompiledEgress;
  readonly dns: DnsSettings;
  readonly agents: AgentDirectory;
  /** null when dlp.enabled is false. */
  readonly dlp: DlpSettings | null;
  /** null when injection.enabled is false. */
  readonly injection: InjectionSettings | null;
  readonly trustedCidrs: readonly string[];
  readonly tls: TlsSettings;
  /** Credential injection entries, in config order. */
  readonly credentials: readonly Credential[];
  /** Shadow MCP: JSON-RPC MCP in request bodies to hosts `servers` does not match; null when mcp.shadow is off. */
  readonly mcpShadow: { readonly action: "block" | "warn"; readonly servers: HostMatcher | null } | null;
  /** mcp.servers tool policy by server name: why a tool is refused, or null when it may be used. */
  readonly mcpToolPolicy: (server: string, tool: string) => string | null;
  /**
   * Injection settings whose engine also runs rules/mcp: MCP tool definitions and instructions are
   * judged with it. Null unless loadConfig was asked for it (`mcpTools`, `sluice mcp` only).
   */
  readonly mcpToolInjection: InjectionSettings | null;
  /** rules/mcp-args over tools/call arguments (mcp.arguments); null when off. */
  readonly mcpArguments: { readonly rules: ArgRules; readonly action: "block" | "warn" } | null;
  /** Short digest of the config text, for records and /healthz. */
  readonly digest: string;
}

/** One `credentials` entry, compiled. Holds the real value: memory only, never logged or recorded. */
export interface Credential {
  readonly name: string;
  readonly hostPatterns: readonly string[];
  readonly hosts: HostMatcher;
  /** header: the value goes in a header sluice sets; replace: wherever the request carries the placeholder. */
  readonly mode: "header" | "replace";
  /** The header to set, as configured, and lowercased for comparison ("" in replace mode). */
  readonly headerName: string;
  readonly headerLower: string;
  /** The header's value with the real secret in it. */
  readonly headerValue: string;
  /** The real value alone, to find it if an origin echoes it back (credentials.ts EchoGuard). */
  readonly secret: string;
  readonly placeholder: string;
  readonly allowPlaintext: boolean;
  /** The agent's own header of the entry's name: dropped, or the request refused unless it holds the placeholder. */
  readonly clientHeader: "drop" | "reject";
}

export interface TlsSettings {
  /** Terminate TLS in CONNECT tunnels to allowed hosts and inspect what is inside. */
  readonly intercept: boolean;
  /** PEM certificates trusted for upstream TLS besides the system roots (tls.extra_ca_files). */
  readonly extraCa: readonly string[];
  /** Hosts whose tunnels are spliced unread after the server-name check (tls.passthrough); null when none. */
  readonly passthrough: HostMatcher | null;
  /** Plain HTTP in an intercepted tunnel: refused as not TLS, or read as plain requests to the CONNECT host. */
  readonly plaintextTunnels: "block" | "inspect";
}
