/**
 * Who is the agent? A proxy token (`Proxy-Authorization: Basic base64(any:TOKEN)` or
 * `Bearer TOKEN`) wins over the source address. Tokens are held only as SHA-256 digests.
 * A presented credential that matches no agent is `invalid` (the proxy answers 407), never
 * silently treated as anonymous.
 */
import { createHash } from "node:crypto";
import type { AgentIdentity } from "../core/types.ts";
import { createCidrSet } from "../net/cidr.ts";
import { parseIpLiteral, unmapIpv4 } from "../net/ip.ts";
import { compileEgressLists, type EgressLists } from "./egress.ts";

export interface AgentSpec {
  readonly name: string;
  /** Written in the agent's records (`agent_label`): what it is, e.g. a jail's command. */
  readonly label?: string;
  readonly tokenSha256?: string;
  readonly sourceCidrs: readonly string[];
  readonly egress?: { allow?: readonly string[]; deny?: readonly string[] };
}

export interface Identified {
  readonly agent: AgentIdentity;
  /** The agent's own egress lists, when it has any. */
  readonly lists: EgressLists | null;
}

export interface AgentDirectory {
  identify(proxyAuthorization: string | undefined, sourceAddress: string): Identified;
  /** The label of the configured agent of that name, if it has one. */
  labelOf(name: string): string | undefined;
  readonly size: number;
}

const ANONYMOUS: Identified = { agent: { name: "anonymous", via: "anonymous" }, lists: null };
const INVALID: Identified = { agent: { name: "invalid-credential", via: "invalid" }, lists: null };

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The token carried by a Proxy-Authorization value, or null when the scheme is not understood. */
export function tokenFromProxyAuthorization(value: string): string | null {
  const space = value.indexOf(" ");
  if (space < 0) return null;
  const scheme = value.slice(0, space).toLowerCase();
  const rest = value.slice(space + 1).trim();
  if (scheme === "bearer") return rest || null;
  if (scheme !== "basic") return null;
  const decoded = Buffer.from(rest, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  const token = colon < 0 ? decoded : decoded.slice(colon + 1);
  return token || null;
}

export function compileAgents(specs: readonly AgentSpec[]): AgentDirectory {
  const byToken = new Map<string, Identified>();
  const bySource: { cidrs: ReturnType<typeof createCidrSet>; id: Identified }[] = [];
  const names = new Set<string>();
  const labels = new Map<string, string>();
  for (const spec of specs) {
    if (names.has(spec.name)) throw new Error(`agents: duplicate agent name ${spec.name}`);
    const lists = spec.egress ? compileEgressLists(spec.egress.allow, spec.egress.deny) : null;
    const named = (via: "token" | "source"): AgentIdentity => (spec.label === undefined ? { name: spec.name, via } : { name: spec.name, via, label: spec.label });
    names.add(spec.name);
    if (spec.label !== undefined) labels.set(spec.name, spec.label);
    if (spec.tokenSha256) {
      if (byToken.has(spec.tokenSha256)) throw new Error(`agents.${spec.name}: token shared with another agent`);
      byToken.set(spec.tokenSha256, { agent: named("token"), lists });
    }
    if (spec.sourceCidrs.length > 0) {
      bySource.push({ cidrs: createCidrSet([...spec.sourceCidrs]), id: { agent: named("source"), lists } });
    }
  }
  return {
    size: specs.length,
    labelOf: (name) => labels.get(name),
    identify(proxyAuthorization, sourceAddress) {
      if (proxyAuthorization !== undefined) {
        const token = tokenFromProxyAuthorization(proxyAuthorization);
        return (token && byToken.get(hashToken(token))) || INVALID;
      }
      if (bySource.length > 0) {
        // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; match them as IPv4.
        const parsed = parseIpLiteral(sourceAddress);
        const ip = parsed && unmapIpv4(parsed);
        if (ip) for (const s of bySource) if (s.cidrs.contains(ip)) return s.id;
      }
      return ANONYMOUS;
    },
  };
}
