/**
 * `sluice mcp proxy -- CMD ARGS...`: the MCP stdio transport. Runs the server as a child and
 * relays newline-delimited JSON-RPC between the client (our stdin/stdout) and the child, every
 * message judged by mcp/session.ts before it is passed on. The child's stderr passes through;
 * its environment is reduced to an allow-list, with credential placeholders in place of the real
 * values; signals go to it and its exit status comes back. One record per judged message.
 */
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { AuditLockedError, AuditLogError, openRecorder, type Recorder } from "../audit/recorder.ts";
import { loadSigningKey, SigningKeyError } from "../audit/signing-key.ts";
import { createJsonlWriter } from "../audit/sink.ts";
import { loadConfig, type Loaded } from "../config/load.ts";
import { ConfigError } from "../core/errors.ts";
import { openPinStore, type PinStore } from "../mcp/baselines.ts";
import { startHttpRelay } from "../mcp/http.ts";
import { LineReader } from "../mcp/lines.ts";
import { parseListen } from "../config/units.ts";
import { parseIpLiteral } from "../net/ip.ts";
import { McpSession, SLUICE_ERROR, type McpJudges, type McpOut } from "../mcp/session.ts";
import { auditPaths } from "./audit.ts";
import { configPath, sluiceHome } from "./paths.ts";
import { EXIT, UsageError } from "./usage.ts";

export const HELP = `Usage: sluice mcp proxy [--config FILE] [--name NAME] [--pass-env NAME]... -- COMMAND [ARGS...]
       sluice mcp proxy --upstream URL [--listen IP:PORT] [--via PROXY_URL] [--header "K: V"]... [--config FILE] [--name NAME]
       sluice mcp baselines [--config FILE] [NAME]
       sluice mcp diff [--config FILE] NAME
       sluice mcp approve [--config FILE] [--digest HEX] NAME [TOOL]

Runs an MCP server (COMMAND ARGS) as a child and relays the stdio transport between the MCP
client (this process's stdin and stdout) and it, inspecting every message: DLP on what the
client sends (tool arguments), prompt injection and DLP on what the server sends (results,
tool descriptions, instructions, its own requests). A refused request gets JSON-RPC error
-32001 with error.data.sluice = { rule, reason }; a poisoned tool is withheld from tools/list.

Drop it in where the server's command was in an MCP client's configuration:
  "command": "sluice", "args": ["mcp", "proxy", "--", "npx", "-y", "some-server"]

The child's environment is reduced to PATH, HOME, USER, LOGNAME, SHELL, LANG, LC_*, TERM,
TMPDIR, TZ, the proxy variables (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), the CA variables of
\`sluice ca export --env\`, and --pass-env NAME; a credential whose value comes from an
environment variable is given as its placeholder under that name. Its stderr passes through.
Decision records go to the signed log in audit.dir/mcp-NAME-HASH (one directory per server name,
\`sluice audit verify\` checks it; a second proxy of the same server at the same time writes
mcp-NAME-HASH-PID), and a copy to audit.file (default stderr). A request the server leaves unanswered for
mcp.answer_timeout (default 5m) gets -32001 and is cancelled to the server. Exit status: the
server's (128+N when a signal N ended it), 1 when it could not start or the session was cut, 2
on a usage error.

Over HTTP (--upstream URL): listens on --listen (default 127.0.0.1:0, the URL printed on
stderr) and relays the Streamable HTTP transport to URL, every message judged the same way; the
upstream requests go through sluice's forward proxy (--via, default the config's proxy.listen).

Rug pulls: each server's tools are pinned on first contact (mcp.first_contact: trust, or
require-approval to withhold new tools until approved) in mcp.baselines_file (default
SLUICE_HOME/mcp-baselines.sqlite), by server NAME (--name, else the command line). A tool that
changes is withheld until approved: \`sluice mcp diff NAME\` shows what changed and its
digest, \`sluice mcp approve --digest HEX NAME TOOL\` approves exactly that definition (without
--digest, whatever waits now), \`sluice mcp baselines [NAME]\` lists the pins.`;

/** Where the pins are: mcp.baselines_file (relative to the config file), else SLUICE_HOME/mcp-baselines.sqlite. */
export function baselinesFile(loaded: Loaded): string {
  const file = loaded.config.mcp.baselines_file;
  if (file !== undefined) return resolve(loaded.path === null ? process.cwd() : dirname(loaded.path), file);
  return join(sluiceHome(), "mcp-baselines.sqlite");
}

function openPins(loaded: Loaded): PinStore {
  const file = baselinesFile(loaded);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  return openPinStore(file, loaded.config.mcp.first_contact);
}

/** Runs `f` on the pin store, closed after (the admin API's reads and approvals). */
export function withPins<T>(loaded: Loaded, f: (store: PinStore) => T): T {
  const store = openPins(loaded);
  try {
    return f(store);
  } finally {
    store.close();
  }
}


const ALLOWED_ENV = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TMPDIR", "TZ"];
const ALLOWED_ENV_ALL_CASES = ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"];
const CA_ENV = ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "DENO_CERT"];
/** Signals passed on to the server (a second SIGINT or SIGTERM ends sluice at once). */
const FORWARDED = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM"] as const;
/** Locale variables (POSIX and glibc): only these of LC_*, not any name that starts so (LC_GH_TOKEN). */
const LOCALE = ["LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES", "LC_MONETARY", "LC_NUMERIC", "LC_TIME", "LC_ADDRESS", "LC_IDENTIFICATION", "LC_MEASUREMENT", "LC_NAME", "LC_PAPER", "LC_TELEPHONE"];
/** After the server exits, how long its output may still be read (a descendant may hold it open). */
const DRAIN_AFTER_EXIT_MS = 500;
/** How often overdue requests are looked for: a quarter of mcp.answer_timeout, within these bounds (ms). */
const SWEEP_MS = { min: 25, max: 1000 };

/** The child's environment: the allow-list from ours, --pass-env names, and placeholders for env-sourced credentials. */
export function childEnv(env: NodeJS.ProcessEnv, pass: readonly string[], loaded: Loaded): Record<string, string> {
  const out: Record<string, string> = {};
  const proxies = [...ALLOWED_ENV_ALL_CASES, ...ALLOWED_ENV_ALL_CASES.map((n) => n.toLowerCase())];
  const names = [...ALLOWED_ENV, ...LOCALE, ...CA_ENV, ...proxies, ...pass];
  for (const [k, v] of Object.entries(env)) {
    // A proxy URL with credentials in it (the agent's proxy token) is not the server's to hold.
    if (v !== undefined && names.includes(k) && !(proxies.includes(k) && !pass.includes(k) && v.includes("@"))) out[k] = v;
  }
  // The server is given the placeholder where it expects the key; sluice injects the value.
  for (const e of loaded.config.credentials) {
    if (!("env" in e.source)) continue;
    const compiled = loaded.policy.credentials.find((c) => c.name === e.name);
    if (compiled) out[e.source.env] = compiled.placeholder;
    else delete out[e.source.env];
  }
  return out;
}

async function load(path: string | undefined): Promise<Loaded | null> {
  try {
    return await loadConfig(configPath(path), undefined, { mcpTools: true });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`sluice mcp: invalid config:\n${err.issues.map((i) => `  ${i.path || "(root)"}: ${i.message}`).join("\n")}\n`);
    return null;
  }
}

/** baselines, diff, approve: the pins, read and approved from the command line. */
async function pinsCommand(sub: "baselines" | "diff" | "approve", args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: "string", short: "c" }, digest: { type: "string" } }, strict: true, allowPositionals: true });
  if (values.digest !== undefined && sub !== "approve") throw new UsageError("--digest goes with approve");
  const most = sub === "approve" ? 2 : 1;
  if (positionals.length > most || (sub !== "baselines" && positionals.length === 0)) throw new UsageError(sub === "approve" ? "approve takes NAME [TOOL]" : sub === "diff" ? "diff takes NAME" : "baselines takes [NAME]");
  const loaded = await load(values.config);
  if (loaded === null) return EXIT.failure;
  const store = openPins(loaded);
  try {
    const [name, tool] = positionals;
    if (sub === "baselines") {
      for (const r of store.list(name)) process.stdout.write(`${JSON.stringify(r)}\n`);
    } else if (sub === "diff") {
      const d = store.diff(name!);
      process.stdout.write(d === "" ? `nothing waits for approval for ${name}\n` : d);
    } else {
      const approved = store.approve(name!, tool, values.digest);
      if (approved.length === 0) {
        process.stderr.write(`sluice mcp approve: nothing waits for approval for ${name}${tool ? ` ${tool}` : ""}${values.digest ? ` with digest ${values.digest} (what waits changed: run sluice mcp diff again)` : ""}\n`);
        return EXIT.failure;
      }
      process.stdout.write(`approved for ${name}: ${approved.join(", ")}\n`);
    }
    return EXIT.ok;
  } finally {
    store.close();
  }
}

export async function mcpCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "baselines" || sub === "diff" || sub === "approve") return pinsCommand(sub, rest);
  if (sub !== "proxy") throw new UsageError(sub === undefined ? "mcp needs a subcommand: proxy, baselines, diff or approve" : `unknown mcp subcommand '${sub}' (there are: proxy, baselines, diff, approve)`);
  const dash = rest.indexOf("--");
  if (dash < 0 && rest.includes("--upstream")) return httpCommand(rest);
  if (dash < 0 || dash === rest.length - 1) throw new UsageError("give the server's command after --: sluice mcp proxy -- COMMAND [ARGS...]");
  const { values, positionals } = parseArgs({
    args: rest.slice(0, dash),
    options: { config: { type: "string", short: "c" }, name: { type: "string" }, "pass-env": { type: "string", multiple: true } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' before --`);
  const command = rest.slice(dash + 1);
  const loaded = await load(values.config);
  if (loaded === null) return EXIT.failure;
  return relay(command, values.name ?? serverName(command, loaded), [...loaded.config.mcp.env_allow, ...(values["pass-env"] ?? [])], loaded);
}

/** What both transports set up: the records, the pins, and the judges of one server's sessions. */
interface Judging {
  readonly records: McpRecords;
  readonly pins: PinStore;
  readonly judges: () => McpJudges;
  /** Writes the records of what was judged. */
  readonly record: (out: McpOut) => void;
}

/** Decision records of one MCP proxy: the signed log first, a plain copy to audit.file. */
interface McpRecords {
  write(record: Record<string, unknown>): void;
  /** Why the log cannot be written now, or null (recorder.ts failure()). */
  failure(): string | null;
  close(): void;
}

/**
 * The log directory of one server's proxies: audit.dir/mcp-<readable part of the name>-<hash of
 * the whole name>, so that restarts of the same server continue one chain. Each directory has
 * one writer (LOCK): a second proxy of the same server running at the same time gets its own
 * directory, suffixed with its pid, rather than waiting or interleaving two chains.
 */
export function mcpAuditDir(auditDir: string, server: string, pid?: number): string {
  const slug = server.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[-.]+|-+$/g, "").slice(0, 40) || "server";
  const hash = createHash("sha256").update(server).digest("hex").slice(0, 8);
  return join(auditDir, `mcp-${slug}-${hash}${pid !== undefined ? `-${pid}` : ""}`);
}

function openMcpRecords(loaded: Loaded, server: string): McpRecords | null {
  const say = (msg: string) => process.stderr.write(`sluice mcp proxy: ${msg}\n`);
  let failures = 0;
  // Logged once per 1000 failures, as sluice run does: a full disk must not flood stderr too.
  const onError = (err: unknown) => {
    if (failures++ % 1000 === 0) say(`cannot write decision records; keeping them in memory: ${String(err)}`);
  };
  const home = sluiceHome();
  const paths = auditPaths(loaded, home);
  const a = loaded.config.audit;
  let recorder: Recorder;
  try {
    const key = loadSigningKey({ home, ...(paths.keyFile !== undefined ? { file: paths.keyFile } : {}), create: true });
    const open = (dir: string) => openRecorder({ dir, key, segmentBytes: a.segment_size, checkpointRecords: a.checkpoint_every.records, checkpointMs: a.checkpoint_every.interval, fsync: a.fsync, onError });
    try {
      recorder = open(mcpAuditDir(paths.dir, server));
    } catch (err) {
      if (!(err instanceof AuditLockedError)) throw err;
      recorder = open(mcpAuditDir(paths.dir, server, process.pid));
    }
  } catch (err) {
    if (!(err instanceof AuditLogError || err instanceof SigningKeyError)) throw err;
    say(`cannot open the audit log: ${err.message}`);
    return null;
  }
  const copy = createJsonlWriter({ file: a.file, flushMs: 100, onError });
  return {
    write(record) {
      copy.writeLine(recorder.append(record));
    },
    failure: () => recorder.failure()?.error ?? null,
    close() {
      recorder.close();
      copy.close();
    },
  };
}

function judging(loaded: Loaded, server: string): Judging | null {
  const records = openMcpRecords(loaded, server);
  if (records === null) return null;
  let pins: PinStore;
  try {
    pins = openPins(loaded);
  } catch (err) {
    process.stderr.write(`sluice mcp proxy: cannot open the tool pins (${baselinesFile(loaded)}): ${err instanceof Error ? err.message : String(err)}\n`);
    records.close();
    return null;
  }
  const p = loaded.policy;
  // The placeholders this server may not be sent: every credential's but those its mcp.servers entry binds to it.
  const bound = loaded.config.mcp.servers.find((s) => s.name === server)?.credentials ?? [];
  // audit.on_failure: block refuses new client messages while the log cannot be written, as sluice run refuses requests.
  const blockOnFailure = loaded.config.audit.on_failure === "block";
  const placeholders = p.credentials.filter((c) => !bound.includes(c.name)).map((c) => ({ credential: c.name, placeholder: c.placeholder }));
  return {
    records,
    pins,
    judges: () => ({ dlp: p.dlp, injection: p.injection, audit: p.mode === "audit", pins: { store: pins, server }, toolPolicy: (tool) => p.mcpToolPolicy(server, tool), toolInjection: p.mcpToolInjection, args: p.mcpArguments, placeholders, ...(blockOnFailure ? { auditFailure: records.failure } : {}) }),
    record: (out) => {
      for (const r of out.records) {
        records.write({ time: new Date().toISOString(), kind: "mcp", agent: "mcp", server, direction: r.direction, method: r.method, tool: r.tool, verdict: r.verdict, rule: r.rule, reason: r.reason, detail: r.detail, would_block: r.wouldBlock, findings: r.findings, pin: r.pin, receipt: r.receipt });
      }
    },
  };
}

/** `sluice mcp proxy --upstream URL`: the Streamable HTTP transport (mcp/http.ts). */
async function httpCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: "string", short: "c" }, name: { type: "string" }, upstream: { type: "string" }, listen: { type: "string" }, via: { type: "string" }, header: { type: "string", multiple: true } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  let upstream: URL;
  try {
    upstream = new URL(values.upstream!);
  } catch {
    throw new UsageError(`--upstream must be a URL (http:// or https://), not ${JSON.stringify(values.upstream)}`);
  }
  if (upstream.protocol !== "http:" && upstream.protocol !== "https:") throw new UsageError("--upstream must be http:// or https://");
  const listen = parseListen(values.listen ?? "127.0.0.1:0");
  if (listen === null || parseIpLiteral(listen.hostname) === null) throw new UsageError("--listen must be ip:port (e.g. 127.0.0.1:8765)");
  const headers: [string, string][] = [];
  for (const h of values.header ?? []) {
    const colon = h.indexOf(":");
    if (colon <= 0 || /[\r\n]/.test(h)) throw new UsageError(`--header must be "Name: value", one line`);
    headers.push([h.slice(0, colon).trim(), h.slice(colon + 1).trim()]);
  }
  const loaded = await load(values.config);
  if (loaded === null) return EXIT.failure;
  const l = loaded.config.proxy.listen;
  const via = values.via ?? `http://${l.hostname.includes(":") ? `[${l.hostname}]` : l.hostname}:${l.port}`;
  // The URL, without any credentials it carries, names the server in records and pins.
  const server = values.name ?? `${upstream.origin}${upstream.pathname}`;
  const j = judging(loaded, server);
  if (j === null) return EXIT.failure;
  const relay = startHttpRelay({
    listen,
    upstream,
    via,
    headers,
    maxMessage: loaded.config.mcp.max_line,
    answerTimeout: loaded.config.mcp.answer_timeout,
    newSession: () => new McpSession(j.judges),
    emit: j.record,
  });
  process.stderr.write(`sluice mcp proxy: listening on ${relay.url} for ${server} (upstream through ${via})\n`);
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => resolve());
  });
  relay.stop();
  j.pins.close();
  j.records.close();
  return EXIT.ok;
}

/**
 * A server's name when --name is not given: its command line, unless DLP finds a secret in it
 * (`mcp-remote --header "Authorization: Bearer ..."`): then the program and a digest of the
 * line, so no record, pin or approval command ever shows the secret.
 */
export function serverName(command: readonly string[], loaded: Loaded): string {
  const line = command.join(" ");
  const dlp = loaded.policy.dlp;
  if (dlp === null || dlp.engine.scan([{ location: "mcp.server", text: line }]).length === 0) return line;
  return `${command[0]} (sha256:${createHash("sha256").update(command.join("\u0000")).digest("hex").slice(0, 16)})`;
}

async function relay(command: string[], server: string, pass: readonly string[], loaded: Loaded): Promise<number> {
  const maxLine = loaded.config.mcp.max_line;
  const j = judging(loaded, server);
  if (j === null) return EXIT.failure;
  const { records, pins } = j;
  const session = new McpSession(j.judges);
  let child: ReturnType<typeof Bun.spawn<"pipe", "pipe", "inherit">>;
  try {
    child = Bun.spawn(command, { stdin: "pipe", stdout: "pipe", stderr: "inherit", env: childEnv(process.env, pass, loaded) });
  } catch (err) {
    process.stderr.write(`sluice mcp proxy: cannot start ${command[0]}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.failure;
  }
  const toClient = Bun.stdout.writer();
  let childInOpen = true;
  let cut = false;
  const emit = async (out: McpOut): Promise<void> => {
    j.record(out);
    for (const line of out.toClient) toClient.write(`${line}\n`);
    if (out.toClient.length > 0) await toClient.flush();
    if (out.toServer.length > 0 && childInOpen) {
      try {
        for (const line of out.toServer) child.stdin.write(`${line}\n`);
        await child.stdin.flush();
      } catch {
        childInOpen = false;
      }
    }
  };
  const stop = (direction: "client" | "server", why: string) => {
    cut = true;
    records.write({ time: new Date().toISOString(), kind: "mcp", agent: "mcp", server, direction, method: "(session)", verdict: "block", rule: "mcp.line-too-long", reason: "body_too_large", detail: why });
    child.kill("SIGTERM");
  };

  let signalled = 0;
  for (const sig of FORWARDED) {
    process.on(sig, () => {
      // The first is the server's to act on; a second one (the server ignores it, or is gone) ends sluice.
      if (++signalled > 1 && (sig === "SIGINT" || sig === "SIGTERM")) {
        child.kill("SIGKILL");
        records.close();
        process.exit(128 + (constants.signals[sig] ?? 1));
      }
      child.kill(sig);
    });
  }

  // Client -> server. Each read is handled (and its writes flushed) before the next: a child
  // that stops reading stops us reading the client.
  const fromClient = (async () => {
    const lines = new LineReader(maxLine);
    for await (const chunk of Bun.stdin.stream()) {
      const got = lines.feed(chunk);
      if (got === null) {
        await emit({ toServer: [], toClient: [JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: SLUICE_ERROR, message: "blocked by sluice", data: { sluice: { rule: "mcp.line-too-long", reason: "body_too_large" } } } })], records: [] });
        stop("client", `a message from the client longer than ${maxLine} bytes; session ended`);
        return;
      }
      for (const line of got) await emit(session.fromClient(line));
    }
    // The client closed its side: so does the server's input (MCP stdio shutdown).
    childInOpen = false;
    try {
      await child.stdin.end();
    } catch {
      // already gone
    }
  })();

  // A server that never answers must not hold the client: requests past mcp.answer_timeout are
  // answered with -32001 (and cancelled to the server) as the clock passes.
  const timeout = loaded.config.mcp.answer_timeout;
  const sweep = setInterval(() => void emit(session.expire(timeout)), Math.min(SWEEP_MS.max, Math.max(SWEEP_MS.min, timeout / 4)));

  // Server -> client, until its output ends, or shortly after it exits: a descendant that keeps
  // the output open must not keep what the server owed the client unanswered.
  const fromServer = (async () => {
    const lines = new LineReader(maxLine);
    for await (const chunk of child.stdout) {
      const got = lines.feed(chunk);
      if (got === null) {
        stop("server", `a message from the server longer than ${maxLine} bytes; session ended`);
        break;
      }
      for (const line of got) await emit(session.fromServer(line));
    }
  })();
  const code = await Promise.race([fromServer.then(() => child.exited), child.exited.then(async (c) => (await Promise.race([fromServer, Bun.sleep(DRAIN_AFTER_EXIT_MS)]), c))]);
  clearInterval(sweep);
  // Whatever the server still owed the client is answered, never left hanging.
  await emit(session.serverGone(cut ? "the session was ended by sluice" : `the server exited with ${child.signalCode ?? code}`));
  void fromClient;
  pins.close();
  records.close();
  await toClient.flush();
  if (cut) return EXIT.failure;
  if (child.signalCode) return 128 + (constants.signals[child.signalCode as keyof typeof constants.signals] ?? 1);
  return code;
}
