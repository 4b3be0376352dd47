import type { ReasonCode } from "./reasons.ts";
import type { Decision } from "./types.ts";

/** A decision to refuse, carried through code that cannot return one. Not a failure. */
export class PolicyBlock extends Error {
  constructor(readonly decision: Decision) {
    super(decision.reasons[0]?.detail ?? "blocked by policy");
    this.name = "PolicyBlock";
  }
}

/** Something failed (DNS, a socket, a file). Carries the reason code used in records and responses. */
export class OperationalError extends Error {
  constructor(
    readonly code: ReasonCode,
    message: string,
    readonly rule = `proxy.${code.replaceAll("_", "-")}`,
  ) {
    super(message);
    this.name = "OperationalError";
  }
}

/** Invalid configuration: every problem with its key path, collected, never the first only. */
export class ConfigError extends Error {
  constructor(readonly issues: readonly { path: string; message: string }[], source = "config") {
    super(`${source}: ${issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ")}`);
    this.name = "ConfigError";
  }
}
