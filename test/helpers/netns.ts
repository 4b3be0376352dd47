/**
 * Network namespaces for tests whose target is an address that must never be reached for real
 * (private, metadata, CGNAT, ULA; or a name that would be sent to the system's DNS server).
 * The namespace has only a loopback interface, so even a sluice regression that dials such an
 * address cannot send a packet off the machine (ARCHITECTURE.md, "Testing", network rule).
 *
 * Names are `slt-<random>`; `/etc/netns/<name>/resolv.conf` points at 127.0.0.1 inside the
 * namespace (`ip netns exec` bind-mounts it), so DNS stays on the namespace's loopback too.
 * Everything created is removed by `destroy()`, and on process exit if a test forgot.
 */
import { existsSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { BIN, tempDir } from "./sluice.ts";

export interface NetnsSupport {
  readonly ok: boolean;
  /** Why namespaces cannot be used here (empty when ok). */
  readonly reason: string;
}

let support: NetnsSupport | null = null;

/** Whether this process can create network namespaces (root and `ip`), probed once. */
export function netnsSupport(): NetnsSupport {
  if (support) return support;
  if (process.platform !== "linux") support = { ok: false, reason: "network namespaces need Linux" };
  else if (process.getuid?.() !== 0) support = { ok: false, reason: "network namespace tests need root (CI runs them as root)" };
  else if (!Bun.which("ip")) support = { ok: false, reason: "the `ip` command (iproute2) is not installed" };
  else {
    const name = `slt-probe-${randomSuffix()}`;
    const add = Bun.spawnSync(["ip", "netns", "add", name], { stdout: "pipe", stderr: "pipe" });
    if (add.exitCode !== 0) support = { ok: false, reason: `ip netns add failed: ${add.stderr.toString().trim()}` };
    else {
      Bun.spawnSync(["ip", "netns", "del", name]);
      support = { ok: true, reason: "" };
    }
  }
  return support;
}

function randomSuffix(): string {
  return crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36);
}

export interface ExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Netns {
  readonly name: string;
  /** argv prefix that runs a command inside the namespace. */
  readonly prefix: string[];
  exec(argv: string[], opts?: { env?: Record<string, string> }): Promise<ExecResult>;
  destroy(): void;
}

const live = new Set<string>();
let createdEtcNetns = false;

function removeNamespace(name: string): void {
  Bun.spawnSync(["ip", "netns", "del", name], { stdout: "ignore", stderr: "ignore" });
  rmSync(join("/etc/netns", name), { recursive: true, force: true });
  live.delete(name);
  if (live.size === 0 && createdEtcNetns) {
    try {
      rmdirSync("/etc/netns");
      createdEtcNetns = false;
    } catch {
      // Someone else put something there since: not ours to remove.
    }
  }
}

process.on("exit", () => {
  for (const name of [...live]) removeNamespace(name);
});

/**
 * Creates `slt-<random>` with loopback up and a resolv.conf pointing at its own loopback.
 * `hosts` adds names to the namespace's /etc/hosts (name -> address), so a test can make a name
 * resolve to a private address with no DNS server at all.
 */
export function createNetns(opts: { hosts?: Record<string, string> } = {}): Netns {
  const name = `slt-${randomSuffix()}`;
  const add = Bun.spawnSync(["ip", "netns", "add", name], { stdout: "pipe", stderr: "pipe" });
  if (add.exitCode !== 0) throw new Error(`ip netns add ${name}: ${add.stderr.toString()}`);
  live.add(name);
  try {
    const up = Bun.spawnSync(["ip", "-n", name, "link", "set", "lo", "up"], { stdout: "pipe", stderr: "pipe" });
    if (up.exitCode !== 0) throw new Error(`ip -n ${name} link set lo up: ${up.stderr.toString()}`);
    if (!existsSync("/etc/netns")) {
      mkdirSync("/etc/netns");
      createdEtcNetns = true;
    }
    mkdirSync(join("/etc/netns", name));
    writeFileSync(join("/etc/netns", name, "resolv.conf"), "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    if (opts.hosts) {
      const extra = Object.entries(opts.hosts).map(([host, ip]) => `${ip} ${host}`).join("\n");
      writeFileSync(join("/etc/netns", name, "hosts"), `127.0.0.1 localhost\n::1 localhost ip6-localhost\n${extra}\n`);
    }
    const links = Bun.spawnSync(["ip", "-n", name, "-o", "link", "show"], { stdout: "pipe" }).stdout.toString().trim().split("\n");
    if (links.length !== 1 || !links[0]!.includes(" lo:")) throw new Error(`namespace ${name} has more than loopback: ${links.join(" | ")}`);
  } catch (err) {
    removeNamespace(name);
    throw err;
  }
  const prefix = ["ip", "netns", "exec", name];
  return {
    name,
    prefix,
    async exec(argv, opts = {}) {
      const proc = Bun.spawn([...prefix, ...argv], {
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...opts.env },
      });
      const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { exitCode, stdout, stderr };
    },
    destroy: () => removeNamespace(name),
  };
}

export interface NetnsSluice {
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  readonly proxyPort: number;
  readonly adminPort: number;
  /** As seen from inside the namespace. */
  readonly proxyUrl: string;
  readonly lines: Record<string, unknown>[];
  records(): Record<string, unknown>[];
  waitForLine(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<number>;
}

/**
 * Runs dist/sluice inside `ns` on a config written to a temp dir; same ready-line logic as
 * startSluice (test/helpers/sluice.ts): resolves once "sluice ready" is printed.
 */
export async function startSluiceInNetns(ns: Netns, configYaml: string): Promise<NetnsSluice> {
  const dir = tempDir("slt-netns-");
  const configPath = join(dir, "sluice.yaml");
  writeFileSync(configPath, configYaml);
  const proc = Bun.spawn([...ns.prefix, BIN, "run", "--config", configPath, "--log-format", "json"], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home") },
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
        for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.pred(line)) waiters.splice(i, 1)[0]!.resolve(line);
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
    proc.exited.then((code) => {
      throw new Error(`sluice (in ${ns.name}) exited with ${code} before ready:\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
    }),
  ]);
  const port = (s: unknown) => Number(String(s).split(":").pop());
  const proxyPort = port(ready.proxy);
  return {
    proc,
    proxyPort,
    adminPort: port(ready.admin),
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    lines,
    records: () => lines.filter((l) => l.kind === "http" || l.kind === "connect"),
    waitForLine,
    async stop() {
      if (!exited) proc.kill("SIGTERM");
      const code = await proc.exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
