/**
 * Starts dist/sluice with its DNS server on 127.0.0.1:0, forwarding to the fake upstream, and
 * reads the DNS port from the "sluice ready" JSON line (field `dns`: "127.0.0.1:PORT"). When the
 * binary cannot do that (it rejects the `dns` section, or its ready line has no `dns` address),
 * this throws a `SluiceDnsUnavailable` whose message is the reason, taken from sluice's stderr,
 * so the benchmark can print "skipped: <reason>" instead of failing.
 */
import { launchSluice, readyPort, type LaunchedSluice, type LogLine } from "./sluice.ts";

export class SluiceDnsUnavailable extends Error {
  override readonly name = "SluiceDnsUnavailable";
}

export interface RunningSluiceDns extends LaunchedSluice {
  readonly port: number;
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
  const s = await launchSluice({
    name: "sluice",
    dir,
    config: (auditFile) => sluiceDnsConfig({ ...o, auditFile }),
    keepLines: 100,
    exitedEarly: (code, seen) => new SluiceDnsUnavailable(`sluice exited with ${code} before it was ready: ${reasonFrom(seen, "(no output)")}`),
  });
  const port = readyPort(s.ready, "dns");
  if (port === null) {
    await s.stop();
    throw new SluiceDnsUnavailable(`sluice's ready line has no DNS address (field "dns"): ${JSON.stringify(s.ready)}`);
  }
  return { ...s, port };
}
