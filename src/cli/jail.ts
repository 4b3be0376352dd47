/**
 * `sluice jail [--config FILE] [--user USER] [--env K=V ...] [--subnet-pool CIDR] -- CMD ARGS...`:
 * runs CMD in a network namespace whose only way out is a sluice started for it
 * (src/jail/network.ts draws the network; README "Self-hosted enforcement"). And
 * `sluice jail --cleanup`: removes what crashed jails left behind.
 *
 * Order: the namespace and veth first (sluice listens on the veth's root-side address), then
 * `sluice run` with an overlay (its proxy, transparent listener and resolver on that address, the
 * jail's address as an agent of its own), then the root namespace's nftables table with the
 * ports sluice got, then CMD as the unprivileged user, with no-new-privileges. When CMD ends (or
 * the jail is interrupted) sluice is stopped and everything is removed; the exit status is CMD's.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { applyHostRules, cleanupJails, configureJailNamespace, createJailNetwork, JailError, planJail, removeJailNetwork, unplugJail, type JailPlan } from "../jail/network.ts";
import { DEFAULT_CONFIG_TEXT } from "../config/load.ts";
import { parseConfigText } from "../config/parse.ts";
import { LABEL_INPUT_MAX } from "../config/schema.ts";
import { ConfigError } from "../core/errors.ts";
import { ADMIN_TOKEN_FILE_NAME } from "../admin/token.ts";
import { clipText } from "../scan/dlp.ts";
import { COMPILED } from "./build-info.ts";
import { CA_BUNDLE_FILE, CA_FILE } from "./ca.ts";
import { configPath, sluiceHome } from "./paths.ts";
import { EXIT, UsageError } from "./usage.ts";
import { readJailRefusals, REFUSALS, type Refusal } from "../jail/counters.ts";

export const HELP = `Usage: sluice jail [--config FILE] [--user USER] [--env K=V ...] [--subnet-pool CIDR] -- CMD [ARGS...]
       sluice jail --cleanup

Runs CMD in a network namespace (sluice-<id>) whose only way out is a sluice started for it:
its TCP goes to sluice's proxy or transparent listener, its DNS to sluice's resolver, and
nothing else leaves (no IPv6, other UDP refused, DNS over TLS refused). CMD gets HTTP_PROXY and
HTTPS_PROXY, the CA variables of sluice's TLS interception CA, and for each credential read from
an environment variable its placeholder under that name (sluice injects the value); it reaches
the same policy without the proxy variables. Needs root.

--attach URL    use the sluice already running with that admin URL (http://127.0.0.1:8889)
                instead of starting one: it needs proxy.transparent_listen and dns.listen on
                127.0.0.1; its agents name the jail by source address (e.g. an agent with
                source_cidrs: [10.200.0.0/16]); much faster to start
--user USER     who runs CMD (default: the user who ran sudo; root only when named)
--env K=V       an extra environment variable for CMD (repeatable)
--subnet-pool   where the jail's /30 comes from (default 10.200.0.0/16)
--cleanup       remove the namespaces, nftables tables and links of jails whose sluice jail is
                gone (only sluice-/sluice_ names)

Exit status: CMD's; 1 if the jail could not be set up; 2 usage error.`;

const SELF = COMPILED ? [process.execPath] : [process.execPath, Bun.main];
const READY_MS = 30_000;

interface Target {
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
  readonly home: string;
}

/** uid, gid, name and home of a user (getent passwd). */
function userOf(name: string): Target {
  const line = Bun.spawnSync(["getent", "passwd", name], { stdout: "pipe", stderr: "ignore" }).stdout.toString().trim();
  const f = line.split(":");
  if (f.length < 7) throw new UsageError(`no such user: ${name}`);
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

export async function jailCommand(args: string[]): Promise<number> {
  const dash = args.indexOf("--");
  const own = dash >= 0 ? args.slice(0, dash) : args;
  const cmd = dash >= 0 ? args.slice(dash + 1) : [];
  const { values, positionals } = parseArgs({
    args: own,
    options: { config: { type: "string", short: "c" }, attach: { type: "string" }, user: { type: "string" }, env: { type: "string", multiple: true }, "subnet-pool": { type: "string" }, cleanup: { type: "boolean", default: false } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`put the command after --: sluice jail [options] -- ${positionals.join(" ")}`);
  if (process.platform !== "linux" || process.getuid?.() !== 0) {
    process.stderr.write("sluice jail: needs root (it creates network namespaces and nftables tables); run it with sudo\n");
    return EXIT.failure;
  }
  if (values.cleanup) {
    if (cmd.length > 0) throw new UsageError("--cleanup takes no command");
    const gone = cleanupJails();
    process.stdout.write(gone.length === 0 ? "nothing to clean up\n" : `${gone.map((g) => `removed ${g}`).join("\n")}\n`);
    return EXIT.ok;
  }
  if (cmd.length === 0) throw new UsageError("no command: sluice jail [options] -- CMD [ARGS...]");
  const userName = values.user ?? process.env.SUDO_USER;
  if (userName === undefined) throw new UsageError("say who runs the command: --user USER (CMD runs as root only with --user root)");
  const user = userOf(userName);
  const extraEnv: Record<string, string> = {};
  for (const kv of values.env ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env takes K=V, not ${JSON.stringify(kv)}`);
    extraEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const config = configPath(values.config);
  // The config is checked here first, so a mistake is reported before any namespace exists.
  let agents: unknown[];
  let credentialEnv: { name: string; env: string }[];
  let adminTokenFile: string | null;
  try {
    // Checked against the schema here, before any namespace exists (the rest, rule packs and
    // files, when sluice starts: ~0.6 s not spent twice). The config's own agents go on: the
    // overlay replaces the list whole.
    const text = config === null ? DEFAULT_CONFIG_TEXT : readFileSync(config, "utf8");
    const parsed = parseConfigText(text, config ?? "embedded default");
    agents = parsed.agents.map((a) => Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)));
    // Credentials read from an environment variable: CMD gets the placeholder under that name.
    credentialEnv = parsed.credentials.flatMap((c) => ("env" in c.source ? [{ name: c.name, env: c.source.env }] : []));
    adminTokenFile = parsed.admin.token_file === undefined ? null : resolve(config === null ? process.cwd() : dirname(resolve(config)), parsed.admin.token_file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== undefined) {
      process.stderr.write(`sluice jail: cannot read the config ${config}: ${(err as NodeJS.ErrnoException).code}\n`);
      return EXIT.failure;
    }
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`sluice jail: invalid config: ${err.message}\n`);
    return EXIT.failure;
  }
  return jail({ config, agents, credentialEnv, adminTokenFile, attach: values.attach ?? null, user, cmd, extraEnv, pool: values["subnet-pool"] ?? "10.200.0.0/16" });
}

async function jail(o: { config: string | null; agents: unknown[]; credentialEnv: { name: string; env: string }[]; adminTokenFile: string | null; attach: string | null; user: Target; cmd: string[]; extraEnv: Record<string, string>; pool: string }): Promise<number> {
  const home = sluiceHome();
  let plan: JailPlan | null = null;
  let sluice: ReturnType<typeof Bun.spawn> | null = null;
  let child: ReturnType<typeof Bun.spawn> | null = null;
  const work = () => join(home, "jails", plan!.id);
  // World-readable (the jailed user reads the CA there), apart from root's /run/sluice/jails.
  const shared = () => `/run/sluice-jail-${plan!.id}`;
  const say = (s: string) => process.stderr.write(`sluice jail: ${s}\n`);
  const teardown = async () => {
    // The jail is cut off at once, while sluice stops (it reads the table's counters as it does);
    // the table and the namespace go once it has.
    const unplugged = plan ? unplugJail(plan) : null;
    if (sluice && sluice.exitCode === null) {
      sluice.kill("SIGTERM");
      let timer: Timer | undefined;
      await Promise.race([sluice.exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      if (sluice.exitCode === null) sluice.kill("SIGKILL");
    }
    if (plan) {
      rmSync(join(work(), "overlay.json"), { force: true });
      // A veth that could not be removed keeps its table (its drop rules): --cleanup takes both later.
      if (await unplugged) await removeJailNetwork(plan);
      else say(`jail ${plan.id}: its veth ${plan.vethHost} could not be removed; its table stays until \`sluice jail --cleanup\``);
      rmSync(shared(), { recursive: true, force: true });
    }
  };
  // Interrupted: CMD gets the signal (and ends the jail when it exits); before CMD runs, stop here.
  // A Ctrl-C at a terminal reached CMD already (its process group is ours): not sent twice, since
  // many programs read a second one as "quit". sluice runs in a session of its own, untouched.
  const onSignal = (sig: NodeJS.Signals) => {
    if (child && child.exitCode === null) {
      if (!(sig === "SIGINT" && process.stdin.isTTY)) child.kill(sig);
      return;
    }
    void teardown().then(() => process.exit(128 + (sig === "SIGINT" ? 2 : 15)));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    plan = planJail(o.pool);
    let ports: { proxy: number; transparent: number; dns: number };
    let admin: string;
    mkdirSync(shared(), { recursive: true, mode: 0o755 });
    if (o.attach !== null) {
      createJailNetwork(plan);
      configureJailNamespace(plan);
      ({ ports, admin } = await attachTo(o.attach));
      applyHostRules(plan, ports, true);
      // The CA, readable by the jailed user: from the running sluice, and the system's roots with it.
      const caRes = await fetch(`${o.attach}/v1/ca.pem`, { signal: AbortSignal.timeout(5000) });
      const pem = await caRes.text();
      if (caRes.status !== 200 || !pem.includes("-----BEGIN CERTIFICATE-----")) throw new JailError(`the sluice at ${o.attach} gave no CA certificate (${caRes.status})`);
      const roots = existsSync(SYSTEM_ROOTS) ? readFileSync(SYSTEM_ROOTS, "utf8") : "";
      writeFileSync(join(shared(), CA_FILE), pem, { mode: 0o644 });
      writeFileSync(join(shared(), CA_BUNDLE_FILE), `${roots.trimEnd()}\n${pem}`, { mode: 0o644 });
    } else {
      mkdirSync(work(), { recursive: true, mode: 0o700 });
      // The jail, its user and its command: the jail agent's label, so in each of its records
      // (agent_label) and in the start and stop records. sluice cuts secrets out of the whole
      // of it at load, then shortens it (agents[].label takes up to 64 KiB).
      const label = clipText(`jail ${plan.id}, ${plan.jailIp}, as ${o.user.name}: ${o.cmd.join(" ")}`.replace(/[\x00-\x1f\x7f]/g, " "), LABEL_INPUT_MAX);
      const overlay = {
        proxy: { listen: `${plan.hostIp}:0`, transparent_listen: `${plan.hostIp}:0` },
        dns: { listen: `${plan.hostIp}:0` },
        admin: { listen: "127.0.0.1:0" },
        // First: the first agent whose addresses match names the client, and this is the jail.
        agents: [{ name: `jail-${plan.id}`, label, source_cidrs: [`${plan.jailIp}/32`] }, ...o.agents],
      };
      writeFileSync(join(work(), "overlay.json"), JSON.stringify(overlay), { mode: 0o600 });
      const log = Bun.file(join(work(), "sluice.log"));
      sluice = Bun.spawn([...SELF, "run", ...(o.config ? ["--config", o.config] : []), "--overlay", join(work(), "overlay.json"), "--jail", plan.id, "--log-format", "json"], {
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
        detached: true,
        env: { ...process.env, SLUICE_HOME: home },
      });
      // While sluice starts (it compiles its rule packs, then waits for its address to be there
      // before it listens), the jail's network.
      createJailNetwork(plan);
      configureJailNamespace(plan);
      const ready = await readyLine(sluice, log);
      // Read at start (and kept for reloads): the raw command line does not stay on disk.
      rmSync(join(work(), "overlay.json"), { force: true });
      const port = (v: unknown) => Number(String(v).split(":").pop());
      ports = { proxy: port(ready.proxy), transparent: port(ready.transparent), dns: port(ready.dns) };
      if (!Number.isInteger(ports.proxy) || !Number.isInteger(ports.transparent) || !Number.isInteger(ports.dns)) throw new JailError(`sluice did not say where it listens: ${JSON.stringify(ready)}`);
      applyHostRules(plan, ports);
      // The CA, readable by the jailed user (SLUICE_HOME is not).
      for (const f of [CA_FILE, CA_BUNDLE_FILE]) {
        copyFileSync(join(home, f), join(shared(), f));
        chmodSync(join(shared(), f), 0o644);
      }
      admin = String(ready.admin);
    }
    const proxyUrl = `http://${plan.hostIp}:${ports.proxy}`;
    const placeholders = o.credentialEnv.length === 0 ? {} : await credentialPlaceholders(admin, o.adminTokenFile ?? join(home, ADMIN_TOKEN_FILE_NAME), o.credentialEnv);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: o.user.home,
      USER: o.user.name,
      LOGNAME: o.user.name,
      ...(process.env.TERM ? { TERM: process.env.TERM } : {}),
      ...(process.env.LANG ? { LANG: process.env.LANG } : {}),
      HTTP_PROXY: proxyUrl,
      HTTPS_PROXY: proxyUrl,
      http_proxy: proxyUrl,
      https_proxy: proxyUrl,
      NO_PROXY: "localhost,127.0.0.1",
      no_proxy: "localhost,127.0.0.1",
      SSL_CERT_FILE: join(shared(), CA_BUNDLE_FILE),
      REQUESTS_CA_BUNDLE: join(shared(), CA_BUNDLE_FILE),
      CURL_CA_BUNDLE: join(shared(), CA_BUNDLE_FILE),
      GIT_SSL_CAINFO: join(shared(), CA_BUNDLE_FILE),
      NODE_EXTRA_CA_CERTS: join(shared(), CA_FILE),
      DENO_CERT: join(shared(), CA_FILE),
      SLUICE_JAIL: plan.id,
      ...placeholders,
      ...o.extraEnv,
    };
    // The program only: its arguments can hold a secret (the records have them, redacted).
    say(`jail ${plan.id}: ${o.cmd[0]}${o.cmd.length > 1 ? ` (and ${o.cmd.length - 1} argument${o.cmd.length > 2 ? "s" : ""})` : ""} as ${o.user.name}, from ${plan.jailIp}; sluice log ${join(work(), "sluice.log")}`);
    child = Bun.spawn(["ip", "netns", "exec", plan.netns, "setpriv", `--reuid=${o.user.uid}`, `--regid=${o.user.gid}`, "--init-groups", "--no-new-privs", "--", ...o.cmd], { stdin: "inherit", stdout: "inherit", stderr: "inherit", env });
    const code = await child.exited;
    if (o.attach !== null) {
      // The attached sluice does not read this jail's counters: what they refused is said here.
      const refused = Object.entries(await readJailRefusals(plan.id)).map(([name, n]) => `${n} ${REFUSALS[name as Refusal].what}`);
      if (refused.length > 0) say(`jail ${plan.id}: ${refused.join("; ")}`);
    }
    return child.signalCode ? 128 + (({ SIGINT: 2, SIGTERM: 15, SIGKILL: 9 }) as Record<string, number>)[child.signalCode]! || 128 : code;
  } catch (err) {
    if (!(err instanceof JailError)) throw err;
    say(err.message);
    return EXIT.failure;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await teardown();
  }
}

const SYSTEM_ROOTS = "/etc/ssl/certs/ca-certificates.crt";

/**
 * Where the sluice at admin URL `url` listens (its /healthz): a proxy, a transparent listener and
 * a resolver, all on 127.0.0.1 (the jail reaches them by DNAT).
 */
async function attachTo(url: string): Promise<{ ports: { proxy: number; transparent: number; dns: number }; admin: string }> {
  let health: { listeners?: Record<string, string> };
  try {
    health = (await (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) })).json()) as typeof health;
  } catch (err) {
    throw new JailError(`no sluice answers at ${url}/healthz: ${err instanceof Error ? err.message : String(err)}`);
  }
  const l = health.listeners ?? {};
  const local = (name: string): number => {
    const v = l[name];
    const m = v === undefined ? null : /^127\.0\.0\.1:(\d+)$/.exec(v);
    if (!m) throw new JailError(`the sluice at ${url} has no ${name} listener on 127.0.0.1 (${v ?? "none"}): --attach needs proxy.transparent_listen and dns.listen there`);
    return Number(m[1]);
  };
  return { ports: { proxy: local("proxy"), transparent: local("transparent"), dns: local("dns") }, admin: new URL(url).host };
}

/**
 * The placeholders this jail's sluice made for env-sourced credentials (GET /v1/credentials with
 * its admin token), by environment variable name: CMD holds those, never the values.
 */
async function credentialPlaceholders(admin: string, tokenFile: string, wanted: { name: string; env: string }[]): Promise<Record<string, string>> {
  const token = readFileSync(tokenFile, "utf8").trim();
  const res = await fetch(`http://${admin}/v1/credentials`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new JailError(`sluice's admin API did not list the credentials (${res.status})`);
  const listed = ((await res.json()) as { credentials: { name: string; placeholder: string }[] }).credentials;
  const out: Record<string, string> = {};
  for (const w of wanted) {
    const c = listed.find((l) => l.name === w.name);
    if (c) out[w.env] = c.placeholder;
  }
  return out;
}

/** Waits for sluice's ready line (its stderr goes on to the log file); throws with its errors if it stops first. */
async function readyLine(proc: ReturnType<typeof Bun.spawn>, log: ReturnType<typeof Bun.file>): Promise<Record<string, unknown>> {
  const writer = log.writer();
  const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const seen: string[] = [];
  let rest = "";
  const deadline = Date.now() + READY_MS;
  let ready: Record<string, unknown> | null = null;
  while (ready === null) {
    const left = deadline - Date.now();
    let timer: Timer | undefined;
    const next = await Promise.race([reader.read(), new Promise<null>((r) => (timer = setTimeout(() => r(null), Math.max(left, 0))))]);
    clearTimeout(timer);
    if (next === null) throw new JailError(`sluice did not start within ${READY_MS / 1000}s:\n${seen.join("\n")}`);
    const { value, done } = next;
    if (done) throw new JailError(`sluice stopped before it was ready:\n${seen.slice(-10).join("\n")}`);
    writer.write(value);
    rest += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      seen.push(line);
      try {
        const l = JSON.parse(line) as Record<string, unknown>;
        if (l.msg === "sluice ready") ready = l;
      } catch {
        // Not a log line: kept for the error message.
      }
    }
  }
  // The rest of sluice's output goes on to its log file.
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      writer.write(value);
      await writer.flush();
    }
    await writer.end();
  })();
  await writer.flush();
  return ready;
}
