/**
 * Starts dist/sluice on a config written to a temp dir, waits for its "sluice ready" line (never
 * a sleep), and collects every JSON line it prints: log lines and decision records.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const ROOT = resolve(import.meta.dir, "../..");
export const BIN = join(ROOT, "dist/sluice");

export interface Running {
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  readonly proxyPort: number;
  readonly adminPort: number;
  readonly proxyUrl: string;
  readonly adminUrl: string;
  readonly home: string;
  readonly configPath: string;
  readonly adminToken: string;
  /** Every JSON line printed so far (logs and records). */
  readonly lines: Record<string, unknown>[];
  /** Decision records (kind http/connect) so far. */
  records(): Record<string, unknown>[];
  /** Resolves with the first line (seen so far or later) matching the predicate. */
  waitForLine(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<number>;
}

export const BASE_TEST_CONFIG = `version: 1
proxy: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
`;

export function tempDir(prefix = "sluice-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A config without a `dns:` section gets a DNS server on a free port whose only upstream is a
 * dead loopback port: no test sluice ever sends a query to the machine's real resolver
 * (ARCHITECTURE.md network rule). Tests that need answers run the fake upstream (fake-dns.ts).
 */
export function withTestDns(yaml: string): string {
  return /^dns:/m.test(yaml) ? yaml : `${yaml.trimEnd()}\ndns: { listen: "127.0.0.1:0", upstreams: ["127.0.0.1:9"] }\n`;
}

export interface Launched extends Omit<Running, "adminToken"> {}

/**
 * Spawns dist/sluice on `configYaml` (written into `dir`), optionally behind a command prefix
 * (`ip netns exec NS`), collects its JSON lines and resolves once it prints "sluice ready".
 */
export async function launchSluice(opts: {
  configYaml: string;
  dir?: string;
  prefix?: string[];
  env?: Record<string, string>;
  args?: string[];
  /** Said in errors: where it ran. */
  label?: string;
}): Promise<Launched> {
  const dir = opts.dir ?? tempDir();
  const configPath = join(dir, "sluice.yaml");
  writeFileSync(configPath, withTestDns(opts.configYaml));
  const home = join(dir, "home");
  const proc = Bun.spawn([...(opts.prefix ?? []), BIN, "run", "--config", configPath, "--log-format", "json", ...(opts.args ?? [])], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: home, ...opts.env },
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let exited = false;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const text = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          line = { raw: text };
        }
        lines.push(line);
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.pred(line)) waiters.splice(i, 1)[0]!.resolve(line);
        }
      }
    }
  };
  void pump(proc.stderr);
  void pump(proc.stdout);
  void proc.exited.then(() => (exited = true));

  const waitForLine = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((res, rej) => {
      const timer = setTimeout(() => {
        rej(new Error(`timed out waiting for a line; exited=${exited}; last lines:\n${lines.slice(-10).map((l) => JSON.stringify(l)).join("\n")}`));
      }, timeoutMs);
      waiters.push({ pred, resolve: (l) => (clearTimeout(timer), res(l)) });
    });
  };

  const ready = await Promise.race([
    waitForLine((l) => l.msg === "sluice ready"),
    proc.exited.then(async (code) => {
      await Bun.sleep(50);
      throw new Error(`sluice${opts.label ? ` (${opts.label})` : ""} exited with ${code} before ready:\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
    }),
  ]);
  const port = (s: unknown) => Number(String(s).split(":").pop());
  const proxyPort = port(ready.proxy);
  const adminPort = port(ready.admin);
  return {
    proc,
    proxyPort,
    adminPort,
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    home,
    configPath,
    lines,
    records: () => lines.filter((l) => l.kind === "http" || l.kind === "connect"),
    waitForLine,
    async stop() {
      if (!exited) proc.kill("SIGTERM");
      return proc.exited;
    },
  };
}

export async function startSluice(configYaml: string, opts: { env?: Record<string, string>; args?: string[]; dir?: string } = {}): Promise<Running> {
  const launched = await launchSluice({ configYaml, ...opts });
  const adminToken = (await Bun.file(join(launched.home, "admin.token")).text()).trim();
  return { ...launched, adminToken };
}

/** Writes a new config over the running one (for hot-reload tests). */
export function rewriteConfig(r: Running, yaml: string): void {
  writeFileSync(r.configPath, withTestDns(yaml));
}
