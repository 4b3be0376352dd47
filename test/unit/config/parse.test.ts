import { describe, expect, test } from "bun:test";
import { parseConfigText } from "../../../src/config/parse.ts";
import { configSchema, RESERVED_SECTIONS, type Config } from "../../../src/config/schema.ts";
import { ConfigError } from "../../../src/core/errors.ts";

type Issue = { path: string; message: string };

function parse(text: string): Config {
  return parseConfigText(text, "test.yaml");
}

function issues(text: string): Issue[] {
  try {
    parseConfigText(text, "test.yaml");
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error(`expected a ConfigError for:\n${text}`);
}

/** The issue at `path`, failing with the whole list when there is none. */
function issueAt(list: Issue[], path: string): Issue {
  const found = list.find((i) => i.path === path);
  if (!found) throw new Error(`no issue at ${JSON.stringify(path)}; issues: ${JSON.stringify(list)}`);
  return found;
}

const SHA = "a".repeat(64);

describe("parseConfigText: defaults", () => {
  test("`version: 1` alone gives every default", () => {
    expect(parse("version: 1\n")).toEqual({
      version: 1,
      mode: "enforce",
      proxy: {
        listen: { hostname: "127.0.0.1", port: 8888 },
        max_header_bytes: 65536,
        header_timeout: 10_000,
        idle_timeout: 60_000,
        connect_timeout: 10_000,
        upstream_timeout: 60_000,
        tunnel_max_duration: 3_600_000,
        upstream_idle_timeout: 30_000,
        max_idle_upstream_per_host: 32,
        max_connections: 4096,
        websocket: { enabled: true, max_message: 1024 * 1024, max_held_total: 64 * 1024 * 1024 },
      },
      admin: { listen: { hostname: "127.0.0.1", port: 8889 } },
      dns: {
        listen: { hostname: "127.0.0.1", port: 5353 },
        timeout: 2000,
        attempts: 2,
        min_ttl: 0,
        max_ttl: 3_600_000,
        negative_ttl: 300_000,
        cache_size: 10_000,
        ipv6: true,
        internal_domains: [],
        exfil: { enabled: true, allow_domains: [] },
      },
      egress: { allow: [], deny: [], ports: { http: [[80, 80]], connect: [[443, 443]] }, trusted_cidrs: [] },
      agents: [],
      dlp: {
        enabled: true,
        action: "block",
        actions: {},
        disable: [],
        known_secrets: { env: [], files: [], min_length: 8 },
        custom_rules: [],
        body: { max_buffer: 1048576, overlap: 4096, max_held_total: 67108864, max_decompressed: 16777216, max_ratio: 100 },
      },
      injection: { enabled: true, action: "block", threshold: 50, disable: [], exempt_hosts: [], max_buffer: 4194304, oversize: "block" },
      tls: { intercept: false, extra_ca_files: [], passthrough: [], plaintext_tunnels: "block" },
      credentials: [],
      mcp: { first_contact: "trust", max_line: 4194304, answer_timeout: 300000, env_allow: [], servers: [], arguments: "block" },
      audit: { file: "stderr", segment_size: 67108864, segment_max_age: 86400000, checkpoint_every: { records: 10000, interval: 10000 }, fsync: "interval", on_failure: "block", export: { stdout: "off" } },
    });
  });

  test("empty sections get their defaults too", () => {
    const c = parse("version: 1\nproxy: {}\negress: {}\nadmin: {}\naudit: {}\n");
    expect(c.proxy.listen).toEqual({ hostname: "127.0.0.1", port: 8888 });
    expect(c.egress.ports.connect).toEqual([[443, 443]]);
    expect(c.audit.file).toBe("stderr");
  });

  test("a full config parses to typed values", () => {
    const c = parse(`
version: 1
mode: audit
proxy:
  listen: "[::1]:0"
  max_header_bytes: 32KiB
  header_timeout: 2s
  idle_timeout: 90s
  connect_timeout: 1500ms
  upstream_timeout: 2m
  tunnel_max_duration: 1h
  upstream_idle_timeout: 5000
  max_idle_upstream_per_host: 0
  require_agent: true
  websocket: { enabled: false, max_message: 64KiB }
admin:
  listen: 127.0.0.1:0
  token_file: admin.token
egress:
  allow: [api.github.com, "*.example.com"]
  deny: [evil.example.com]
  ports:
    http: [80, "8000-8999"]
    connect: [443, 8443]
  trusted_cidrs: [10.0.0.0/8]
agents:
  - name: builder
    token_sha256: ${SHA}
    egress:
      allow: [registry.npmjs.org]
  - name: ci.runner_1
    source_cidrs: [10.1.0.0/16]
audit:
  file: /var/log/sluice.jsonl
`);
    expect(c.mode).toBe("audit");
    expect(c.proxy).toEqual({
      listen: { hostname: "::1", port: 0 },
      max_header_bytes: 32768,
      header_timeout: 2000,
      idle_timeout: 90_000,
      connect_timeout: 1500,
      upstream_timeout: 120_000,
      tunnel_max_duration: 3_600_000,
      upstream_idle_timeout: 5000,
      max_idle_upstream_per_host: 0,
      max_connections: 4096,
      require_agent: true,
      websocket: { enabled: false, max_message: 65536, max_held_total: 64 * 1024 * 1024 },
    });
    expect(c.admin).toEqual({ listen: { hostname: "127.0.0.1", port: 0 }, token_file: "admin.token" });
    expect(c.egress.ports).toEqual({
      http: [
        [80, 80],
        [8000, 8999],
      ],
      connect: [
        [443, 443],
        [8443, 8443],
      ],
    });
    expect(c.agents[0]?.name).toBe("builder");
    expect(c.agents[0]?.token_sha256).toBe(SHA);
    expect(c.agents[0]?.egress?.allow).toEqual(["registry.npmjs.org"]);
    expect(c.agents[1]?.source_cidrs).toEqual(["10.1.0.0/16"]);
    expect(c.audit.file).toBe("/var/log/sluice.jsonl");
  });

  test("configSchema is the same contract when used directly", () => {
    const r = configSchema.safeParse({ version: 1, egress: { deny: ["a.example"] } });
    expect(r.success).toBe(true);
    expect(r.data?.egress.deny).toEqual(["a.example"]);
    expect(configSchema.safeParse({}).success).toBe(false);
  });
});

describe("parseConfigText: version and document shape", () => {
  const rows: [desc: string, text: string, path: string][] = [
    ["no version", "mode: enforce\n", "version"],
    ["version 2", "version: 2\n", "version"],
    ["version as a string", "version: '1'\n", "version"],
    ["empty document", "", ""],
    ["a comment only", "# nothing\n", ""],
    ["a list", "- version: 1\n", ""],
    ["a scalar", "version 1\n", ""],
  ];
  test.each(rows)("%s -> issue at %p", (_desc, text, path) => {
    const list = issues(text);
    issueAt(list, path);
  });

  test("version 2 says that 1 is the only version", () => {
    expect(issueAt(issues("version: 2\n"), "version").message).toContain("must be 1");
  });
});

describe("parseConfigText: unknown keys carry their path", () => {
  const rows: [text: string, path: string][] = [
    ["version: 1\nfoo: 1\n", "foo"],
    ["version: 1\negress:\n  alow: [a.example]\n", "egress.alow"],
    ["version: 1\nproxy:\n  listen: 127.0.0.1:8888\n  lisen: 127.0.0.1:1\n", "proxy.lisen"],
    ["version: 1\negress:\n  ports:\n    htp: [80]\n", "egress.ports.htp"],
    ["version: 1\nadmin:\n  token: x\n", "admin.token"],
    ["version: 1\naudit:\n  path: x\n", "audit.path"],
    ["version: 1\nagents:\n  - name: a\n    source_cidrs: [10.0.0.0/8]\n    tokn: x\n", "agents.0.tokn"],
    ["version: 1\nagents:\n  - name: a\n    source_cidrs: [10.0.0.0/8]\n  - name: b\n    source_cidrs: [10.0.0.0/8]\n    egress:\n      alow: [x.example]\n", "agents.1.egress.alow"],
  ];
  test.each(rows)("%p -> %p", (text, path) => {
    expect(issueAt(issues(text), path).message).toBe("unknown key");
  });

  test("two unknown keys in one object are two issues", () => {
    const list = issues("version: 1\negress:\n  alow: []\n  dney: []\n");
    issueAt(list, "egress.alow");
    issueAt(list, "egress.dney");
  });
});

describe("parseConfigText: reserved sections", () => {
  test("RESERVED_SECTIONS lists the sections ARCHITECTURE.md names but this version lacks: none now", () => {
    expect([...RESERVED_SECTIONS]).toEqual([]);
    // Every section ARCHITECTURE.md names is accepted.
    for (const section of ["mode: enforce", "proxy: {}", "admin: {}", "dns: {}", "egress: {}", "tls: {}", "dlp: {}", "injection: {}", "mcp: {}", "credentials: []", "agents: []", "audit: {}"]) {
      expect(() => parse(`version: 1\n${section}\n`)).not.toThrow();
    }
  });

  test("a reserved name below the top level is simply unknown", () => {
    expect(issueAt(issues("version: 1\negress:\n  dns: {}\n"), "egress.dns").message).toBe("unknown key");
  });
});

describe("parseConfigText: YAML errors", () => {
  const rows: [desc: string, line: number, text: string, messagePart: RegExp][] = [
    ["duplicate key", 3, "version: 1\nmode: enforce\nmode: audit\n", /unique/i],
    ["duplicate nested key", 5, "version: 1\negress:\n  allow: []\n  deny: []\n  allow: [a.example]\n", /unique/i],
    ["tab indentation", 2, "version: 1\n\tmode: audit\n", /tab/i],
    ["nested mapping in a compact mapping", 4, "version: 1\nmode: enforce\nproxy:\n  listen: a: b\n", /mapping/i],
    ["block in flow", 3, "version: 1\nmode: enforce\nproxy: {listen: 1: 2}\n", /flow/i],
  ];
  test.each(rows)("%s -> reported at line %p", (_desc, line, text, messagePart) => {
    const list = issues(text);
    expect(list.length).toBeGreaterThan(0);
    const first = list[0]!;
    expect(first.path).toMatch(new RegExp(`^line ${line}, column \\d+$`));
    expect(first.message).toMatch(messagePart);
    // One line per issue: YAML's code excerpt is not carried into the message.
    expect(first.message).not.toContain("\n");
  });

  test("the error message names the source", () => {
    try {
      parseConfigText("version: 1\nmode: a\nmode: b\n", "/etc/sluice/sluice.yaml");
      throw new Error("expected a ConfigError");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toStartWith("/etc/sluice/sluice.yaml: ");
    }
  });

  test("an alias bomb is refused with a ConfigError, not a raw exception", () => {
    // Billion laughs: 10^9 nodes from a few lines. yaml's maxAliasCount stops it, but it throws a
    // ReferenceError, which check-config does not catch (it expects ConfigError) and so crashes.
    const lines = ["version: 1", "x:", "  a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++) {
      const prev = String.fromCharCode(97 + i);
      const name = String.fromCharCode(98 + i);
      lines.push(`  ${name}: &${name} [${Array.from({ length: 10 }, () => `*${prev}`).join(", ")}]`);
    }
    let thrown: unknown = null;
    try {
      parseConfigText(`${lines.join("\n")}\n`, "bomb.yaml");
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect(String(thrown)).toMatch(/alias/i);
  });
});

describe("parseConfigText: typed values", () => {
  const durationOk: [value: string, ms: number][] = [
    ["500ms", 500],
    ["10s", 10_000],
    ["1.5s", 1500],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["250", 250],
  ];
  test.each(durationOk)("header_timeout: %p -> %p ms", (value, ms) => {
    expect(parse(`version: 1\nproxy:\n  header_timeout: ${value}\n`).proxy.header_timeout).toBe(ms);
  });

  const durationBad = ["'10'", "10 sec", "-5s", "5d", "-1", "true", "[1]", "''"];
  test.each(durationBad)("header_timeout: %p -> issue at proxy.header_timeout", (value) => {
    issueAt(issues(`version: 1\nproxy:\n  header_timeout: ${value}\n`), "proxy.header_timeout");
  });

  // Durations end up in setTimeout, which holds a signed 32-bit millisecond count: anything
  // longer fires after 1 ms (Node/Bun TimeoutOverflowWarning). `tunnel_max_duration: 1000h`
  // (proxy/forward.ts) would cut every tunnel at once, `connect_timeout: 600h` (proxy/dialer.ts)
  // would fail every dial. Such values must be refused at load.
  const overflow: [key: string, value: string][] = [
    ["tunnel_max_duration", "1000h"],
    ["tunnel_max_duration", "3000000000"],
    ["connect_timeout", "600h"],
  ];
  test.each(overflow)("a duration longer than setTimeout can hold is refused: %s: %s", (key, value) => {
    issueAt(issues(`version: 1\nproxy:\n  ${key}: ${value}\n`), `proxy.${key}`);
  });

  test("the longest duration setTimeout can hold is accepted", () => {
    expect(parse("version: 1\nproxy:\n  tunnel_max_duration: 2147483647\n").proxy.tunnel_max_duration).toBe(2_147_483_647);
  });

  const sizeOk: [value: string, bytes: number][] = [
    ["65536", 65536],
    ["64KiB", 65536],
    ["1MiB", 1048576],
    ["512B", 512],
  ];
  test.each(sizeOk)("max_header_bytes: %p -> %p", (value, bytes) => {
    expect(parse(`version: 1\nproxy:\n  max_header_bytes: ${value}\n`).proxy.max_header_bytes).toBe(bytes);
  });

  const sizeBad = ["64kb", "1.5MiB", "-1", "1.5", "'64 KiB'"];
  test.each(sizeBad)("max_header_bytes: %p -> issue", (value) => {
    issueAt(issues(`version: 1\nproxy:\n  max_header_bytes: ${value}\n`), "proxy.max_header_bytes");
  });

  const listenOk: [value: string, out: { hostname: string; port: number }][] = [
    ["127.0.0.1:9000", { hostname: "127.0.0.1", port: 9000 }],
    ['"[::1]:9000"', { hostname: "::1", port: 9000 }],
    ["0.0.0.0:0", { hostname: "0.0.0.0", port: 0 }],
  ];
  test.each(listenOk)("proxy.listen: %p", (value, out) => {
    expect(parse(`version: 1\nproxy:\n  listen: ${value}\n`).proxy.listen).toEqual(out);
  });

  const listenBad = ["8888", "127.0.0.1", "127.0.0.1:70000", "'::1:8888'", "nope", "localhost:8888"];
  test.each(listenBad)("listen: %p -> issue at proxy.listen and admin.listen", (value) => {
    issueAt(issues(`version: 1\nproxy:\n  listen: ${value}\n`), "proxy.listen");
    issueAt(issues(`version: 1\nadmin:\n  listen: ${value}\n`), "admin.listen");
  });

  const portsBad: [value: string, path: string][] = [
    ["[0]", "egress.ports.http.0"],
    ["[80, 65536]", "egress.ports.http.1"],
    ["['90-80']", "egress.ports.http.0"],
    ["[http]", "egress.ports.http.0"],
    ["[1.5]", "egress.ports.http.0"],
    ["80", "egress.ports.http"],
  ];
  test.each(portsBad)("egress.ports.http: %p -> issue at %p", (value, path) => {
    issueAt(issues(`version: 1\negress:\n  ports:\n    http: ${value}\n`), path);
  });

  test("port lists accept numbers, numeric strings and ranges", () => {
    expect(parse("version: 1\negress:\n  ports:\n    connect: [443, '8443', '9000-9100']\n").egress.ports.connect).toEqual([
      [443, 443],
      [8443, 8443],
      [9000, 9100],
    ]);
  });

  const otherBad: [text: string, path: string][] = [
    ["version: 1\nmode: loud\n", "mode"],
    ["version: 1\nproxy:\n  require_agent: yes\n", "proxy.require_agent"],
    ["version: 1\nproxy:\n  max_idle_upstream_per_host: 1.5\n", "proxy.max_idle_upstream_per_host"],
    ["version: 1\nproxy:\n  max_idle_upstream_per_host: -1\n", "proxy.max_idle_upstream_per_host"],
    ["version: 1\nproxy:\n  max_idle_upstream_per_host: 1025\n", "proxy.max_idle_upstream_per_host"],
    ["version: 1\negress:\n  allow: [a.example, '']\n", "egress.allow.1"],
    ["version: 1\negress:\n  allow: a.example\n", "egress.allow"],
    ["version: 1\negress:\n  deny: [1]\n", "egress.deny.0"],
    ["version: 1\naudit:\n  file: ''\n", "audit.file"],
    ["version: 1\naudit:\n  dir: ''\n", "audit.dir"],
    ["version: 1\naudit:\n  signing_key_file: ''\n", "audit.signing_key_file"],
    ["version: 1\naudit:\n  fsync: sometimes\n", "audit.fsync"],
    ["version: 1\naudit:\n  segment_size: 100\n", "audit.segment_size"],
    ["version: 1\naudit:\n  segment_size: huge\n", "audit.segment_size"],
    ["version: 1\naudit:\n  checkpoint_every: { records: 0 }\n", "audit.checkpoint_every.records"],
    ["version: 1\naudit:\n  checkpoint_every: { interval: 10ms }\n", "audit.checkpoint_every.interval"],
    ["version: 1\naudit:\n  checkpoint_every: 100\n", "audit.checkpoint_every"],
    ["version: 1\naudit:\n  checkpoint: 100\n", "audit.checkpoint"],
    ["version: 1\nadmin:\n  token_file: ''\n", "admin.token_file"],
    ["version: 1\nagents: {}\n", "agents"],
    ["version: 1\nagents:\n  - name: a\n    label: \"line one\\nline two\"\n    source_cidrs: [10.0.0.0/8]\n", "agents.0.label"],
    [`version: 1\nagents:\n  - name: a\n    label: ${"x".repeat(64 * 1024 + 1)}\n    source_cidrs: [10.0.0.0/8]\n`, "agents.0.label"],
    ["version: 1\nagents:\n  - name: a\n    label: ''\n    source_cidrs: [10.0.0.0/8]\n", "agents.0.label"],
  ];
  test.each(otherBad)("%p -> issue at %p", (text, path) => {
    issueAt(issues(text), path);
  });
});

describe("parseConfigText: agents", () => {
  test("token_sha256, token_file or source_cidrs each identify an agent", () => {
    const c = parse(`version: 1
agents:
  - name: a
    token_sha256: ${SHA}
  - name: b
    token_file: b.token
  - name: c
    source_cidrs: [10.0.0.0/8]
`);
    expect(c.agents.map((a) => a.name)).toEqual(["a", "b", "c"]);
    expect(c.agents[1]?.token_file).toBe("b.token");
    expect(c.agents[0]?.source_cidrs).toEqual([]);
  });

  const rows: [desc: string, agent: string, path: string, messagePart: string][] = [
    ["both token_sha256 and token_file", `name: a\n    token_sha256: ${SHA}\n    token_file: a.token`, "agents.0", "not both"],
    ["no way to identify it", "name: a", "agents.0", "token_sha256, token_file or source_cidrs"],
    ["upper-case sha256", `name: a\n    token_sha256: ${"A".repeat(64)}`, "agents.0.token_sha256", "64 lower-case hex"],
    ["short sha256", `name: a\n    token_sha256: ${"a".repeat(63)}`, "agents.0.token_sha256", "64 lower-case hex"],
    ["non-hex sha256", `name: a\n    token_sha256: ${"g".repeat(64)}`, "agents.0.token_sha256", "64 lower-case hex"],
    ["name starting with a dash", "name: '-a'\n    source_cidrs: [10.0.0.0/8]", "agents.0.name", "1-64 characters"],
    ["name with a space", "name: 'a b'\n    source_cidrs: [10.0.0.0/8]", "agents.0.name", "1-64 characters"],
    ["name of 65 characters", `name: ${"a".repeat(65)}\n    source_cidrs: [10.0.0.0/8]`, "agents.0.name", "1-64 characters"],
    ["empty token_file", "name: a\n    token_file: ''", "agents.0.token_file", ""],
  ];
  test.each(rows)("%s -> issue at %p", (_desc, agent, path, messagePart) => {
    const issue = issueAt(issues(`version: 1\nagents:\n  - ${agent}\n`), path);
    expect(issue.message).toContain(messagePart);
  });

  test("a 64-character name is accepted", () => {
    expect(parse(`version: 1\nagents:\n  - name: ${"a".repeat(64)}\n    source_cidrs: [10.0.0.0/8]\n`).agents[0]?.name).toHaveLength(64);
  });
});

describe("parseConfigText: every problem at once", () => {
  test("issues from different sections are all reported, each with its path", () => {
    const list = issues(`version: 2
mode: loud
proxy:
  listen: nope
  header_timeout: soon
egress:
  alow: []
  ports:
    connect: [0]
agents:
  - name: a
dns: { ttl: 5 }
tls: { ca: { cert_file: "" } }
`);
    expect(list.map((i) => i.path).sort()).toEqual(
      ["agents.0", "dns.ttl", "egress.alow", "egress.ports.connect.0", "mode", "proxy.header_timeout", "proxy.listen", "tls.ca.cert_file", "tls.ca.key_file", "version"].sort(),
    );
  });

  test("the ConfigError message lists every issue", () => {
    try {
      parseConfigText("version: 2\nmode: loud\n", "x.yaml");
      throw new Error("expected a ConfigError");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).toContain("version:");
      expect(message).toContain("mode:");
    }
  });
});
