/**
 * The ordered list of stages `inspect` runs (mitmproxy's default_addons, in one visible place).
 * A stage returns a blocking Reason, or null to pass the action on. Each explains itself; the
 * explanation is what `sluice explain`/docs print, the Reason detail is what the record says.
 */
import type { Action, Decision, Reason } from "../core/types.ts";
import { decideEgress } from "../policy/egress.ts";
import type { Policy } from "../policy/policy.ts";
import type { EgressLists } from "../policy/egress.ts";

export interface InspectContext {
  readonly policy: Policy;
  readonly killswitch: boolean;
  /** Set while the decision log cannot be written and audit.on_failure is block: why. */
  readonly auditFailure?: string | null;
  /** The acting agent's own egress lists (from policy.agents.identify). */
  readonly agentLists: EgressLists | null;
}

export interface Stage {
  readonly name: string;
  explain(): string;
  run(action: Action, ctx: InspectContext): Reason | Decision | null;
}

/** RFC 9110 section 9.3.8: TRACE reflects the request, credentials included; TRACK is its IIS twin. */
const REFUSED_METHODS = new Set(["TRACE", "TRACK"]);

export const STAGES: readonly Stage[] = [
  {
    name: "killswitch",
    explain: () => "while the kill switch is on, all egress is refused, in audit mode too",
    run: (_a, ctx) =>
      ctx.killswitch ? { rule: "admin.killswitch", code: "killswitch", detail: "kill switch is on: all egress refused" } : null,
  },
  {
    name: "audit",
    explain: () => "while the decision log cannot be written (audit.on_failure: block), all egress is refused, in audit mode too",
    run: (_a, ctx) =>
      ctx.auditFailure ? { rule: "audit.unavailable", code: "audit_unavailable", detail: `the decision log cannot be written (${ctx.auditFailure}): refusing until it can` } : null,
  },
  {
    name: "agent",
    explain: () => "a proxy credential that matches no agent is refused; so is no credential when proxy.require_agent is set",
    run(action, ctx) {
      if (action.agent.via === "invalid") {
        return { rule: "agent.auth-failed", code: "agent_auth_failed", detail: "proxy credential matches no agent" };
      }
      if (action.agent.via === "anonymous" && ctx.policy.proxy.requireAgent) {
        return { rule: "agent.auth-required", code: "agent_auth_required", detail: "proxy.require_agent is set" };
      }
      return null;
    },
  },
  {
    name: "method",
    explain: () => "TRACE and TRACK are refused: they echo requests, proxy credentials included",
    run: (action) =>
      // Methods are case-sensitive (RFC 9110 section 9.1), but some origins fold case: refuse any casing.
      action.kind === "http.request" && REFUSED_METHODS.has(action.method.toUpperCase())
        ? { rule: "proxy.method-refused", code: "method_refused", detail: `method ${action.method} is refused` }
        : null,
  },
  {
    name: "egress",
    explain: () => "host and port against egress.allow / egress.deny / egress.ports and the agent's own lists",
    run: (action, ctx) =>
      decideEgress(ctx.policy.egress, ctx.agentLists, {
        kind: action.kind === "connect" ? "connect" : "http",
        host: action.host,
        port: action.port,
      }),
  },
];
