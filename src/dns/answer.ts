/**
 * What sluice's DNS server does with one query, in order:
 *   kill switch -> egress policy on the name -> IPv6 suppression -> exfiltration scan ->
 *   resolve (shared resolver) -> rebinding guard on the addresses -> reply.
 * Refusals are NXDOMAIN with Extended DNS Error 15 "Blocked" (RFC 8914); a blocked query never
 * leaves the machine. One audit record per blocked or rewritten query.
 */
import type { RecordType } from "dns-packet";
import type { Logger } from "../core/log.ts";
import type { ReasonCode } from "../core/reasons.ts";
import type { AgentIdentity, AuditSink, Clock, Verdict } from "../core/types.ts";
import type { AddressPolicy } from "../net/address-policy.ts";
import { ANY_PORT } from "../net/host-pattern.ts";
import { normaliseHost } from "../net/host.ts";
import type { Policy } from "../policy/policy.ts";
import type { DnsResolver } from "./resolver.ts";
import { redactName } from "../scan/dns-exfil.ts";
import { SVCB_TYPES, svcbHints } from "./svcb.ts";
import { EDE_BLOCKED, RCODE, type Answer, type Query, type Reply } from "./wire.ts";

/** Scans a query before it goes upstream (exfiltration; DLP once the scanning issue lands). */
export type NameScanner = (qname: string, nowMs: number, qtype: string) => { rule: string; detail: string } | null;

export interface DnsAnswerDeps {
  readonly policy: () => Policy;
  readonly addresses: () => AddressPolicy;
  readonly killswitch: () => boolean;
  /** Why queries are refused because the decision log cannot be written, or null (audit.on_failure). */
  readonly auditFailure?: () => string | null;
  readonly resolver: DnsResolver;
  readonly scanName: () => NameScanner | null;
  readonly audit: AuditSink;
  readonly log: Logger;
  readonly clock: Clock;
}

/**
 * Query types sluice asks upstream for. Anything else is REFUSED: an arbitrary 16-bit type is
 * a side channel of its own (data in the type field), and no agent needs one.
 */
const FORWARDED_TYPES = new Set<string>(["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "NS", "SOA", "PTR", "CAA", "DS", "DNSKEY", "TLSA", "SSHFP", "NAPTR", ...SVCB_TYPES]);

/** Query types answered with NODATA when dns.ipv6 is off: they carry or lead to IPv6 addresses. */
const IPV6_TYPES = new Set<string>(["AAAA", ...SVCB_TYPES]);

/** dns-packet's `UNKNOWN_<n>` for the two types it lacks, named for records. */
function typeName(type: string): string {
  return type === "UNKNOWN_65" ? "HTTPS" : type === "UNKNOWN_64" ? "SVCB" : type;
}

export function createDnsAnswerer(deps: DnsAnswerDeps): (q: Query, client: string) => Promise<Reply> {
  const record = (q: Query, client: string, agent: AgentIdentity, verdict: Verdict, rule: string, reason: ReasonCode, detail: string, wouldBlock = false, host?: string) =>
    deps.audit.record({
      time: deps.clock.wall().toISOString(),
      kind: "dns",
      agent: agent.name,
      ...(agent.label !== undefined ? { agent_label: agent.label } : {}),
      client,
      method: typeName(q.question.type),
      host: host ?? q.question.name.toLowerCase(),
      verdict,
      rule,
      reason,
      detail,
      ...(wouldBlock ? { would_block: true } : {}),
    });

  const blocked = (rule: string): Reply => ({ rcode: RCODE.NXDOMAIN, ede: { code: EDE_BLOCKED, text: `blocked by sluice: ${rule}` } });

  return async function answer(q: Query, client: string): Promise<Reply> {
    const policy = deps.policy();
    const audit = policy.mode === "audit";
    const agent = policy.agents.identify(undefined, client);
    const who = agent.agent;
    const refuse = (rule: string, reason: ReasonCode, detail: string, always = false, host?: string): Reply | null => {
      if (audit && !always) {
        record(q, client, who, "warn", rule, reason, detail, true, host);
        return null;
      }
      record(q, client, who, "block", rule, reason, detail, false, host);
      return blocked(rule);
    };

    if (deps.killswitch()) return refuse("admin.killswitch", "killswitch", "kill switch is on: all egress refused", true)!;
    const auditFailure = deps.auditFailure?.() ?? null;
    if (auditFailure !== null) return refuse("audit.unavailable", "audit_unavailable", `the decision log cannot be written (${auditFailure}): refusing until it can`, true)!;

    // The name the policy judges is the name that goes upstream: one that does not normalise
    // (stray characters, a numeric last label that is no IPv4 address) is refused, not guessed at.
    const norm = normaliseHost(q.question.name);
    if (!norm.ok) return { rcode: RCODE.REFUSED };
    const name = norm.host;
    if (!FORWARDED_TYPES.has(q.question.type)) return { rcode: RCODE.REFUSED };
    const lists = policy.egress.lists;
    const deny = lists.deny?.match(name, ANY_PORT) ?? agent.lists?.deny?.match(name, ANY_PORT) ?? null;
    if (deny) {
      const r = refuse("egress.deny-host", "deny_listed", `${name} matches deny pattern ${deny}`);
      if (r) return r;
    } else {
      const allow = agent.lists?.allow ?? lists.allow;
      if (allow && allow.match(name, ANY_PORT) === null) {
        const r = refuse("egress.not-allowed", "not_allowlisted", `${name} is not on the allow list`);
        if (r) return r;
      }
    }

    if (!policy.dns.ipv6 && IPV6_TYPES.has(q.question.type)) return { rcode: RCODE.NOERROR };

    const scan = deps.scanName();
    if (scan) {
      let finding: { rule: string; detail: string } | null;
      try {
        // The name as the client spelled it when it differs only in case: the detector folds
        // case itself, but DLP checksums (a GitHub token's CRC) need the letters as sent.
        const asSent = q.question.name.endsWith(".") ? q.question.name.slice(0, -1) : q.question.name;
        finding = scan(asSent.toLowerCase() === name ? asSent : name, deps.clock.epochMs(), q.question.type);
      } catch (err) {
        // Fail closed: a scanner that throws blocks the query.
        finding = { rule: "dns.scan-failed", detail: `name scanner failed: ${String(err)}` };
      }
      if (finding) {
        // The name is the suspected payload: the record keeps only its registrable domain.
        const r = refuse(finding.rule, "dns_exfiltration", finding.detail, false, redactName(name));
        if (r) return r;
      }
    }

    let result;
    try {
      result = await deps.resolver.query(name, q.question.type as RecordType);
    } catch (err) {
      deps.log.debug("dns upstream failure", { name, type: q.question.type, error: String(err) });
      return { rcode: RCODE.SERVFAIL };
    }

    // Only records on the question's CNAME chain, and no addresses outside the answer section:
    // anything else is an upstream slipping in addresses for names nobody asked about.
    const chain = chainOwners(name, result.answers);
    const answers = result.answers.filter((r) => chain.has(r.name.toLowerCase().replace(/\.$/, "")));
    const authorities = result.authorities.filter((r) => r.type !== "A" && r.type !== "AAAA" && !SVCB_TYPES.has(r.type));
    const internal = policy.dns.internalDomains?.match(name, ANY_PORT) ?? null;
    if (internal !== null || answers.length === 0) return { rcode: result.rcode as Reply["rcode"], answers, authorities };
    const kept: Answer[] = [];
    const dropped: string[] = [];
    let addressCount = 0;
    const check = deps.addresses();
    for (const r of answers) {
      if (r.type === "A" || r.type === "AAAA") {
        addressCount++;
        const verdict = check.check(r.data, ANY_PORT);
        if (!verdict.allowed) {
          dropped.push(`${r.data} (${verdict.class.kind})`);
          continue;
        }
      } else if (SVCB_TYPES.has(r.type)) {
        // SVCB/HTTPS address hints are addresses too; a record with a refused (or unreadable)
        // hint is dropped whole.
        const data: unknown = "data" in r ? r.data : undefined;
        addressCount++;
        const hints = Buffer.isBuffer(data) ? svcbHints(data) : { ok: false, addresses: [] };
        const bad = hints.addresses.find((ip) => !check.check(ip, ANY_PORT).allowed);
        if (!hints.ok || bad !== undefined) {
          dropped.push(hints.ok ? `SVCB/HTTPS hint ${bad}` : "unreadable SVCB/HTTPS record");
          continue;
        }
      }
      kept.push(r);
    }
    if (dropped.length === 0) return { rcode: result.rcode as Reply["rcode"], answers, authorities };
    const detail = `${name} answered with refused addresses: ${dropped.join(", ")}`;
    if (audit) {
      record(q, client, who, "warn", "dns.rebinding", "blocked_address", detail, true);
      return { rcode: result.rcode as Reply["rcode"], answers, authorities };
    }
    if (dropped.length === addressCount) {
      record(q, client, who, "block", "dns.rebinding", "blocked_address", detail);
      return blocked("dns.rebinding");
    }
    // A mix of public and refused addresses: answer with the public ones, and say so.
    record(q, client, who, "redact", "dns.rebinding", "blocked_address", `${detail}; answered with the rest`);
    return { rcode: result.rcode as Reply["rcode"], answers: kept, authorities };
  };
}

/** The question's name and every name its CNAMEs lead to within the answer (bounded). */
function chainOwners(name: string, answers: Answer[]): Set<string> {
  const owners = new Set([name]);
  let target = name;
  for (let i = 0; i < 8; i++) {
    const next = answers.find((r) => r.type === "CNAME" && r.name.toLowerCase().replace(/\.$/, "") === target);
    if (!next || next.type !== "CNAME") break;
    target = next.data.toLowerCase().replace(/\.$/, "");
    owners.add(target);
  }
  return owners;
}
