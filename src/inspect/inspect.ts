/**
 * inspect(action, ctx) -> Decision. Pure: no sockets, files or clocks (ARCHITECTURE.md).
 * Runs STAGES in order; the first block wins. `mode: audit` turns a block into a warn that
 * remembers it would have blocked, except for the kill switch, failed stages and self-dials.
 */
import type { Action, Decision, Reason } from "../core/types.ts";
import { STAGES, type InspectContext } from "./stages.ts";

export type { InspectContext } from "./stages.ts";

const ALLOW: Decision = { verdict: "allow", reasons: [{ rule: "egress.default-allow", code: "allowed", detail: "no stage objected" }] };

export function inspect(action: Action, ctx: InspectContext): Decision {
  let allow: Decision = ALLOW;
  for (const stage of STAGES) {
    let out: Reason | Decision | null;
    try {
      out = stage.run(action, ctx);
    } catch (err) {
      // Fail closed: a stage that throws is a block with its own reason, never a silent allow.
      out = { rule: `inspect.${stage.name}-failed`, code: "internal_error", detail: `stage ${stage.name} failed: ${String(err)}` };
    }
    if (out === null) continue;
    const decision: Decision = "verdict" in out ? out : { verdict: "block", reasons: [out] };
    if (decision.verdict === "allow") {
      allow = decision;
      continue;
    }
    return applyMode(decision, ctx);
  }
  return allow;
}

export function applyMode(decision: Decision, ctx: InspectContext): Decision {
  if (decision.verdict !== "block" || ctx.policy.mode !== "audit") return decision;
  // The kill switch is an operator's order, a failed stage and an unwritable log are fail-closed, and dialling
  // sluice's own listeners is a loop (one request becomes hundreds of tunnels): none of them is
  // softened by audit mode.
  const first = decision.reasons[0];
  if (first?.code === "killswitch" || first?.code === "internal_error" || first?.code === "audit_unavailable" || first?.rule === "net.self-address") return decision;
  return { verdict: "warn", reasons: decision.reasons, wouldBlock: true };
}
