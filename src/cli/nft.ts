/**
 * `sluice nft render|apply --host (--uid USER | --cgroup PATH) [--config FILE]` and `sluice nft
 * remove`: host mode, for machines where the agent runs as a user of its own (or in a cgroup of
 * its own, such as a systemd slice) rather than in a jail. One nftables table (`inet sluice_host`,
 * nftables/host.nft) sends that agent's DNS to sluice's resolver and its TCP to the transparent
 * listener, and refuses the rest it sends; nothing else is touched.
 * The ports come from the config sluice runs with: proxy.listen, proxy.transparent_listen and
 * dns.listen, all on 127.0.0.1 (the redirect goes to the host itself).
 */
import { existsSync } from "node:fs";
import { release } from "node:os";
import { parseArgs } from "node:util";
import { readConfig } from "../config/load.ts";
import { ConfigError } from "../core/errors.ts";
import { HOST_MODE_TABLE, normaliseCgroupPath, renderHostModeRules, type HostModeAgent } from "../jail/render.ts";
import { configPath } from "./paths.ts";
import { EXIT, UsageError } from "./usage.ts";

export const HELP = `Usage: sluice nft render --host (--uid USER | --cgroup PATH) [--config FILE]
       sluice nft apply --host (--uid USER | --cgroup PATH) [--config FILE]
       sluice nft remove

Host mode: the traffic of USER (or of the processes in cgroup v2 PATH and below it, e.g.
agents.slice) goes through the sluice running with FILE's config on this host.
render  prints the nftables table (inet ${HOST_MODE_TABLE}): the agent's DNS (53, any server)
        to sluice's resolver (dns.listen), its TCP to sluice's transparent listener
        (proxy.transparent_listen) or, as addressed, to its proxy (proxy.listen); everything
        else it sends (other UDP, ICMP, IPv6) refused. Other users and cgroups, sluice's
        included, are not touched. The three listeners must be on 127.0.0.1.
apply   installs it (replacing an earlier one); root. A cgroup must exist when it is applied
        (nftables matches the cgroup's id, which a cgroup made again does not keep).
remove  deletes the table; root.

Exit status: 0 ok, 1 failure (invalid config, nft refused), 2 usage error.`;

function uidOf(user: string): number {
  if (/^\d+$/.test(user)) return Number(user);
  const line = Bun.spawnSync(["getent", "passwd", user], { stdout: "pipe", stderr: "ignore" }).stdout.toString().trim();
  const uid = Number(line.split(":")[2]);
  if (!line || !Number.isInteger(uid)) throw new UsageError(`no such user: ${user}`);
  return uid;
}

/** Where this host's cgroup v2 hierarchy is: /sys/fs/cgroup (unified), /sys/fs/cgroup/unified beside v1 (hybrid), or nowhere. */
function cgroupLayout(): "unified" | "hybrid" | null {
  if (existsSync("/sys/fs/cgroup/cgroup.controllers")) return "unified";
  return existsSync("/sys/fs/cgroup/unified/cgroup.controllers") ? "hybrid" : null;
}

/**
 * Runs nft. `hybrid`: the input names a cgroup v2 path, which nft looks up under /sys/fs/cgroup,
 * on a host where v1 is there and v2 at /sys/fs/cgroup/unified: nft then runs in a mount
 * namespace of its own with the v2 hierarchy bound over /sys/fs/cgroup.
 */
function nft(input: string | null, args: string[], hybrid = false): { ok: boolean; err: string } {
  let argv = ["nft", ...args];
  if (hybrid) argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && exec "$@"', "sh", ...argv];
  const r = Bun.spawnSync(argv, { stdin: input === null ? "ignore" : Buffer.from(input), stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, err: r.stderr.toString().trim() };
}

export async function nftCommand(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({ args: rest, options: { host: { type: "boolean", default: false }, uid: { type: "string" }, cgroup: { type: "string" }, config: { type: "string", short: "c" } }, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (sub === "remove") {
    const r = nft(null, ["delete", "table", "inet", HOST_MODE_TABLE]);
    if (!r.ok && !/No such file or directory/.test(r.err)) {
      err(`sluice nft remove: ${r.err}\n`);
      return EXIT.failure;
    }
    out(r.ok ? `removed table inet ${HOST_MODE_TABLE}\n` : `no table inet ${HOST_MODE_TABLE}\n`);
    return EXIT.ok;
  }
  if (sub !== "render" && sub !== "apply") throw new UsageError(sub === undefined ? "nft needs a subcommand: render, apply or remove" : `unknown nft subcommand '${sub}'`);
  if (!values.host) throw new UsageError(`nft ${sub} needs --host (the only mode so far; sluice jail draws its own rules)`);
  if ((values.uid === undefined) === (values.cgroup === undefined)) throw new UsageError(`nft ${sub} --host needs --uid USER or --cgroup PATH (whose traffic goes through sluice), one of them`);
  let agent: HostModeAgent;
  let whose: string;
  if (values.uid !== undefined) {
    const uid = uidOf(values.uid);
    if (uid === 0) throw new UsageError("host mode never redirects root (sluice itself may run as root)");
    agent = { uid };
    whose = `uid ${uid}`;
  } else {
    const path = normaliseCgroupPath(values.cgroup!);
    if (path === null) throw new UsageError(`--cgroup ${values.cgroup}: not a cgroup v2 path (e.g. agents.slice)`);
    // nftables matches the cgroup's id, and systemd makes a unit's cgroup anew at each start: a
    // service's rule would match nothing after its first restart. Its slice stays.
    // Any component: a slice below a service (user@1000.service/app.slice/...) goes when the service restarts.
    if (path.split("/").some((c) => /\.(?:service|scope)$/.test(c))) throw new UsageError(`--cgroup ${path}: systemd makes a service's or scope's cgroup (and everything below it) anew each time it starts, and the rule would match nothing after a restart; give a slice outside any service (e.g. agents.slice)`);
    agent = { cgroup: path };
    whose = `cgroup ${path}`;
  }
  let text: string;
  try {
    const config = await readConfig(configPath(values.config));
    const t = config.proxy.transparent_listen;
    const d = config.dns.listen;
    const p = config.proxy.listen;
    const problems: string[] = [];
    if (t === undefined) problems.push("proxy.transparent_listen is not set");
    if (d === "off") problems.push("dns.listen is off");
    for (const [name, l] of [["proxy.listen", p], ["proxy.transparent_listen", t], ["dns.listen", d === "off" ? undefined : d]] as const) {
      if (l !== undefined && (l.hostname !== "127.0.0.1" || l.port === 0)) problems.push(`${name} must be 127.0.0.1 and a fixed port for host mode (is ${l.hostname}:${l.port})`);
    }
    if (problems.length > 0 || t === undefined || d === "off") {
      err(`sluice nft ${sub}: the config cannot be used for host mode:\n${problems.map((x) => `  ${x}`).join("\n")}\n`);
      return EXIT.failure;
    }
    text = renderHostModeRules({ ...agent, proxyPort: p.port, transparentPort: t.port, dnsPort: d.port });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(`sluice nft ${sub}: invalid config: ${e.message}\n`);
    return EXIT.failure;
  }
  if (sub === "render") {
    out(text);
    return EXIT.ok;
  }
  const layout = "cgroup" in agent ? cgroupLayout() : "unified";
  if (layout === null) {
    err("sluice nft apply: no cgroup v2 hierarchy at /sys/fs/cgroup (or /sys/fs/cgroup/unified): --cgroup needs one\n");
    return EXIT.failure;
  }
  // Replaced whole, in one transaction: the old table (if any) goes in the same nft run.
  const r = nft(`table inet ${HOST_MODE_TABLE}\ndelete table inet ${HOST_MODE_TABLE}\n${text}`, ["-f", "-"], layout === "hybrid");
  if (!r.ok) {
    err(`sluice nft apply: ${r.err}\n`);
    return EXIT.failure;
  }
  out(`applied table inet ${HOST_MODE_TABLE}: ${whose} through sluice\n`);
  if ("cgroup" in agent) err(`sluice nft apply: note: the rule holds cgroup ${agent.cgroup}'s current id; if that cgroup is removed and made again, apply again\n`);
  // Linux before 5.15 turns cgroup v2 socket matching off for good once the v1 net_cls or
  // net_prio controller is used, which hybrid hosts may do: the rule would then match nothing.
  if (layout === "hybrid") err(`sluice nft apply: warning: this host mixes cgroup v1 and v2; on Linux before 5.15 (this is ${release()}), using the v1 net_cls or net_prio controller turns cgroup v2 socket matching off and the rule would match nothing: prefer --uid there\n`);
  return EXIT.ok;
}
