/**
 * Starts dist/sluice with its DNS server on 127.0.0.1:0, forwarding to the fake upstream, and
 * reads the DNS port from the "sluice ready" JSON line (field `dns`: "127.0.0.1:PORT"). When the
 * binary cannot do that (it rejects the `dns` section, or its ready line has no `dns` address),
 * this throws a `SluiceDnsUnavailable` whose message is the reason, taken from sluice's stderr,
 * so the benchmark can print "skipped: <reason>" instead of failing.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { stopProcess, track } from "./procs.ts";
import { BIN, type LogLine } from "./sluice.ts";

export class SluiceDnsUnavailable extends Error {
  override readonly name = "SluiceDnsUnavailable";
}

export interface RunningSluiceDns {
  readonly proc: Subprocess<"ignore", "ignore", "pipe">;
  readonly pid: number;
  readonly port: number;
  readonly auditFile: string;
  readonly configText: string;
  /** Log lines at warn or error, and anything that is not JSON. */
  readonly problems: LogLine[];
  stop(): Promise<number | null>;
}

/**
 * The config from the benchmark's brief, plus what lets the benchmark names through sluice's
 * checks as a real deployment would configure them: the names are on the allow list, their
 * answers (RFC 2544 benchmarking range 198.18.0.0/15, which sluice refuses by default) are
 * trusted, and the uncached run's unique subdomains are not judged as DNS exfiltration.
 */
export function sluiceDnsConfig(o: { upstreamPort: number; auditFile: string; domain: string; trustedCidr: string }): string {
  return (
    `version: 1\n` +
    `proxy: { listen: "127.0.0.1:0" }\n` +
    `admin: { listen: "127.0.0.1:0" }\n` +
    `dns:\n` +
    `  listen: "127.0.0.1:0"\n` +
    `  upstreams: ["127.0.0.1:${o.upstreamPort}"]\n` +
    `  exfil: { allow_domains: [${JSON.stringify(o.domain)}] }\n` +
    `egress:\n` +
    `  allow: [${JSON.stringify(`*.${o.domain}`)}]\n` +
    `  trusted_cidrs: [${JSON.stringify(o.trustedCidr)}]\n` +
    `audit: { file: ${JSON.stringify(o.auditFile)} }\n`
  );
}

/** The first error-ish line sluice printed, as one short sentence. */
function reasonFrom(lines: readonly LogLine[], fallback: string): string {
  const bad = lines.find((l) => l.level === "error" || l.level === "fatal") ?? lines.find((l) => l.level === "raw" && String(l.msg).trim() !== "");
  if (!bad) return fallback;
  const { level: _level, time: _time, ...rest } = bad;
  const msg = String(rest.msg ?? "");
  delete (rest as { msg?: unknown }).msg;
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : "";
  return `${msg}${extra}`.slice(0, 400);
}

export async function startSluiceDns(dir: string, o: { upstreamPort: number; domain: string; trustedCidr: string }): Promise<RunningSluiceDns> {
  mkdirSync(dir, { recursive: true });
  const auditFile = join(dir, "audit.jsonl");
  const configPath = join(dir, "sluice.yaml");
  const configText = sluiceDnsConfig({ ...o, auditFile });
  writeFileSync(configPath, configText);
  const proc = track(
    "sluice",
    Bun.spawn([BIN, "run", "--config", configPath, "--log-format", "json"], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
      detached: true,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: join(dir, "home") },
    }),
  );

  const problems: LogLine[] = [];
  const seen: LogLine[] = [];
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
      if (seen.length < 100) seen.push(line);
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

  const ready = await new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stopProcess(proc);
      reject(new Error(`sluice: no "sluice ready" line within 15 s:\n${seen.map((l) => JSON.stringify(l)).join("\n")}`));
    }, 15_000);
    listener.onLine = (l) => {
      if (l.msg === "sluice ready") {
        clearTimeout(timer);
        listener.onLine = null;
        resolve(l);
      }
    };
    void proc.exited.then(async (code) => {
      await pumped;
      clearTimeout(timer);
      reject(new SluiceDnsUnavailable(`sluice exited with ${code} before it was ready: ${reasonFrom(seen, "(no output)")}`));
    });
  });
  const port = Number(String(ready.dns ?? "").split(":").pop());
  if (typeof ready.dns !== "string" || !Number.isInteger(port) || port <= 0) {
    await stopProcess(proc);
    throw new SluiceDnsUnavailable(`sluice's ready line has no DNS address (field "dns"): ${JSON.stringify(ready)}`);
  }
  return { proc, pid: proc.pid, port, auditFile, configText, problems, stop: () => stopProcess(proc) };
}
