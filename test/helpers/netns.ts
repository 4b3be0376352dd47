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
import { launchSluice, tempDir, type Launched } from "./sluice.ts";

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

export type NetnsSluice = Launched;

/** Runs dist/sluice inside `ns` (startSluice's launcher behind `ip netns exec`); stop() removes its temp dir. */
export async function startSluiceInNetns(ns: Netns, configYaml: string): Promise<NetnsSluice> {
  const dir = tempDir("slt-netns-");
  const launched = await launchSluice({ configYaml, dir, prefix: ns.prefix, label: `in ${ns.name}` });
  return {
    ...launched,
    async stop() {
      const code = await launched.stop();
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
