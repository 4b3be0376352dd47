/**
 * Reason codes: one enum shared by decisions, block responses, audit records and metrics.
 * Adding a code is fine; renaming one breaks dashboards and audit queries, so don't.
 */
export const REASON_CODES = [
  "allowed",
  "allowlisted",
  "deny_listed",
  "not_allowlisted",
  "port_not_allowed",
  "blocked_address",
  "method_refused",
  "killswitch",
  "malformed_request",
  "dns_failure",
  "upstream_unreachable",
  "upstream_error",
  "timeout",
  "agent_auth_required",
  "agent_auth_failed",
  "internal_error",
  "dns_exfiltration",
  "dlp_finding",
  /** A body sluice must scan but cannot decode within its limits (decompression bomb, corrupt, unknown coding). */
  "body_undecodable",
  /** A body past the scanning limits that policy says to refuse rather than pass unscanned. */
  "body_too_large",
  /** A response whose prompt-injection score reached injection.threshold. */
  "injection_detected",
  /** A credential placeholder sent where its real value may not go (another host, plain HTTP). */
  "credential_misuse",
  /** MCP JSON-RPC sent over HTTP to a host no mcp.servers entry names (shadow MCP). */
  "shadow_mcp",
  /** MCP tool arguments that match rules/mcp-args (destructive commands, reverse shells, credential files, ...). */
  "dangerous_arguments",
  /** The decision log cannot be written and audit.on_failure is block: nothing passes unrecorded. */
  "audit_unavailable",
] as const;

export type ReasonCode = (typeof REASON_CODES)[number];
