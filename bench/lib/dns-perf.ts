/**
 * Runs dnsperf (Debian's `dnsperf`, 2.x) against 127.0.0.1 and reads its report.
 *
 * dnsperf 2.10 prints only the mean, min, max and standard deviation of latency (no percentiles,
 * no `-O latency-histogram`). With `-v` it prints one line per answered query with its latency,
 * `> NOERROR name A 0.000132`; that costs dnsperf ~7% of its rate at ~90k qps, so throughput is
 * measured by a plain run and percentiles by a separate `-v` run written to a file.
 */
import { track } from "./procs.ts";

export interface DnsperfOptions {
  readonly port: number;
  readonly queryFile: string;
  /** -l: run for this many seconds (or until -n passes are done). */
  readonly durationS?: number;
  /** -n: at most this many passes over the query file. */
  readonly maxRuns?: number;
  /** -c: simulated clients (each its own source port). */
  readonly clients: number;
  /** -T: threads. */
  readonly threads: number;
  /** -q: queries outstanding at once. */
  readonly outstanding: number;
  /** Per-query latencies via -v, written to this file and read back; omit for a plain run. */
  readonly latencyFile?: string;
}

export interface DnsperfResult {
  readonly sent: number;
  readonly completed: number;
  readonly lost: number;
  readonly qps: number;
  readonly avgMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly stddevMs: number;
  /** "NOERROR" -> count, from "Response codes:". */
  readonly rcodes: Readonly<Record<string, number>>;
  /** Only with `latencyFile`: percentiles of the per-query latencies, in ms. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly samples: number;
  /** CPU seconds dnsperf itself used (all threads). */
  readonly clientCpuS: number;
  readonly command: string;
  /** The summary text (without the per-query lines). */
  readonly raw: string;
}

export function dnsperfArgs(o: DnsperfOptions): string[] {
  const args = ["dnsperf", "-s", "127.0.0.1", "-p", String(o.port), "-d", o.queryFile, "-c", String(o.clients), "-T", String(o.threads), "-q", String(o.outstanding)];
  if (o.durationS !== undefined) args.push("-l", String(o.durationS));
  if (o.maxRuns !== undefined) args.push("-n", String(o.maxRuns));
  if (o.latencyFile) args.push("-v");
  return args;
}

export async function runDnsperf(o: DnsperfOptions): Promise<DnsperfResult> {
  const args = dnsperfArgs(o);
  // Detached (own session): a terminal's Ctrl-C reaches only the benchmark, which stops it.
  const proc = track("dnsperf", Bun.spawn(args, { stdin: "ignore", stdout: o.latencyFile ? Bun.file(o.latencyFile) : "pipe", stderr: "pipe", detached: true }));
  const stdout = proc.stdout;
  const [out, err, code] = await Promise.all([
    stdout instanceof ReadableStream ? new Response(stdout).text() : Promise.resolve(""),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const command = args.join(" ");
  let text = out;
  let latencies: Float64Array | null = null;
  if (o.latencyFile) {
    const parsed = await readVerbose(o.latencyFile);
    text = parsed.summary;
    latencies = parsed.latencies;
  }
  if (code !== 0) throw new Error(`${command} exited with ${code}:\n${err}\n${text}`);
  const clientCpuS = Number(proc.resourceUsage()?.cpuTime.total ?? 0n) / 1e6;
  return { ...parseSummary(text, command), ...percentiles(latencies), clientCpuS, command, raw: text };
}

/** Splits -v output into the summary and the latencies of the "> RCODE name type seconds" lines. */
async function readVerbose(path: string): Promise<{ summary: string; latencies: Float64Array }> {
  const text = await Bun.file(path).text();
  let values = new Float64Array(1 << 16);
  let n = 0;
  const summary: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    if (text.charCodeAt(start) === 0x3e /* > */) {
      const sp = text.lastIndexOf(" ", end);
      const v = Number(text.slice(sp + 1, end));
      if (Number.isFinite(v)) {
        if (n === values.length) {
          const bigger = new Float64Array(values.length * 2);
          bigger.set(values);
          values = bigger;
        }
        values[n++] = v * 1000;
      }
    } else summary.push(text.slice(start, end));
    start = end + 1;
  }
  return { summary: summary.join("\n"), latencies: values.subarray(0, n) };
}

function percentiles(latencies: Float64Array | null): { p50Ms: number | null; p99Ms: number | null; samples: number } {
  if (!latencies || latencies.length === 0) return { p50Ms: null, p99Ms: null, samples: 0 };
  const sorted = latencies.slice().sort();
  // Nearest-rank percentile.
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return { p50Ms: at(0.5), p99Ms: at(0.99), samples: sorted.length };
}

function parseSummary(text: string, command: string): Omit<DnsperfResult, "p50Ms" | "p99Ms" | "samples" | "clientCpuS" | "command" | "raw"> {
  const num = (re: RegExp, what: string): number => {
    const m = re.exec(text);
    if (!m) throw new Error(`cannot read "${what}" from the output of ${command}:\n${text}`);
    return Number(m[1]);
  };
  const latency = /Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)/.exec(text);
  if (!latency) throw new Error(`cannot read "Average Latency" from the output of ${command}:\n${text}`);
  const rcodes: Record<string, number> = {};
  const rc = /Response codes:\s+(.*)/.exec(text);
  if (rc) for (const m of rc[1]!.matchAll(/([A-Z]+) (\d+) \(/g)) rcodes[m[1]!] = Number(m[2]);
  return {
    sent: num(/Queries sent:\s+(\d+)/, "Queries sent"),
    completed: num(/Queries completed:\s+(\d+)/, "Queries completed"),
    lost: num(/Queries lost:\s+(\d+)/, "Queries lost"),
    qps: num(/Queries per second:\s+([\d.]+)/, "Queries per second"),
    avgMs: Number(latency[1]) * 1000,
    minMs: Number(latency[2]) * 1000,
    maxMs: Number(latency[3]) * 1000,
    stddevMs: num(/Latency StdDev \(s\):\s+([\d.]+)/, "Latency StdDev") * 1000,
    rcodes,
  };
}

/** dnsperf's query file format: "name type" per line. */
export async function writeQueryFile(path: string, names: Iterable<string>, type = "A"): Promise<number> {
  const parts: string[] = [];
  let n = 0;
  for (const name of names) {
    parts.push(`${name} ${type}\n`);
    n++;
  }
  await Bun.write(path, parts.join(""));
  return n;
}

export function dnsperfInstalled(): boolean {
  return Bun.which("dnsperf") !== null;
}
