import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builtinRules } from "../../../src/config/load.ts";
import { compilePolicy } from "../../../src/config/compile.ts";
import { DEFAULT_CONFIG_TEXT, loadConfig } from "../../../src/config/load.ts";
import { parseConfigText } from "../../../src/config/parse.ts";
import { ConfigError } from "../../../src/core/errors.ts";
import { decideEgress } from "../../../src/policy/egress.ts";

const BUILTIN = await builtinRules();

let dir = "";

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sluice-load-test-"));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
function writeConfig(text: string): string {
  const path = join(dir, `config-${++counter}.yaml`);
  writeFileSync(path, text);
  return path;
}

function writeToken(name: string, content: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode });
  chmodSync(path, mode); // the umask may have narrowed the mode given to writeFileSync
  // Root may let its group read a secret (core/secret-file.ts): a file someone else owns may not.
  if (process.getuid?.() === 0) chownSync(path, 65534, 65534);
  return path;
}

async function loadIssues(path: string | null): Promise<{ issues: { path: string; message: string }[]; message: string }> {
  try {
    await loadConfig(path);
  } catch (err) {
    if (err instanceof ConfigError) return { issues: [...err.issues], message: err.message };
    throw err;
  }
  throw new Error(`expected ${path} to be refused`);
}

const agentWithTokenFile = (file: string) => `version: 1\nagents:\n  - name: builder\n    token_file: ${JSON.stringify(file)}\n`;

describe("the embedded default config", () => {
  test("DEFAULT_CONFIG_TEXT parses and compiles", () => {
    const config = parseConfigText(DEFAULT_CONFIG_TEXT, "embedded default");
    const policy = compilePolicy(config, { agentTokenDigests: new Map(), digest: "x", systemNameservers: [{ hostname: "127.0.0.1", port: 53 }], builtinRules: BUILTIN });
    expect(policy.mode).toBe("enforce");
    expect(config.egress.allow.length).toBeGreaterThan(0);
    expect(config.proxy.listen).toEqual({ hostname: "127.0.0.1", port: 8888 });
    expect(config.admin.listen).toEqual({ hostname: "127.0.0.1", port: 8889 });
  });

  test("loadConfig(null) uses it: registries are reachable over CONNECT 443, anything else is not", async () => {
    const loaded = await loadConfig(null);
    expect(loaded.path).toBeNull();
    expect(loaded.policy.digest).toMatch(/^[0-9a-f]{16}$/);
    const egress = loaded.policy.egress;
    for (const host of ["api.github.com", "registry.npmjs.org", "pypi.org", "api.anthropic.com"]) {
      expect(decideEgress(egress, null, { kind: "connect", host, port: 443 }).verdict).toBe("allow");
    }
    expect(decideEgress(egress, null, { kind: "connect", host: "example.com", port: 443 }).verdict).toBe("block");
    expect(decideEgress(egress, null, { kind: "connect", host: "api.github.com", port: 22 }).verdict).toBe("block");
    expect(decideEgress(egress, null, { kind: "http", host: "deb.debian.org", port: 80 }).verdict).toBe("allow");
  });
});

describe("loadConfig from a file", () => {
  test("returns the absolute path, the config and a 16-hex digest of the text", async () => {
    const text = "version: 1\nmode: audit\n";
    const a = await loadConfig(writeConfig(text));
    const b = await loadConfig(writeConfig(text));
    const c = await loadConfig(writeConfig(`${text}# changed\n`));
    expect(a.path).toStartWith(dir);
    expect(a.config.mode).toBe("audit");
    expect(a.policy.mode).toBe("audit");
    expect(a.policy.digest).toMatch(/^[0-9a-f]{16}$/);
    expect(b.policy.digest).toBe(a.policy.digest);
    expect(c.policy.digest).not.toBe(a.policy.digest);
  });

  test("a missing file is a ConfigError naming the code, not a raw exception", async () => {
    const { issues, message } = await loadIssues(join(dir, "does-not-exist.yaml"));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe("");
    expect(issues[0]!.message).toContain("ENOENT");
    expect(message).toContain("does-not-exist.yaml");
  });

  test("parse errors name the file", async () => {
    const path = writeConfig("version: 1\negress:\n  alow: []\n");
    const { issues, message } = await loadIssues(path);
    expect(issues).toEqual([{ path: "egress.alow", message: "unknown key" }]);
    expect(message).toStartWith(`${path}: `);
  });

  test("compile errors name the file", async () => {
    const path = writeConfig("version: 1\negress:\n  allow: ['bad host']\n");
    const { message } = await loadIssues(path);
    expect(message).toStartWith(`${path}: `);
    expect(message).toContain("bad host");
  });
});

describe("loadConfig: agent token files", () => {
  const TOKEN = "tok_0123456789abcdefXYZ";

  test("a 0600 token file relative to the config's directory identifies the agent; whitespace is trimmed", async () => {
    mkdirSync(join(dir, "secrets"), { recursive: true });
    writeToken("secrets/builder.token", `${TOKEN}\n`, 0o600);
    const loaded = await loadConfig(writeConfig(agentWithTokenFile("secrets/builder.token")));
    const id = loaded.policy.agents.identify(`Bearer ${TOKEN}`, "127.0.0.1");
    expect(id.agent).toEqual({ name: "builder", via: "token" });
    const basic = `Basic ${Buffer.from(`anything:${TOKEN}`).toString("base64")}`;
    expect(loaded.policy.agents.identify(basic, "127.0.0.1").agent.name).toBe("builder");
    expect(loaded.policy.agents.identify(`Bearer ${TOKEN}\n`, "127.0.0.1").agent.name).toBe("builder");
  });

  test("a 0400 token file is fine too", async () => {
    const file = writeToken("readonly.token", TOKEN, 0o400);
    const loaded = await loadConfig(writeConfig(agentWithTokenFile(file)));
    expect(loaded.policy.agents.identify(`Bearer ${TOKEN}`, "127.0.0.1").agent.via).toBe("token");
  });

  const badModes: [mode: number][] = [[0o644], [0o640], [0o604], [0o660], [0o606], [0o777]];
  test.each(badModes)("a token file with mode %o is refused with a chmod hint", async (mode) => {
    const file = writeToken(`mode-${mode.toString(8)}.token`, TOKEN, mode);
    const { issues } = await loadIssues(writeConfig(agentWithTokenFile(file)));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe("agents.0.token_file");
    expect(issues[0]!.message).toContain("chmod 600");
  });

  test("a token shorter than 16 characters is refused", async () => {
    const file = writeToken("short.token", "short-token\n", 0o600);
    const { issues } = await loadIssues(writeConfig(agentWithTokenFile(file)));
    expect(issues[0]!.path).toBe("agents.0.token_file");
    expect(issues[0]!.message).toContain("at least 16");
  });

  test("a token of 16 characters after trimming whitespace is accepted, 15 is not", async () => {
    const ok = writeToken("sixteen.token", `  ${"x".repeat(16)}  \n`, 0o600);
    expect((await loadConfig(writeConfig(agentWithTokenFile(ok)))).policy.agents.size).toBe(1);
    const short = writeToken("fifteen.token", `  ${"x".repeat(15)}  \n`, 0o600);
    expect((await loadIssues(writeConfig(agentWithTokenFile(short)))).issues[0]!.message).toContain("at least 16");
  });

  test("a missing token file is an issue at its path", async () => {
    const { issues } = await loadIssues(writeConfig(agentWithTokenFile("no-such.token")));
    expect(issues[0]!.path).toBe("agents.0.token_file");
    expect(issues[0]!.message).toContain("ENOENT");
  });

  test("every bad token file is reported at once", async () => {
    const open = writeToken("open.token", TOKEN, 0o644);
    const short = writeToken("short2.token", "abc", 0o600);
    const { issues } = await loadIssues(
      writeConfig(`version: 1
agents:
  - name: a
    token_file: ${JSON.stringify(open)}
  - name: b
    source_cidrs: [10.0.0.0/8]
  - name: c
    token_file: ${JSON.stringify(short)}
  - name: d
    token_file: missing.token
`),
    );
    expect(issues.map((i) => i.path)).toEqual(["agents.0.token_file", "agents.2.token_file", "agents.3.token_file"]);
  });
});
