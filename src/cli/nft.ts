/**
 * `sluice nft render|apply --host --uid USER [--config FILE]` and `sluice nft remove`: host mode,
 * for machines where the agent runs as a user of its own rather than in a jail. One nftables
 * table (`inet sluice_host`, nftables/host.nft) sends that user's DNS to sluice's resolver and
 * its TCP to the transparent listener, and refuses the rest it sends; nothing else is touched.
 * The ports come from the config sluice runs with: proxy.listen, proxy.transparent_listen and
 * dns.listen, all on 127.0.0.1 (the redirect goes to the host itself).
 */
import { parseArgs } from "node:util";
import { readConfig } from "../config/load.ts";
import { ConfigError } from "../core/errors.ts";
import { HOST_MODE_TABLE, renderHostModeRules } from "../jail/render.ts";
import { configPath } from "./paths.ts";
import { EXIT, UsageError } from "./usage.ts";

export const HELP = `Usage: sluice nft render --host --uid USER [--config FILE]
       sluice nft apply --host --uid USER [--config FILE]
       sluice nft remove

Host mode: USER's traffic goes through the sluice running with FILE's config on this host.
render  prints the nftables table (inet ${HOST_MODE_TABLE}): USER's DNS (53, any server) to
        sluice's resolver (dns.listen), USER's TCP to sluice's transparent listener
        (proxy.transparent_listen) or, as addressed, to its proxy (proxy.listen); everything
        else USER sends (other UDP, ICMP, IPv6) refused. Other users, sluice's included, are
        not touched. The three listeners must be on 127.0.0.1.
apply   installs it (replacing an earlier one); root.
remove  deletes the table; root.

Exit status: 0 ok, 1 failure (invalid config, nft refused), 2 usage error.`;

function uidOf(user: string): number {
  if (/^\d+$/.test(user)) return Number(user);
  const line = Bun.spawnSync(["getent", "passwd", user], { stdout: "pipe", stderr: "ignore" }).stdout.toString().trim();
  const uid = Number(line.split(":")[2]);
  if (!line || !Number.isInteger(uid)) throw new UsageError(`no such user: ${user}`);
  return uid;
}

function nft(input: string | null, args: string[]): { ok: boolean; err: string } {
  const r = Bun.spawnSync(["nft", ...args], { stdin: input === null ? "ignore" : Buffer.from(input), stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, err: r.stderr.toString().trim() };
}

export async function nftCommand(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({ args: rest, options: { host: { type: "boolean", default: false }, uid: { type: "string" }, config: { type: "string", short: "c" } }, strict: true, allowPositionals: true });
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
  if (values.uid === undefined) throw new UsageError(`nft ${sub} --host needs --uid USER (the user whose traffic goes through sluice)`);
  const uid = uidOf(values.uid);
  if (uid === 0) throw new UsageError("host mode never redirects root (sluice itself may run as root)");
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
    text = renderHostModeRules({ uid, proxyPort: p.port, transparentPort: t.port, dnsPort: d.port });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(`sluice nft ${sub}: invalid config: ${e.message}\n`);
    return EXIT.failure;
  }
  if (sub === "render") {
    out(text);
    return EXIT.ok;
  }
  // Replaced whole, in one transaction: the old table (if any) goes in the same nft run.
  const r = nft(`table inet ${HOST_MODE_TABLE}\ndelete table inet ${HOST_MODE_TABLE}\n${text}`, ["-f", "-"]);
  if (!r.ok) {
    err(`sluice nft apply: ${r.err}\n`);
    return EXIT.failure;
  }
  out(`applied table inet ${HOST_MODE_TABLE}: uid ${uid} through sluice\n`);
  return EXIT.ok;
}
