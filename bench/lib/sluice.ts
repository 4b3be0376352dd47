/**
 * Starts dist/sluice on a generated config, the way production runs it: the egress policy is on
 * (a realistic allow list of ~50 patterns and a deny list of ~20), and decision records go to an
 * audit file. Readiness is the "sluice ready" JSON line on stderr, never a sleep.
 * `launchSluice` is the one launcher: dns-sluice.ts starts the DNS instance with it too.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { stopProcess, track } from "./procs.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const BIN = join(ROOT, "dist/sluice");

/** Hosts a coding agent plausibly needs: exact names and `*.example.com` wildcards. */
export const ALLOW_PATTERNS: readonly string[] = [
  "api.anthropic.com",
  "api.openai.com",
  "generativelanguage.googleapis.com",
  "*.aiplatform.googleapis.com",
  "api.mistral.ai",
  "api.cohere.com",
  "api.groq.com",
  "openrouter.ai",
  "github.com",
  "api.github.com",
  "codeload.github.com",
  "uploads.github.com",
  "objects.githubusercontent.com",
  "raw.githubusercontent.com",
  "avatars.githubusercontent.com",
  "*.actions.githubusercontent.com",
  "ghcr.io",
  "pkg-containers.githubusercontent.com",
  "gitlab.com",
  "*.gitlab.com",
  "bitbucket.org",
  "registry.npmjs.org",
  "registry.yarnpkg.com",
  "*.npmjs.org",
  "pypi.org",
  "files.pythonhosted.org",
  "crates.io",
  "static.crates.io",
  "index.crates.io",
  "static.rust-lang.org",
  "proxy.golang.org",
  "sum.golang.org",
  "storage.googleapis.com",
  "rubygems.org",
  "index.rubygems.org",
  "repo.maven.apache.org",
  "repo1.maven.org",
  "plugins.gradle.org",
  "services.gradle.org",
  "api.nuget.org",
  "repo.packagist.org",
  "deb.debian.org",
  "security.debian.org",
  "archive.ubuntu.com",
  "*.archive.ubuntu.com",
  "dl-cdn.alpinelinux.org",
  "registry-1.docker.io",
  "auth.docker.io",
  "production.cloudflare.docker.com",
  "*.pkg.dev",
  "huggingface.co",
  "*.huggingface.co",
  "*.sentry.io",
  "127.0.0.1",
];

/** Places an agent should not reach even when a wildcard above would admit them. */
export const DENY_PATTERNS: readonly string[] = [
  "gist.github.com",
  "gist.githubusercontent.com",
  "pastebin.com",
  "*.pastebin.com",
  "transfer.sh",
  "file.io",
  "*.pipedream.net",
  "*.beeceptor.com",
  "webhook.site",
  "*.requestbin.net",
  "hooks.slack.com",
  "discord.com",
  "*.discord.com",
  "api.telegram.org",
  "paste.ee",
  "*.burpcollaborator.net",
  "*.interact.sh",
  "*.oast.fun",
  "ingest.sentry.io",
  "uploads.gitlab.com",
];

export interface SluiceConfigOptions {
  readonly connectPorts?: readonly string[];
  /** false writes `dlp: { enabled: false }`; otherwise the dlp section is left out (DLP on, defaults). */
  readonly dlp?: boolean;
}

export function sluiceConfig(opts: { auditFile: string } & SluiceConfigOptions): string {
  const list = (xs: readonly string[]) => xs.map((x) => `    - ${JSON.stringify(x)}\n`).join("");
  const connect = opts.connectPorts ?? ["443"];
  return (
    `version: 1\n` +
    `mode: enforce\n` +
    `proxy: { listen: "127.0.0.1:0" }\n` +
    `admin: { listen: "127.0.0.1:0" }\n` +
    `egress:\n` +
    `  allow:\n${list(ALLOW_PATTERNS)}` +
    `  deny:\n${list(DENY_PATTERNS)}` +
    `  ports:\n` +
    `    http: ["1-65535"]\n` +
    `    connect: [${connect.map((p) => JSON.stringify(p)).join(", ")}]\n` +
    `  trusted_cidrs: ["127.0.0.1/32"]\n` +
    (opts.dlp === false ? `dlp: { enabled: false }\n` : "") +
    `audit:\n` +
    `  file: ${JSON.stringify(opts.auditFile)}\n`
  );
}

export interface LogLine {
  readonly level?: string;
  readonly msg?: string;
  readonly [key: string]: unknown;
}

/** A dist/sluice process that printed its "sluice ready" line. */
export interface LaunchedSluice {
  readonly name: string;
  readonly proc: Subprocess<"ignore", "ignore", "pipe">;
  readonly pid: number;
  readonly auditFile: string;
  readonly configText: string;
  /** The "sluice ready" line: where it listens (`proxy`, `admin`, `dns`: "127.0.0.1:PORT"). */
  readonly ready: LogLine;
  /** Log lines at warn or error (and anything that is not JSON), as they arrive. */
  readonly problems: LogLine[];
  /** Count of every log line seen. */
  lineCount(): number;
  stop(): Promise<number | null>;
}

export interface LaunchOptions {
  /** The name the process is tracked and reported under. */
  readonly name: string;
  /** Created if missing; holds sluice.yaml, audit.jsonl and SLUICE_HOME. */
  readonly dir: string;
  /** The config file's text, given the audit file's path. */
  readonly config: (auditFile: string) => string;
  /** The binary (default dist/sluice). */
  readonly bin?: string;
  /** How many of the first log lines to keep for error messages (default 50). */
  readonly keepLines?: number;
  /** The error to reject with when sluice exits before it is ready (default: a plain Error with the lines seen). */
  readonly exitedEarly?: (code: number | null, seen: readonly LogLine[]) => Error;
}

/**
 * Writes the config, starts `dist/sluice run` with JSON logs on stderr, pumps stderr line by line
 * and resolves once the "sluice ready" line arrives. Rejects (the process stopped) when none
 * arrives within 15 s, and with `exitedEarly` when sluice exits first.
 */
export async function launchSluice(o: LaunchOptions): Promise<LaunchedSluice> {
  const { name, dir } = o;
  mkdirSync(dir, { recursive: true });
  const auditFile = join(dir, "audit.jsonl");
  const configPath = join(dir, "sluice.yaml");
  const configText = o.config(auditFile);
  writeFileSync(configPath, configText);
  const proc = track(
    name,
    Bun.spawn([o.bin ?? BIN, "run", "--config", configPath, "--log-format", "json"], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
      detached: true,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home") },
    }),
  );

  const keepLines = o.keepLines ?? 50;
  const problems: LogLine[] = [];
  const seen: LogLine[] = [];
  let lines = 0;
  const listener: { onLine: ((l: LogLine) => void) | null } = { onLine: null };
  const pumped = (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    const take = (text: string) => {
      if (text.trim() === "") return;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { level: "raw", msg: text };
      }
      lines++;
      if (seen.length < keepLines) seen.push(line);
      if (line.level !== "info" && line.level !== "debug") problems.push(line);
      listener.onLine?.(line);
    };
    for await (const chunk of proc.stderr) {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        take(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
    }
    take(rest);
  })();

  const exitedEarly = o.exitedEarly ?? ((code, lines) => new Error(`${name} exited with ${code} before it was ready:\n${dump(lines)}`));
  const ready = await new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stopProcess(proc);
      reject(new Error(`${name}: no "sluice ready" line within 15 s:\n${dump(seen)}`));
    }, 15_000);
    listener.onLine = (l) => {
      if (l.msg === "sluice ready") {
        clearTimeout(timer);
        listener.onLine = null;
        resolve(l);
      }
    };
    void proc.exited.then(async (code) => {
      await pumped; // the reader passes on the last lines it got
      clearTimeout(timer);
      reject(exitedEarly(code, seen));
    });
  });
  return { name, proc, pid: proc.pid, auditFile, configText, ready, problems, lineCount: () => lines, stop: () => stopProcess(proc) };
}

/** The port of a "127.0.0.1:PORT" address in the ready line's `field`, or null when it has none. */
export function readyPort(ready: LogLine, field: string): number | null {
  const address = ready[field];
  if (typeof address !== "string") return null;
  const port = Number(address.split(":").pop());
  return Number.isInteger(port) && port > 0 ? port : null;
}

export interface RunningSluice extends LaunchedSluice {
  readonly proxyPort: number;
}

/** The forwarding proxy with the production-like egress policy above. */
export async function startSluice(name: string, dir: string, opts: SluiceConfigOptions & { bin?: string } = {}): Promise<RunningSluice> {
  const bin = opts.bin ?? BIN;
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`bun run build\``);
  const s = await launchSluice({ name, dir, bin, config: (auditFile) => sluiceConfig({ auditFile, ...opts }) });
  const proxyPort = readyPort(s.ready, "proxy");
  if (proxyPort === null) throw new Error(`${name}: bad proxy address in ready line: ${JSON.stringify(s.ready)}`);
  return { ...s, proxyPort };
}

/** Builds dist/sluice with `bun run build` when it is missing. */
export async function ensureBinary(): Promise<void> {
  if (await Bun.file(BIN).exists()) return;
  console.log(`${BIN} is missing: running \`bun run build\``);
  const proc = track("build", Bun.spawn([process.execPath, "run", "build"], { cwd: ROOT, stdout: "inherit", stderr: "inherit" }));
  if ((await proc.exited) !== 0 || !(await Bun.file(BIN).exists())) throw new Error("bun run build failed");
}

function dump(lines: readonly LogLine[]): string {
  return lines.map((l) => JSON.stringify(l)).join("\n");
}
