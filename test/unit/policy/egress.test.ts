import { describe, expect, test } from "bun:test";
import type { ReasonCode } from "../../../src/core/reasons.ts";
import { compileEgress, compileEgressLists, decideEgress, type EgressLists, type EgressRequest } from "../../../src/policy/egress.ts";

const PORTS = {
  http: [
    [80, 80],
    [8000, 8999],
  ] as [number, number][],
  connect: [
    [443, 443],
    [8443, 8443],
  ] as [number, number][],
};

interface Lists {
  allow?: string[];
  deny?: string[];
}

type Expected = [verdict: "allow" | "block", rule: string, code: ReasonCode];

function decide(global: Lists, agent: Lists | null, req: EgressRequest) {
  const egress = compileEgress({ allow: global.allow ?? [], deny: global.deny ?? [], ports: PORTS });
  const agentLists: EgressLists | null = agent ? compileEgressLists(agent.allow, agent.deny) : null;
  return decideEgress(egress, agentLists, req);
}

const connect = (host: string, port = 443): EgressRequest => ({ kind: "connect", host, port });
const http = (host: string, port = 80): EgressRequest => ({ kind: "http", host, port });

const ALLOWED: Expected = ["allow", "egress.allow-host", "allowlisted"];
const DEFAULT_ALLOWED: Expected = ["allow", "egress.default-allow", "allowed"];
const DENIED: Expected = ["block", "egress.deny-host", "deny_listed"];
const NOT_LISTED: Expected = ["block", "egress.not-allowed", "not_allowlisted"];
const BAD_PORT: Expected = ["block", "egress.port-not-allowed", "port_not_allowed"];

describe("decideEgress: global lists", () => {
  const rows: [desc: string, global: Lists, req: EgressRequest, expected: Expected][] = [
    ["empty allow and deny allow everything", {}, connect("anything.example"), DEFAULT_ALLOWED],
    ["empty allow with a deny: other hosts allowed", { deny: ["bad.example"] }, connect("good.example"), DEFAULT_ALLOWED],
    ["empty allow with a deny: the denied host is blocked", { deny: ["bad.example"] }, connect("bad.example"), DENIED],
    ["a non-empty allow list allows what it lists", { allow: ["api.github.com"] }, connect("api.github.com"), ALLOWED],
    ["a non-empty allow list is default-deny", { allow: ["api.github.com"] }, connect("github.com"), NOT_LISTED],
    ["wildcards match subdomains", { allow: ["*.example.com"] }, connect("a.b.example.com"), ALLOWED],
    ["wildcards do not match the apex", { allow: ["*.example.com"] }, connect("example.com"), NOT_LISTED],
    ["deny wins over allow", { allow: ["*.example.com"], deny: ["bad.example.com"] }, connect("bad.example.com"), DENIED],
    ["deny wins even for an exact allow", { allow: ["x.example"], deny: ["x.example"] }, connect("x.example"), DENIED],
    ["a deny wildcard wins over an exact allow", { allow: ["api.example.com"], deny: ["*.example.com"] }, connect("api.example.com"), DENIED],
    ["a port-specific allow matches its port", { allow: ["api.example.com:8443"] }, connect("api.example.com", 8443), ALLOWED],
    ["a port-specific allow does not match other ports", { allow: ["api.example.com:8443"] }, connect("api.example.com", 443), NOT_LISTED],
    ["a port-specific deny does not block other ports", { deny: ["api.example.com:8443"] }, connect("api.example.com", 443), DEFAULT_ALLOWED],
    ["IP literal allow", { allow: ["10.0.0.5"] }, http("10.0.0.5"), ALLOWED],
    ["IPv6 literal deny", { deny: ["[2001:db8::1]"] }, http("2001:db8::1"), DENIED],
  ];
  test.each(rows)("%s", (_desc, global, req, [verdict, rule, code]) => {
    const d = decide(global, null, req);
    expect(d.verdict).toBe(verdict);
    expect(d.reasons).toHaveLength(1);
    expect(d.reasons[0]!.rule).toBe(rule);
    expect(d.reasons[0]!.code).toBe(code);
  });

  test("reasons name the matching pattern or the refused host", () => {
    expect(decide({ deny: ["*.evil.example"] }, null, connect("x.evil.example")).reasons[0]!.detail).toContain("*.evil.example");
    expect(decide({ allow: ["*.good.example"] }, null, connect("x.good.example")).reasons[0]!.detail).toContain("*.good.example");
    expect(decide({ allow: ["a.example"] }, null, connect("b.example", 443)).reasons[0]!.detail).toContain("b.example:443");
  });
});

describe("decideEgress: ports per kind", () => {
  const rows: [desc: string, req: EgressRequest, expected: Expected][] = [
    ["http on 80", http("a.example", 80), DEFAULT_ALLOWED],
    ["http in the 8000-8999 range", http("a.example", 8500), DEFAULT_ALLOWED],
    ["http at the range's low end", http("a.example", 8000), DEFAULT_ALLOWED],
    ["http at the range's high end", http("a.example", 8999), DEFAULT_ALLOWED],
    ["http past the range", http("a.example", 9000), BAD_PORT],
    ["http on 443 (a connect port only)", http("a.example", 443), BAD_PORT],
    ["connect on 443", connect("a.example", 443), DEFAULT_ALLOWED],
    ["connect on 8443", connect("a.example", 8443), DEFAULT_ALLOWED],
    ["connect on 80 (an http port only)", connect("a.example", 80), BAD_PORT],
    ["connect on 22", connect("a.example", 22), BAD_PORT],
  ];
  test.each(rows)("%s", (_desc, req, [verdict, rule, code]) => {
    const d = decide({}, null, req);
    expect(d.verdict).toBe(verdict);
    expect(d.reasons[0]!.rule).toBe(rule);
    expect(d.reasons[0]!.code).toBe(code);
  });

  test("the port check comes first, even for a denied host", () => {
    expect(decide({ deny: ["bad.example"] }, null, connect("bad.example", 22)).reasons[0]!.code).toBe("port_not_allowed");
  });

  test("a port refusal names the list and the allowed ports", () => {
    const detail = decide({}, null, connect("a.example", 22)).reasons[0]!.detail;
    expect(detail).toContain("egress.ports.connect");
    expect(detail).toContain("443,8443");
    expect(decide({}, null, http("a.example", 22)).reasons[0]!.detail).toContain("80,8000-8999");
  });
});

describe("decideEgress: agent lists", () => {
  const rows: [desc: string, global: Lists, agent: Lists, req: EgressRequest, expected: Expected][] = [
    ["an agent allow list replaces the global one: globally allowed host is refused", { allow: ["a.example"] }, { allow: ["b.example"] }, connect("a.example"), NOT_LISTED],
    ["an agent allow list replaces the global one: its own host is allowed", { allow: ["a.example"] }, { allow: ["b.example"] }, connect("b.example"), ALLOWED],
    ["an agent allow list makes an open global policy default-deny for that agent", {}, { allow: ["b.example"] }, connect("c.example"), NOT_LISTED],
    ["an agent with only a deny list keeps the global allow list", { allow: ["a.example"] }, { deny: ["x.example"] }, connect("a.example"), ALLOWED],
    ["an agent with only a deny list keeps global default-deny", { allow: ["a.example"] }, { deny: ["x.example"] }, connect("c.example"), NOT_LISTED],
    ["an agent deny adds to the global deny", { allow: ["*.example.com"] }, { deny: ["secret.example.com"] }, connect("secret.example.com"), DENIED],
    ["an agent deny adds to an open global policy", {}, { deny: ["x.example"] }, connect("x.example"), DENIED],
    ["the global deny still applies when the agent allows the host", { deny: ["x.example"] }, { allow: ["x.example"] }, connect("x.example"), DENIED],
    ["the agent's deny wins over the agent's allow", {}, { allow: ["*.example.com"], deny: ["a.example.com"] }, connect("a.example.com"), DENIED],
    ["agent lists do not widen ports", {}, { allow: ["a.example"] }, connect("a.example", 22), BAD_PORT],
  ];
  test.each(rows)("%s", (_desc, global, agent, req, [verdict, rule, code]) => {
    const d = decide(global, agent, req);
    expect(d.verdict).toBe(verdict);
    expect(d.reasons[0]!.rule).toBe(rule);
    expect(d.reasons[0]!.code).toBe(code);
  });

  test("the same host can be allowed for one agent and refused for another", () => {
    const egress = compileEgress({ allow: ["shared.example"], deny: [], ports: PORTS });
    const builder = compileEgressLists(["registry.example"], undefined);
    const reviewer = compileEgressLists(undefined, ["shared.example"]);
    expect(decideEgress(egress, builder, connect("registry.example")).verdict).toBe("allow");
    expect(decideEgress(egress, reviewer, connect("registry.example")).verdict).toBe("block");
    expect(decideEgress(egress, null, connect("shared.example")).verdict).toBe("allow");
    expect(decideEgress(egress, reviewer, connect("shared.example")).verdict).toBe("block");
    expect(decideEgress(egress, builder, connect("shared.example")).verdict).toBe("block");
  });
});

describe("compileEgressLists", () => {
  test("empty or missing lists compile to null", () => {
    expect(compileEgressLists(undefined, undefined)).toEqual({ allow: null, deny: null });
    expect(compileEgressLists([], [])).toEqual({ allow: null, deny: null });
  });

  test("a bad pattern throws at compile time, naming it", () => {
    expect(() => compileEgressLists(["ok.example", "bad host"], undefined)).toThrow(/bad host/);
    expect(() => compileEgressLists(["*.com"], undefined)).toThrow(/\*\.com/);
    expect(() => compileEgressLists(undefined, ["bad host"])).toThrow(/bad host/);
  });

  test("a deny list may wildcard over a public suffix (deny all of *.ngrok.io); an allow list may not", () => {
    const lists = compileEgressLists(undefined, ["*.ngrok.io", "*.github.io"]);
    expect(lists.deny?.match("abc.ngrok.io", 443)).toBe("*.ngrok.io");
    expect(lists.deny?.match("someone.github.io", 443)).toBe("*.github.io");
    expect(lists.deny?.match("ngrok.io", 443)).toBeNull();
    expect(() => compileEgressLists(["*.ngrok.io"], undefined)).toThrow(/public suffix/);
    expect(() => compileEgressLists(undefined, ["*"])).toThrow(/bare wildcard/);
  });
});
