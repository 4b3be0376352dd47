/**
 * The jail's network, driven through `ip` and `nft`: a namespace `sluice-<id>` joined to the
 * root namespace by a veth pair on a /30 of the subnet pool; in the root namespace an nftables
 * table `sluice_<id>` that hands all of the jail's traffic to sluice (nftables/jail-host.nft);
 * in the namespace a table that fails other UDP, DoT and IPv6 fast (nftables/jail-ns.nft), IPv6
 * switched off, a default route via the root side, and /etc/netns/sluice-<id>/resolv.conf naming
 * sluice. Everything is named sluice-/sluice_/sl<id>, and teardown and cleanup only ever touch
 * such names.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderHostRules, renderNamespaceRules } from "./render.ts";

export interface JailPlan {
  readonly id: string;
  readonly netns: string;
  readonly table: string;
  readonly vethHost: string;
  readonly vethJail: string;
  readonly hostIp: string;
  readonly jailIp: string;
}

export class JailError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JailError";
  }
}

const NETNS_ETC = "/etc/netns";
/** One file per live jail, holding the pid of the `sluice jail` that owns it: cleanup spares those. */
const JAIL_PIDS = "/run/sluice/jails";
const OURS_NETNS = /^sluice-[0-9a-f]{6}$/;
const OURS_TABLE = /^sluice_[0-9a-f]{6}$/;
const OURS_LINK = /^sl[0-9a-f]{6}h$/;

/** Runs a command; throws JailError with its stderr when it fails. */
function run(argv: readonly string[], input?: string): string {
  const r = Bun.spawnSync([...argv], { stdin: input === undefined ? "ignore" : Buffer.from(input), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new JailError(`${argv.join(" ")}: ${r.stderr.toString().trim() || `exit ${r.exitCode}`}`);
  return r.stdout.toString();
}

function tryRun(argv: readonly string[]): boolean {
  return Bun.spawnSync([...argv], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
}

/** IPv4 addresses in use on this host's interfaces (`ip -4 -o addr`), as numbers. */
function addressesInUse(): Set<number> {
  const out = new Set<number>();
  for (const m of run(["ip", "-4", "-o", "addr", "show"]).matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)) out.add(ipToInt(m[1]!));
  return out;
}

const ipToInt = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");

/** A fresh id and a /30 of `pool` (a.b.c.d/len, len <= 30) that no interface uses. */
export function planJail(pool: string): JailPlan {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(pool);
  const len = m ? Number(m[2]) : NaN;
  if (!m || !(len >= 8 && len <= 30)) throw new JailError(`jail subnet pool ${JSON.stringify(pool)} is not an IPv4 CIDR of /8 to /30`);
  const base = (ipToInt(m[1]!) >>> 0) & (len === 0 ? 0 : (~0 << (32 - len)) >>> 0);
  const blocks = 2 ** (30 - len);
  const used = addressesInUse();
  for (let attempt = 0; attempt < 64; attempt++) {
    const block = base + 4 * Math.floor(Math.random() * blocks);
    if (used.has(block + 1) || used.has(block + 2)) continue;
    const id = randomBytes(3).toString("hex");
    if (existsSync(`/run/netns/sluice-${id}`)) continue;
    return { id, netns: `sluice-${id}`, table: `sluice_${id}`, vethHost: `sl${id}h`, vethJail: `sl${id}j`, hostIp: intToIp(block + 1), jailIp: intToIp(block + 2) };
  }
  throw new JailError(`no free /30 left in the jail subnet pool ${pool}`);
}

/** The namespace and the veth pair, its host side up with its address (configureJailNamespace does the inside). */
export function createJailNetwork(p: JailPlan): void {
  mkdirSync(JAIL_PIDS, { recursive: true, mode: 0o700 });
  writeFileSync(join(JAIL_PIDS, p.id), `${process.pid}\n`, { mode: 0o600 });
  // One ip process for all of it (`-batch` stops at the first command that fails).
  run(["ip", "-batch", "-"], [`netns add ${p.netns}`, `link add ${p.vethHost} type veth peer name ${p.vethJail}`, `link set ${p.vethJail} netns ${p.netns}`, `addr add ${p.hostIp}/30 dev ${p.vethHost}`, `link set ${p.vethHost} up`, ""].join("\n"));
}

/**
 * The inside of the namespace createJailNetwork made: its address, route, filter, resolv.conf.
 * Apart so it can run while sluice starts (sluice needs only the host side's address to bind).
 */
export function configureJailNamespace(p: JailPlan): void {
  const inNs = ["ip", "netns", "exec", p.netns];
  // No IPv6 at all inside: nothing to leak through, and clients fall back to IPv4 at once.
  run([...inNs, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
  run(["ip", "-n", p.netns, "-batch", "-"], [`addr add ${p.jailIp}/30 dev ${p.vethJail}`, `link set ${p.vethJail} up`, "link set lo up", `route add default via ${p.hostIp}`, ""].join("\n"));
  run([...inNs, "nft", "-f", "-"], renderNamespaceRules({ table: p.table }));
  // `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
  mkdirSync(join(NETNS_ETC, p.netns), { recursive: true });
  writeFileSync(join(NETNS_ETC, p.netns, "resolv.conf"), `# sluice jail ${p.id}: sluice is the resolver\nnameserver ${p.hostIp}\noptions edns0\n`);
  // Names are resolved by DNS through resolv.conf, not by a resolver in the root namespace over a
  // UNIX socket (nss-resolve to systemd-resolved, mdns, myhostname ...): the host's nsswitch.conf
  // with its hosts line set to `files dns` (ip netns exec bind-mounts it over /etc/nsswitch.conf).
  const nss = existsSync("/etc/nsswitch.conf") ? readFileSync("/etc/nsswitch.conf", "utf8") : "";
  const hosts = "hosts: files dns";
  writeFileSync(join(NETNS_ETC, p.netns, "nsswitch.conf"), /^hosts:.*$/m.test(nss) ? nss.replace(/^hosts:.*$/m, hosts) : `${nss.trimEnd()}\n${hosts}\n`);
}

/**
 * The root namespace's table, once sluice listens (its ports). `attach`: that sluice listens on
 * 127.0.0.1 (sluice jail --attach), reached by DNAT, which needs route_localnet on the veth.
 */
export function applyHostRules(p: JailPlan, ports: { proxy: number; transparent: number; dns: number }, attach = false): void {
  if (attach) run(["sysctl", "-q", "-w", `net.ipv4.conf.${p.vethHost}.route_localnet=1`]);
  run(["nft", "-f", "-"], renderHostRules({ table: p.table, vethHost: p.vethHost, hostIp: p.hostIp, proxyPort: ports.proxy, transparentPort: ports.transparent, dnsPort: ports.dns }, attach));
}

/** Runs a command without blocking; settles true when it succeeded, false when it failed or could not start. */
async function tryRunAsync(argv: readonly string[]): Promise<boolean> {
  try {
    return (await Bun.spawn([...argv], { stdin: "ignore", stdout: "ignore", stderr: "ignore" }).exited) === 0;
  } catch {
    return false;
  }
}

/**
 * Cuts the jail off: its veth goes (both ends), so nothing more leaves the namespace. The first
 * step of a teardown, and safe while sluice still runs (it reads the table's counters as it stops).
 * True when the veth is gone (removed now, or never made).
 */
export async function unplugJail(p: Pick<JailPlan, "vethHost">): Promise<boolean> {
  return (await tryRunAsync(["ip", "link", "del", p.vethHost])) || !(await tryRunAsync(["ip", "link", "show", "dev", p.vethHost]));
}

/**
 * Removes what createJailNetwork and applyHostRules made, once unplugJail has run (the cable
 * before the filter: the veth is never up without the table's drop rules); the table and the
 * namespace at once. Whatever is already gone is skipped.
 */
export async function removeJailNetwork(p: Pick<JailPlan, "netns" | "table">): Promise<void> {
  await Promise.all([tryRunAsync(["nft", "delete", "table", "inet", p.table]), tryRunAsync(["ip", "netns", "del", p.netns])]);
  rmSync(join(NETNS_ETC, p.netns), { recursive: true, force: true });
  rmSync(join(JAIL_PIDS, p.netns.slice("sluice-".length)), { force: true });
}

/** Whether the jail with this id belongs to a `sluice jail` still running. */
function live(id: string): boolean {
  try {
    const pid = Number.parseInt(readFileSync(join(JAIL_PIDS, id), "utf8"), 10);
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** `sluice jail --cleanup`: leftovers of jails whose process died, by their names only. Returns what went. */
export function cleanupJails(): string[] {
  const gone: string[] = [];
  const idOf = (name: string) => name.slice(-6);
  // The cable first (a namespace some process still holds keeps its veth), then the rest: a veth
  // is never left up without its table's drop rules.
  for (const m of run(["ip", "-o", "link", "show"]).matchAll(/^\d+: ([^:@]+)[@:]/gm)) {
    if (OURS_LINK.test(m[1]!) && !live(m[1]!.slice(2, 8)) && tryRun(["ip", "link", "del", m[1]!])) gone.push(`link ${m[1]}`);
  }
  for (const line of run(["ip", "netns", "list"]).split("\n")) {
    const name = line.split(" ")[0] ?? "";
    if (OURS_NETNS.test(name) && !live(idOf(name)) && tryRun(["ip", "netns", "del", name])) gone.push(`netns ${name}`);
  }
  for (const m of run(["nft", "list", "tables"]).matchAll(/^table inet (\S+)$/gm)) {
    if (OURS_TABLE.test(m[1]!) && !live(idOf(m[1]!)) && tryRun(["nft", "delete", "table", "inet", m[1]!])) gone.push(`nft table inet ${m[1]}`);
  }
  if (existsSync(NETNS_ETC)) {
    for (const d of readdirSync(NETNS_ETC)) {
      if (!OURS_NETNS.test(d) || live(idOf(d))) continue;
      rmSync(join(NETNS_ETC, d), { recursive: true, force: true });
      gone.push(`${NETNS_ETC}/${d}`);
    }
  }
  // The CA copies sluice jail leaves for the jailed user (cli/jail.ts).
  for (const d of readdirSync("/run")) {
    const m = /^sluice-jail-([0-9a-f]{6})$/.exec(d);
    if (m && !live(m[1]!)) {
      rmSync(join("/run", d), { recursive: true, force: true });
      gone.push(`/run/${d}`);
    }
  }
  if (existsSync(JAIL_PIDS)) for (const id of readdirSync(JAIL_PIDS)) if (/^[0-9a-f]{6}$/.test(id) && !live(id)) rmSync(join(JAIL_PIDS, id), { force: true });
  return gone;
}
