/**
 * Validated Config -> frozen Policy. Pure: token files are read by the loader and passed in as
 * digests. Every pattern and CIDR is compiled here, so a bad one fails at load with its path,
 * never per request.
 */
import { ConfigError } from "../core/errors.ts";
import { parseCidr } from "../net/cidr.ts";
import { compileAgents, type AgentSpec } from "../policy/agents.ts";
import { compileEgress, compileEgressLists } from "../policy/egress.ts";
import type { Policy } from "../policy/policy.ts";
import type { Config } from "./schema.ts";

export interface CompileInputs {
  /** sha256 hex of each agent's token_file content, by agent index. */
  readonly agentTokenDigests: ReadonlyMap<number, string>;
  readonly digest: string;
}

export function compilePolicy(config: Config, inputs: CompileInputs): Policy {
  const issues: { path: string; message: string }[] = [];
  const attempt = <T>(path: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      issues.push({ path, message: err instanceof Error ? err.message : String(err) });
      return undefined;
    }
  };

  const egress = attempt("egress", () => compileEgress(config.egress));
  config.egress.trusted_cidrs.forEach((c, i) => attempt(`egress.trusted_cidrs.${i}`, () => parseCidr(c)));
  const specs: AgentSpec[] = config.agents.map((a, i) => {
    a.source_cidrs.forEach((c, j) => attempt(`agents.${i}.source_cidrs.${j}`, () => parseCidr(c)));
    if (a.egress) attempt(`agents.${i}.egress`, () => compileEgressLists(a.egress?.allow, a.egress?.deny));
    const digest = a.token_sha256 ?? inputs.agentTokenDigests.get(i);
    return { name: a.name, sourceCidrs: a.source_cidrs, ...(digest ? { tokenSha256: digest } : {}), ...(a.egress ? { egress: a.egress } : {}) };
  });
  const agents = issues.length === 0 ? attempt("agents", () => compileAgents(specs)) : undefined;
  if (issues.length > 0 || !egress || !agents) throw new ConfigError(issues);

  const p = config.proxy;
  return Object.freeze({
    mode: config.mode,
    proxy: Object.freeze({
      listen: p.listen,
      maxHeaderBytes: p.max_header_bytes,
      headerTimeoutMs: p.header_timeout,
      idleTimeoutMs: p.idle_timeout,
      connectTimeoutMs: p.connect_timeout,
      upstreamTimeoutMs: p.upstream_timeout,
      tunnelMaxMs: p.tunnel_max_duration,
      upstreamIdleTimeoutMs: p.upstream_idle_timeout,
      maxIdleUpstreamPerHost: p.max_idle_upstream_per_host,
      requireAgent: p.require_agent,
    }),
    egress,
    agents,
    trustedCidrs: Object.freeze([...config.egress.trusted_cidrs]),
    digest: inputs.digest,
  });
}
