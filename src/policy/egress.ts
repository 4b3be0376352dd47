/**
 * Egress decisions by host and port. Compiled once per config load; `decideEgress` is a few
 * map lookups. Semantics (README "Egress policy"):
 *  - the port must be in `egress.ports.http` (plain requests) or `.connect` (tunnels);
 *  - deny wins: the global deny list, then the agent's own deny list;
 *  - the agent's allow list, when it has one, replaces the global allow list;
 *  - a non-empty allow list means deny by default; an empty one allows what is not denied.
 * Address classification (private, metadata, ...) happens after resolution, in the dialer.
 */
import type { Decision, Reason } from "../core/types.ts";
import { compileHostPatterns, type HostMatcher } from "../net/host-pattern.ts";
import { compilePortSet, type PortSet } from "./ports.ts";

export interface EgressLists {
  /** null: no allow list, everything not denied is allowed. */
  readonly allow: HostMatcher | null;
  readonly deny: HostMatcher | null;
}

export interface CompiledEgress {
  readonly lists: EgressLists;
  readonly httpPorts: PortSet;
  readonly connectPorts: PortSet;
}

export interface EgressRequest {
  readonly kind: "http" | "connect";
  readonly host: string;
  readonly port: number;
}

export function compileEgressLists(allow: readonly string[] | undefined, deny: readonly string[] | undefined): EgressLists {
  return {
    allow: allow && allow.length > 0 ? compileHostPatterns(allow, { purpose: "allow" }) : null,
    deny: deny && deny.length > 0 ? compileHostPatterns(deny, { purpose: "deny" }) : null,
  };
}

export function compileEgress(cfg: {
  allow: readonly string[];
  deny: readonly string[];
  ports: { http: readonly (readonly [number, number])[]; connect: readonly (readonly [number, number])[] };
}): CompiledEgress {
  return {
    lists: compileEgressLists(cfg.allow, cfg.deny),
    httpPorts: compilePortSet(cfg.ports.http),
    connectPorts: compilePortSet(cfg.ports.connect),
  };
}

const block = (reason: Reason): Decision => ({ verdict: "block", reasons: [reason] });

export function decideEgress(egress: CompiledEgress, agentLists: EgressLists | null, req: EgressRequest): Decision {
  const ports = req.kind === "http" ? egress.httpPorts : egress.connectPorts;
  if (!ports.has(req.port)) {
    return block({
      rule: "egress.port-not-allowed",
      code: "port_not_allowed",
      detail: `port ${req.port} is not in egress.ports.${req.kind} (${ports.text})`,
    });
  }
  for (const deny of [egress.lists.deny, agentLists?.deny ?? null]) {
    const hit = deny?.match(req.host, req.port);
    if (hit) return block({ rule: "egress.deny-host", code: "deny_listed", detail: `${req.host} matches deny pattern ${hit}` });
  }
  const allow = agentLists?.allow ?? egress.lists.allow;
  if (allow === null) {
    return { verdict: "allow", reasons: [{ rule: "egress.default-allow", code: "allowed", detail: "no allow list" }] };
  }
  const hit = allow.match(req.host, req.port);
  if (hit) return { verdict: "allow", reasons: [{ rule: "egress.allow-host", code: "allowlisted", detail: `matches ${hit}` }] };
  return block({ rule: "egress.not-allowed", code: "not_allowlisted", detail: `${req.host}:${req.port} is not on the allow list` });
}
