/**
 * The command line of the compiled binary: version, help, exit codes, check-config, init, and
 * that files an agent may leave in the working directory (bunfig.toml, .env, package.json,
 * tsconfig.json) change nothing about what the binary does.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { BIN, tempDir } from "../helpers/sluice.ts";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function sluice(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const proc = Bun.spawn([BIN, ...args], {
    cwd: opts.cwd ?? dir,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...opts.env },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const dir = tempDir("slt-cli-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const VALID = `version: 1
proxy: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
egress:
  allow: ["api.example.com", "*.example.org"]
  deny: ["bad.example.org"]
`;

describe("version and help", () => {
  test("--version and -V print the package version and the build commit", async () => {
    for (const flag of ["--version", "-V"]) {
      const r = await sluice([flag]);
      expect(r.code).toBe(0);
      const m = /^sluice (\S+) \(commit (\S+)\)\n$/.exec(r.stdout);
      expect(m).not.toBeNull();
      expect(m![1]).toBe(pkg.version);
      // A build from git has a real commit, never the "dev" of an unbuilt run.
      expect(m![2]).not.toBe("dev");
      expect(m![2]!.length).toBeGreaterThan(0);
    }
  });

  test("--help lists the commands and exits 0", async () => {
    const r = await sluice(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: sluice <command>");
    for (const cmd of ["run", "check-config", "init"]) expect(r.stdout).toMatch(new RegExp(`^\\s+${cmd}\\s`, "m"));
  });

  test("no arguments prints help and exits 2 (usage)", async () => {
    const r = await sluice([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("Usage: sluice <command>");
  });

  test("run --help prints the run usage and does not start anything", async () => {
    const r = await sluice(["run", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: sluice run");
    expect(r.stdout).toContain("SIGHUP");
    expect(r.stderr).toBe("");
  });

  test("check-config --help and init --help", async () => {
    const a = await sluice(["check-config", "--help"]);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain("Usage: sluice check-config FILE");
    const b = await sluice(["init", "-h"]);
    expect(b.code).toBe(0);
    expect(b.stdout).toContain("Usage: sluice init");
  });

  test("an unknown command exits 2 and names the command on stderr", async () => {
    const r = await sluice(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
    expect(r.stdout).toBe("");
  });

  test("an unknown option to run is a usage error (exit 2)", async () => {
    const r = await sluice(["run", "--no-such-flag"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Usage: sluice run");
  });

  test("check-config without a file is a usage error (exit 2)", async () => {
    const r = await sluice(["check-config"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("exactly one FILE");
  });
});

describe("check-config", () => {
  test("a valid config exits 0 and says ok", async () => {
    const path = writeConfig("valid.yaml", VALID);
    const r = await sluice(["check-config", path]);
    expect(r.stdout).toStartWith(`ok: ${path}`);
    expect(r.stdout).toContain("mode enforce");
    expect(r.code).toBe(0);
  });

  test("an unknown key exits 1 with the key's path", async () => {
    const path = writeConfig("unknown-key.yaml", "version: 1\nproxy:\n  listn: 127.0.0.1:0\n");
    const r = await sluice(["check-config", path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`invalid: ${path}`);
    expect(r.stdout).toMatch(/proxy\.listn: .*unknown key/);
  });

  test("several problems are all reported, each with its path", async () => {
    const path = writeConfig("two-errors.yaml", "version: 1\negres: {}\nproxy:\n  header_timeout: soon\n");
    const r = await sluice(["check-config", path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("egres");
    expect(r.stdout).toContain("proxy.header_timeout");
  });

  test("a bad dlp section: every problem at once, with its path, never a secret", async () => {
    const path = writeConfig(
      "bad-dlp.yaml",
      `version: 1
dlp:
  actions: { dlp.githb-token: redact, "dlp.nothing-*": warn }
  disable: [dlp.nope]
  known_secrets: { env: [SLT_SURELY_UNSET_VAR], files: [does-not-exist.secret] }
  custom_rules:
    - id: dlp.custom.bad
      pattern: '(?=lookahead)x'
    - id: dlp.github-token
      pattern: 'abc'
  body: { overlap: 2MiB }
`,
    );
    const r = await sluice(["check-config", path]);
    expect(r.code).toBe(1);
    for (const key of ["dlp.known_secrets.env.0", "dlp.known_secrets.files.0", "dlp.custom_rules.0", "dlp.custom_rules.1.id", "dlp.actions.dlp.githb-token", "dlp.actions.dlp.nothing-*", "dlp.disable.0", "dlp.body.overlap"]) {
      expect(r.stdout).toContain(`  ${key}: `);
    }
  });

  test("the mcp section is checked like the others: a bad value exits 1 with its path, a good one 0", async () => {
    const bad = await sluice(["check-config", writeConfig("bad-mcp.yaml", "version: 1\nmcp: { first_contact: sometimes }\n")]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^\s+mcp\.first_contact: /m);
    const good = await sluice(["check-config", writeConfig("good-mcp.yaml", "version: 1\nmcp: { first_contact: require-approval, shadow: warn }\n")]);
    expect(good.code).toBe(0);
  });

  test("a wildcard over a public suffix (*.com) exits 1 with the path", async () => {
    const path = writeConfig("bad-pattern.yaml", 'version: 1\negress:\n  allow: ["api.example.com", "*.com"]\n');
    const r = await sluice(["check-config", path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("egress.allow");
    expect(r.stdout).toContain('"*.com"');
  });

  test("a missing file exits 1", async () => {
    const r = await sluice(["check-config", join(dir, "does-not-exist.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("cannot read");
  });

  test("invalid YAML exits 1", async () => {
    const path = writeConfig("bad-yaml.yaml", "version: 1\nproxy: [unclosed\n");
    const r = await sluice(["check-config", path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("invalid:");
  });

  test("run with an invalid config exits 1 without listening", async () => {
    const path = writeConfig("run-invalid.yaml", "version: 1\nproxy:\n  listn: 127.0.0.1:0\n");
    const r = await sluice(["run", "--config", path, "--log-format", "json"], { env: { SLUICE_HOME: join(dir, "home-invalid") } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("invalid config");
    expect(r.stderr).toContain("proxy.listn");
    expect(r.stderr).not.toContain("sluice ready");
  });
});

describe("init", () => {
  test("prints a config that check-config accepts", async () => {
    const r = await sluice(["init"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("version: 1");
    const path = writeConfig("from-init.yaml", r.stdout);
    const c = await sluice(["check-config", path]);
    expect(c.stdout).toStartWith("ok:");
    expect(c.code).toBe(0);
  });

  test("init takes no arguments (exit 2)", async () => {
    const r = await sluice(["init", "extra"]);
    expect(r.code).toBe(2);
  });
});

describe("stray files in the working directory change nothing", () => {
  test("bunfig.toml preload, .env, package.json and tsconfig.json are ignored", async () => {
    const clean = join(dir, "clean-cwd");
    const hostile = join(dir, "hostile-cwd");
    mkdirSync(clean);
    mkdirSync(hostile);
    const marker = join(dir, "preload-ran");
    // Each of these would visibly change behaviour if the binary loaded it.
    writeFileSync(
      join(hostile, "evil-preload.ts"),
      `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "ran");\nconsole.log("PRELOADED");\nprocess.exit(42);\n`,
    );
    writeFileSync(join(hostile, "bunfig.toml"), 'preload = ["./evil-preload.ts"]\n[run]\npreload = ["./evil-preload.ts"]\n');
    writeFileSync(join(hostile, ".env"), "SLUICE_CONFIG=/nonexistent/sluice.yaml\nSLUICE_LOG_LEVEL=bogus\nNODE_OPTIONS=--require ./evil-preload.ts\n");
    writeFileSync(join(hostile, "package.json"), JSON.stringify({ name: "evil", version: "6.6.6", type: "commonjs", imports: { "#x": "./evil-preload.ts" } }));
    writeFileSync(join(hostile, "tsconfig.json"), JSON.stringify({ compilerOptions: { paths: { "yaml": ["./evil-preload.ts"], "zod": ["./evil-preload.ts"] } } }));
    const config = writeConfig("stray-files.yaml", VALID);
    for (const args of [["--version"], ["check-config", config], ["init"], ["check-config", join(dir, "does-not-exist.yaml")]]) {
      const a = await sluice(args, { cwd: clean });
      const b = await sluice(args, { cwd: hostile });
      expect({ args, code: b.code, stdout: b.stdout, stderr: b.stderr }).toEqual({ args, code: a.code, stdout: a.stdout, stderr: a.stderr });
      expect(b.stdout).not.toContain("PRELOADED");
      expect(b.stdout).not.toContain("6.6.6");
    }
    expect(await Bun.file(marker).exists()).toBe(false);
    // Control: the same directory does hijack a plain `bun` run, so the files above are live.
    writeFileSync(join(hostile, "main.ts"), 'console.log("main");\n');
    const control = Bun.spawn([process.execPath, "main.ts"], { cwd: hostile, stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    const controlOut = await new Response(control.stdout).text();
    expect(await control.exited).toBe(42);
    expect(controlOut).toContain("PRELOADED");
  });

  /** Reads a starting sluice's stderr up to its ready line (or its exit): no sleeps. */
  const untilReady = async (stderr: ReadableStream<Uint8Array>) => {
    const reader = stderr.getReader();
    let text = "";
    while (!text.includes("sluice ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    expect(text).toContain("sluice ready");
    return { text, ready: JSON.parse(text.split("\n").find((l) => l.includes("sluice ready"))!) as Record<string, string> };
  };

  test("run from a hostile cwd starts with the given config, not the .env one", async () => {
    const hostile = join(dir, "hostile-cwd");
    const config = writeConfig("stray-run.yaml", VALID);
    const proc = Bun.spawn([BIN, "run", "--config", config, "--log-format", "json"], {
      cwd: hostile,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home-stray") },
    });
    try {
      const { text, ready } = await untilReady(proc.stderr);
      expect(ready.config).toBe(config);
      expect(text).not.toContain("PRELOADED");
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  }, 30_000);

  test("admin.token_file is relative to the config file, not to the working directory", async () => {
    const confDir = join(dir, "conf-with-token");
    mkdirSync(confDir, { recursive: true });
    writeFileSync(join(confDir, "admin.tok"), "relative-admin-token-0123456789\n", { mode: 0o600 });
    const config = join(confDir, "sluice.yaml");
    writeFileSync(config, `${VALID}admin: { listen: "127.0.0.1:0", token_file: admin.tok }\ndns: { listen: "off", upstreams: ["127.0.0.1:9"] }\n`.replace('admin: { listen: "127.0.0.1:0" }\n', ""));
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere, { recursive: true });
    const proc = Bun.spawn([BIN, "run", "--config", config, "--log-format", "json"], { cwd: elsewhere, stdin: "ignore", stdout: "ignore", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home-token") } });
    try {
      const { ready } = await untilReady(proc.stderr);
      expect(ready.admin_auth_file).toBe(join(confDir, "admin.tok"));
      const res = await fetch(`http://${ready.admin}/v1/killswitch`, { headers: { authorization: "Bearer relative-admin-token-0123456789" } });
      expect(res.status).toBe(200);
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  }, 30_000);
});
