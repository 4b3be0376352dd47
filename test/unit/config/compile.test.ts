import { describe, expect, test } from "bun:test";
import { builtinRules } from "../../../src/config/load.ts";
import { compilePolicy } from "../../../src/config/compile.ts";
import { parseConfigText } from "../../../src/config/parse.ts";
import { ConfigError } from "../../../src/core/errors.ts";
import { decideEgress } from "../../../src/policy/egress.ts";
import { hashToken } from "../../../src/policy/agents.ts";
import type { Policy } from "../../../src/policy/policy.ts";
import { sampleSecret } from "../../helpers/dlp-samples.ts";

const BUILTIN = await builtinRules();

type Issue = { path: string; message: string };

function compile(text: string, digests: ReadonlyMap<number, string> = new Map()): Policy {
  return compilePolicy(parseConfigText(text, "test.yaml"), { agentTokenDigests: digests, digest: "0123456789abcdef", systemNameservers: [{ hostname: "127.0.0.1", port: 53 }], builtinRules: BUILTIN });
}

function compileIssues(text: string): Issue[] {
  try {
    compile(text);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error(`expected a ConfigError for:\n${text}`);
}

function issueMatching(list: Issue[], path: RegExp): Issue {
  const found = list.find((i) => path.test(i.path));
  if (!found) throw new Error(`no issue with a path matching ${path}; issues: ${JSON.stringify(list)}`);
  return found;
}

describe("compilePolicy: the compiled policy", () => {
  const policy = compile(`version: 1
mode: audit
proxy:
  listen: 127.0.0.1:0
  max_header_bytes: 16KiB
  header_timeout: 1s
  idle_timeout: 2s
  connect_timeout: 3s
  upstream_timeout: 4s
  tunnel_max_duration: 5s
  upstream_idle_timeout: 6s
  max_idle_upstream_per_host: 7
  require_agent: true
egress:
  allow: [api.github.com]
  deny: [bad.example]
  ports:
    http: [80, "8000-8099"]
    connect: [443]
  trusted_cidrs: [10.0.0.0/8]
`);

  test("settings are mapped to milliseconds and bytes under camelCase names", () => {
    expect(policy.mode).toBe("audit");
    expect(policy.digest).toBe("0123456789abcdef");
    expect(policy.trustedCidrs).toEqual(["10.0.0.0/8"]);
    expect(policy.proxy).toEqual({
      listen: { hostname: "127.0.0.1", port: 0 },
      transparentListen: null,
      maxHeaderBytes: 16384,
      headerTimeoutMs: 1000,
      idleTimeoutMs: 2000,
      connectTimeoutMs: 3000,
      upstreamTimeoutMs: 4000,
      tunnelMaxMs: 5000,
      upstreamIdleTimeoutMs: 6000,
      maxConnections: 4096,
      maxIdleUpstreamPerHost: 7,
      requireAgent: true,
      websocket: { enabled: true, maxMessageBytes: 1024 * 1024, maxHeldTotalBytes: 64 * 1024 * 1024 },
    });
  });

  test("the policy and its settings are frozen", () => {
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.proxy)).toBe(true);
    expect(Object.isFrozen(policy.trustedCidrs)).toBe(true);
  });

  test("egress lists and ports are compiled", () => {
    const allow = decideEgress(policy.egress, null, { kind: "connect", host: "api.github.com", port: 443 });
    expect(allow.verdict).toBe("allow");
    expect(decideEgress(policy.egress, null, { kind: "connect", host: "other.example", port: 443 }).reasons[0]?.code).toBe("not_allowlisted");
    expect(decideEgress(policy.egress, null, { kind: "http", host: "api.github.com", port: 8050 }).verdict).toBe("allow");
    expect(decideEgress(policy.egress, null, { kind: "http", host: "api.github.com", port: 8100 }).reasons[0]?.code).toBe("port_not_allowed");
  });

  test("token_file agents get their digest from the inputs, by index", () => {
    const p = compile(
      `version: 1
agents:
  - name: by-source
    source_cidrs: [10.0.0.0/8]
  - name: by-file
    token_file: agent.token
`,
      new Map([[1, hashToken("file-token-0123456789")]]),
    );
    expect(p.agents.size).toBe(2);
    expect(p.agents.identify("Bearer file-token-0123456789", "127.0.0.1").agent).toEqual({ name: "by-file", via: "token" });
    expect(p.agents.identify(undefined, "10.9.9.9").agent).toEqual({ name: "by-source", via: "source" });
  });

  test("an agent's label is in its identity, with what DLP finds in it cut out (it goes into every record)", () => {
    const key = sampleSecret("dlp.aws-access-key-id");
    const labelled = (dlp: string) =>
      compile(`version: 1
${dlp}agents:
  - name: worker
    label: "nightly job: deploy --key ${key} --region eu"
    source_cidrs: [10.0.0.0/8]
  - name: plain
    label: "the docs bot"
    token_sha256: ${hashToken("plain-token-0123456789")}
`).agents;
    const agents = labelled("");
    expect(agents.identify(undefined, "10.1.2.3").agent).toEqual({ name: "worker", via: "source", label: `nightly job: deploy --key ${key.slice(0, 4)}…${key.slice(-2)} --region eu` });
    expect(agents.identify("Bearer plain-token-0123456789", "127.0.0.1").agent).toEqual({ name: "plain", via: "token", label: "the docs bot" });
    // Hidden in base64, it cannot be cut out as written: the label is withheld.
    const encoded = compile(`version: 1
agents:
  - name: worker
    label: "job ${Buffer.from(`aws_access_key_id = ${key}`).toString("base64")}"
    source_cidrs: [10.0.0.0/8]
`).agents.identify(undefined, "10.1.2.3").agent.label;
    expect(encoded).toBe("[withheld: dlp.aws-access-key-id found in it]");
    // With DLP off there is nothing to find it with: the label is as written.
    expect(labelled("dlp: { enabled: false }\n").identify(undefined, "10.1.2.3").agent.label).toContain(key);
  });
});

describe("compilePolicy: bad patterns and CIDRs are ConfigErrors with a path", () => {
  const rows: [desc: string, text: string, path: RegExp, messagePart: string][] = [
    ["allow pattern with a space", "version: 1\negress:\n  allow: [ok.example, 'bad host']\n", /^egress(\.allow(\.1)?)?$/, "bad host"],
    ["wildcard over a public suffix", "version: 1\negress:\n  allow: ['*.com']\n", /^egress(\.allow(\.0)?)?$/, "*.com"],
    ["deny pattern", "version: 1\negress:\n  deny: ['-bad-.example:99999']\n", /^egress(\.deny(\.0)?)?$/, "-bad-.example:99999"],
    ["trusted CIDR with host bits", "version: 1\negress:\n  trusted_cidrs: [10.0.0.0/8, 10.0.0.1/8]\n", /^egress\.trusted_cidrs\.1$/, "10.0.0.1/8"],
    ["trusted CIDR that is not an address", "version: 1\negress:\n  trusted_cidrs: [nope]\n", /^egress\.trusted_cidrs\.0$/, "nope"],
    ["agent source CIDR", "version: 1\nagents:\n  - name: a\n    source_cidrs: [10.0.0.0/33]\n", /^agents\.0\.source_cidrs\.0$/, "10.0.0.0/33"],
    [
      "agent egress pattern",
      "version: 1\nagents:\n  - name: a\n    source_cidrs: [10.0.0.0/8]\n    egress:\n      deny: ['bad host']\n",
      /^agents\.0\.egress(\.deny(\.0)?)?$/,
      "bad host",
    ],
    [
      "duplicate agent names",
      "version: 1\nagents:\n  - name: a\n    source_cidrs: [10.0.0.0/8]\n  - name: a\n    source_cidrs: [10.1.0.0/16]\n",
      /^agents(\.1(\.name)?)?$/,
      "duplicate",
    ],
    [
      "two agents with one token",
      `version: 1\nagents:\n  - name: a\n    token_sha256: ${"b".repeat(64)}\n  - name: c\n    token_sha256: ${"b".repeat(64)}\n`,
      /^agents(\.1(\.token_sha256)?)?$/,
      "token",
    ],
  ];
  test.each(rows)("%s", (_desc, text, path, messagePart) => {
    expect(issueMatching(compileIssues(text), path).message).toContain(messagePart);
  });

  test("every problem is reported, not only the first", () => {
    const list = compileIssues(`version: 1
egress:
  allow: ['*.com']
  trusted_cidrs: [nope]
agents:
  - name: a
    source_cidrs: [also-nope]
    egress:
      allow: ['bad host']
`);
    issueMatching(list, /^egress(\.allow(\.\d+)?)?$/);
    issueMatching(list, /^egress\.trusted_cidrs\.0$/);
    issueMatching(list, /^agents\.0\.source_cidrs\.0$/);
    issueMatching(list, /^agents\.0\.egress/);
  });

  // compileEgressLists compiles allow then deny and throws at the first list with a problem, and
  // compilePolicy reports that under the path "egress": a typo in the deny list is hidden
  // whenever the allow list has one too, and neither issue says which list it is in.
  test("bad patterns in both egress.allow and egress.deny are both reported, each with its list's path", () => {
    const list = compileIssues("version: 1\negress:\n  allow: [ok.example, 'bad allow']\n  deny: ['bad deny']\n");
    expect(issueMatching(list, /^egress\.allow(\.\d+)?$/).message).toContain("bad allow");
    expect(issueMatching(list, /^egress\.deny(\.\d+)?$/).message).toContain("bad deny");
  });

  test("a bad tls.passthrough pattern is reported under its path", () => {
    const list = compileIssues("version: 1\ntls:\n  passthrough: ['pinned.example', 'bad host']\n");
    expect(issueMatching(list, /^tls\.passthrough$/).message).toContain("bad host");
  });

  test("credentials: a template that is not printable ASCII, no interception, overlapping placeholders and a duplicate name are each reported", () => {
    const list = compileIssues(`version: 1
credentials:
  - { name: a, hosts: [a.example], source: { env: A }, header: { name: Authorization, value: "Bearer {secret}\u010d\u010aX: y" }, placeholder: sluice-cred-shared-1234 }
  - { name: a, hosts: [b.example], source: { env: B }, header: { name: X-Key, value: "{secret}" }, placeholder: sluice-cred-shared-12345 }
`);
    expect(issueMatching(list, /^credentials\.0\.header\.value$/).message).toContain("printable ASCII");
    expect(issueMatching(list, /^credentials\.0$/).message).toContain("tls.intercept is off");
    expect(issueMatching(list, /^credentials\.1\.placeholder$/).message).toContain("overlaps the placeholder of credential a");
    expect(issueMatching(list, /^credentials\.1\.name$/).message).toContain("duplicate");
  });

  test("credentials: an exact host an earlier entry or tls.passthrough already takes is reported", () => {
    const list = compileIssues(`version: 1
tls: { intercept: true, passthrough: ["pinned.example"] }
credentials:
  - { name: a, hosts: ["*.api.example"], source: { env: A }, header: { name: Authorization, value: "Bearer {secret}" } }
  - { name: b, hosts: ["eu.api.example:443"], source: { env: B }, header: { name: X-Key, value: "{secret}" } }
  - { name: c, hosts: ["pinned.example"], source: { env: C }, header: { name: X-Key, value: "{secret}" } }
  - { name: d, hosts: ["other.example"], source: { env: D }, header: { name: X-Key, value: "{secret}" } }
`);
    expect(issueMatching(list, /^credentials\.1\.hosts$/).message).toContain("already covered by credential a");
    expect(issueMatching(list, /^credentials\.2\.hosts$/).message).toContain("tls.passthrough");
    expect(list.some((i) => i.path.startsWith("credentials.3") || i.path.startsWith("credentials.0"))).toBe(false);
  });

  test("credentials: a replace entry may share a host with a header entry; header and replace are one or the other", () => {
    // No values are given here, so no entry is compiled; what matters is that nothing is reported.
    expect(() =>
      compile(`version: 1
tls: { intercept: true }
credentials:
  - { name: a, hosts: ["api.example"], source: { env: A }, header: { name: Authorization, value: "Bearer {secret}" } }
  - { name: b, hosts: ["api.example"], source: { env: B }, replace: true }
`),
    ).not.toThrow();
    for (const entry of ["replace: true, header: { name: X-Key, value: '{secret}' }", "allow_plaintext: false"]) {
      const list = compileIssues(`version: 1\ntls: { intercept: true }\ncredentials:\n  - { name: a, hosts: [a.example], source: { env: A }, ${entry} }\n`);
      expect(issueMatching(list, /^credentials\.0$/).message).toContain("either header or replace");
    }
  });

  // Agent-level checks (duplicate names, shared tokens) only run when nothing else failed.
  test("a duplicate agent name is reported together with a bad egress pattern", () => {
    const list = compileIssues(`version: 1
egress:
  allow: ['bad host']
agents:
  - name: twin
    source_cidrs: [10.0.0.0/8]
  - name: twin
    source_cidrs: [10.1.0.0/16]
`);
    issueMatching(list, /^egress/);
    expect(issueMatching(list, /^agents/).message).toContain("duplicate");
  });
});
