import { describe, expect, test } from "bun:test";
import { compilePolicy } from "../../../src/config/compile.ts";
import { parseConfigText } from "../../../src/config/parse.ts";
import type { ReasonCode } from "../../../src/core/reasons.ts";
import type { Action, AgentIdentity, Decision } from "../../../src/core/types.ts";
import { applyMode, inspect, type InspectContext } from "../../../src/inspect/inspect.ts";
import { STAGES } from "../../../src/inspect/stages.ts";
import type { Policy } from "../../../src/policy/policy.ts";
import { builtinRules } from "../../../src/config/load.ts";

const BUILTIN = await builtinRules();

function policyFrom(yaml: string): Policy {
  return compilePolicy(parseConfigText(yaml, "test.yaml"), { agentTokenDigests: new Map(), digest: "test", systemNameservers: [{ hostname: "127.0.0.1", port: 53 }], builtinRules: BUILTIN });
}

const EGRESS = `
egress:
  allow: [allowed.example, "*.allowed.example"]
  deny: [denied.allowed.example]
  ports:
    http: [80]
    connect: [443]
`;
const ENFORCE = policyFrom(`version: 1\nmode: enforce\n${EGRESS}`);
const AUDIT = policyFrom(`version: 1\nmode: audit\n${EGRESS}`);
const REQUIRE_AGENT = policyFrom(`version: 1\nproxy:\n  require_agent: true\n${EGRESS}`);

const ANON: AgentIdentity = { name: "anonymous", via: "anonymous" };
const INVALID: AgentIdentity = { name: "invalid-credential", via: "invalid" };
const TOKEN: AgentIdentity = { name: "builder", via: "token" };

function httpAction(method: string, host: string, agent: AgentIdentity = ANON, port = 80): Action {
  return {
    kind: "http.request",
    agent,
    client: { address: "127.0.0.1", port: 40000 },
    method,
    scheme: "http",
    host,
    port,
    path: "/",
    query: "",
    headers: [["Host", host]],
  };
}

function connectAction(host: string, port = 443, agent: AgentIdentity = ANON): Action {
  return { kind: "connect", agent, client: { address: "127.0.0.1", port: 40000 }, host, port };
}

function ctx(policy: Policy, killswitch = false): InspectContext {
  return { policy, killswitch, agentLists: null };
}

function summary(d: Decision): { verdict: string; rule: string | undefined; code: string | undefined; wouldBlock: boolean | undefined } {
  return { verdict: d.verdict, rule: d.reasons[0]?.rule, code: d.reasons[0]?.code, wouldBlock: d.wouldBlock };
}

describe("STAGES", () => {
  test("run in this order: kill switch, audit log, agent, method, egress", () => {
    expect(STAGES.map((s) => s.name)).toEqual(["killswitch", "audit", "agent", "method", "egress"]);
  });

  test("each stage explains itself", () => {
    for (const s of STAGES) expect(s.explain().length).toBeGreaterThan(10);
  });
});

describe("inspect: enforce mode", () => {
  const rows: [desc: string, action: Action, c: InspectContext, expected: ReturnType<typeof summary>][] = [
    ["an allowed GET", httpAction("GET", "allowed.example"), ctx(ENFORCE), { verdict: "allow", rule: "egress.allow-host", code: "allowlisted", wouldBlock: undefined }],
    ["an allowed CONNECT", connectAction("a.allowed.example"), ctx(ENFORCE), { verdict: "allow", rule: "egress.allow-host", code: "allowlisted", wouldBlock: undefined }],
    ["an unlisted host", httpAction("GET", "other.example"), ctx(ENFORCE), { verdict: "block", rule: "egress.not-allowed", code: "not_allowlisted", wouldBlock: undefined }],
    ["a denied host", connectAction("denied.allowed.example"), ctx(ENFORCE), { verdict: "block", rule: "egress.deny-host", code: "deny_listed", wouldBlock: undefined }],
    ["a CONNECT to an http-only port", connectAction("allowed.example", 80), ctx(ENFORCE), { verdict: "block", rule: "egress.port-not-allowed", code: "port_not_allowed", wouldBlock: undefined }],
    ["TRACE", httpAction("TRACE", "allowed.example"), ctx(ENFORCE), { verdict: "block", rule: "proxy.method-refused", code: "method_refused", wouldBlock: undefined }],
    ["TRACK", httpAction("TRACK", "allowed.example"), ctx(ENFORCE), { verdict: "block", rule: "proxy.method-refused", code: "method_refused", wouldBlock: undefined }],
    ["TRACE to a denied host: method first", httpAction("TRACE", "denied.allowed.example"), ctx(ENFORCE), { verdict: "block", rule: "proxy.method-refused", code: "method_refused", wouldBlock: undefined }],
    ["an invalid credential", httpAction("GET", "allowed.example", INVALID), ctx(ENFORCE), { verdict: "block", rule: "agent.auth-failed", code: "agent_auth_failed", wouldBlock: undefined }],
    ["an invalid credential on TRACE: agent before method", httpAction("TRACE", "allowed.example", INVALID), ctx(ENFORCE), { verdict: "block", rule: "agent.auth-failed", code: "agent_auth_failed", wouldBlock: undefined }],
    ["anonymous when require_agent", connectAction("allowed.example"), ctx(REQUIRE_AGENT), { verdict: "block", rule: "agent.auth-required", code: "agent_auth_required", wouldBlock: undefined }],
    ["a known agent when require_agent", connectAction("allowed.example", 443, TOKEN), ctx(REQUIRE_AGENT), { verdict: "allow", rule: "egress.allow-host", code: "allowlisted", wouldBlock: undefined }],
    ["kill switch on an allowed request", httpAction("GET", "allowed.example", TOKEN), ctx(ENFORCE, true), { verdict: "block", rule: "admin.killswitch", code: "killswitch", wouldBlock: undefined }],
    ["kill switch beats an invalid credential", httpAction("TRACE", "other.example", INVALID), ctx(ENFORCE, true), { verdict: "block", rule: "admin.killswitch", code: "killswitch", wouldBlock: undefined }],
    ["kill switch on CONNECT", connectAction("allowed.example"), ctx(ENFORCE, true), { verdict: "block", rule: "admin.killswitch", code: "killswitch", wouldBlock: undefined }],
  ];
  test.each(rows)("%s", (_desc, action, c, expected) => {
    expect(summary(inspect(action, c))).toEqual(expected);
  });

  test("the agent's own lists are used", () => {
    const lists = compilePolicy(
      parseConfigText("version: 1\nagents:\n  - name: a\n    source_cidrs: [10.0.0.0/8]\n    egress:\n      allow: [only.example]\n", "t"),
      { agentTokenDigests: new Map(), digest: "t", systemNameservers: [{ hostname: "127.0.0.1", port: 53 }], builtinRules: BUILTIN },
    ).agents.identify(undefined, "10.0.0.1").lists;
    const c: InspectContext = { policy: ENFORCE, killswitch: false, agentLists: lists };
    expect(inspect(connectAction("allowed.example"), c).verdict).toBe("block");
    expect(inspect(connectAction("only.example"), c).verdict).toBe("allow");
  });
});

describe("inspect: audit mode", () => {
  const rows: [desc: string, action: Action, code: ReasonCode][] = [
    ["an unlisted host", httpAction("GET", "other.example"), "not_allowlisted"],
    ["a denied host", connectAction("denied.allowed.example"), "deny_listed"],
    ["a bad port", connectAction("allowed.example", 22), "port_not_allowed"],
    ["TRACE", httpAction("TRACE", "allowed.example"), "method_refused"],
    ["an invalid credential", httpAction("GET", "allowed.example", INVALID), "agent_auth_failed"],
  ];
  test.each(rows)("%s becomes a warn that would have blocked, with the same reason", (_desc, action, code) => {
    const enforced = inspect(action, ctx(ENFORCE));
    const audited = inspect(action, ctx(AUDIT));
    expect(enforced.verdict).toBe("block");
    expect(audited.verdict).toBe("warn");
    expect(audited.wouldBlock).toBe(true);
    expect(audited.reasons).toEqual(enforced.reasons);
    expect(audited.reasons[0]?.code).toBe(code);
  });

  test("an allow stays an allow with no wouldBlock", () => {
    const d = inspect(httpAction("GET", "allowed.example"), ctx(AUDIT));
    expect(d.verdict).toBe("allow");
    expect(d.wouldBlock).toBeUndefined();
  });

  test("the kill switch still blocks in audit mode", () => {
    const d = inspect(httpAction("GET", "other.example"), ctx(AUDIT, true));
    expect(summary(d)).toEqual({ verdict: "block", rule: "admin.killswitch", code: "killswitch", wouldBlock: undefined });
  });

  test("an unwritable decision log (audit.on_failure: block) refuses everything, in audit mode too", () => {
    const failing = (policy: Policy): InspectContext => ({ policy, killswitch: false, auditFailure: "ENOSPC: no space left on device", agentLists: null });
    for (const policy of [ENFORCE, AUDIT]) {
      for (const action of [httpAction("GET", "allowed.example", TOKEN), connectAction("allowed.example")]) {
        const d = inspect(action, failing(policy));
        expect(summary(d)).toEqual({ verdict: "block", rule: "audit.unavailable", code: "audit_unavailable", wouldBlock: undefined });
        expect(d.reasons[0]!.detail).toContain("ENOSPC");
      }
    }
    // The kill switch, an operator's order, is still what the record names first.
    expect(inspect(connectAction("allowed.example"), { policy: ENFORCE, killswitch: true, auditFailure: "EIO", agentLists: null }).reasons[0]!.code).toBe("killswitch");
    expect(inspect(connectAction("allowed.example"), { policy: ENFORCE, killswitch: false, auditFailure: null, agentLists: null }).verdict).toBe("allow");
  });

  test("applyMode leaves enforce-mode decisions and non-blocks alone", () => {
    const block: Decision = { verdict: "block", reasons: [{ rule: "egress.not-allowed", code: "not_allowlisted", detail: "x" }] };
    const warn: Decision = { verdict: "warn", reasons: [{ rule: "r", code: "allowed", detail: "x" }] };
    expect(applyMode(block, ctx(ENFORCE))).toBe(block);
    expect(applyMode(warn, ctx(AUDIT))).toBe(warn);
    expect(applyMode(block, ctx(AUDIT))).toEqual({ verdict: "warn", reasons: block.reasons, wouldBlock: true });
    const kill: Decision = { verdict: "block", reasons: [{ rule: "admin.killswitch", code: "killswitch", detail: "x" }] };
    expect(applyMode(kill, ctx(AUDIT))).toBe(kill);
  });
});

describe("inspect: fails closed", () => {
  const throwingEgress = (base: Policy): Policy => ({
    ...base,
    egress: {
      ...base.egress,
      httpPorts: {
        has(): boolean {
          throw new Error("boom in egress");
        },
        text: "",
      },
      connectPorts: {
        has(): boolean {
          throw new Error("boom in egress");
        },
        text: "",
      },
    },
  });

  test("a stage that throws is a block with its own rule and the internal_error code", () => {
    for (const action of [httpAction("GET", "allowed.example"), connectAction("allowed.example")]) {
      const d = inspect(action, ctx(throwingEgress(ENFORCE)));
      expect(d.verdict).toBe("block");
      expect(d.reasons).toHaveLength(1);
      expect(d.reasons[0]!.rule).toBe("inspect.egress-failed");
      expect(d.reasons[0]!.code).toBe("internal_error");
      expect(d.reasons[0]!.detail).toContain("boom in egress");
    }
  });

  test("a stage that throws stops later stages", () => {
    const proxyThrows: Policy = {
      ...ENFORCE,
      get proxy(): Policy["proxy"] {
        throw new Error("no proxy settings");
      },
    };
    // Anonymous agents make the agent stage read policy.proxy.requireAgent.
    const d = inspect(httpAction("GET", "allowed.example"), ctx(proxyThrows));
    expect(summary(d)).toEqual({ verdict: "block", rule: "inspect.agent-failed", code: "internal_error", wouldBlock: undefined });
  });

  test("the kill switch runs before a throwing stage", () => {
    const d = inspect(httpAction("GET", "allowed.example"), ctx(throwingEgress(ENFORCE), true));
    expect(d.reasons[0]!.code).toBe("killswitch");
  });
});
