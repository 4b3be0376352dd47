/**
 * DNS benchmark: dnsperf against dnsmasq (the baseline) and against sluice's DNS server, both
 * forwarding to the same fake upstream (test/helpers/fake-dns.ts), cached and uncached.
 *
 *   bun bench/dns.ts [--duration 10] [--clients 4] [--outstanding 20] [--keep-tmp]
 *
 * - cached: 1,000 names with A records, TTL 300. One pass over them fills the cache, then
 *   dnsperf cycles through them; the upstream must see (almost) no queries meanwhile.
 * - uncached: every query is a name used once (q<N>.u.bench.test, answered by a wildcard with
 *   TTL 0), so every query goes upstream; the upstream's count must match dnsperf's.
 * Each row: a 2 s warm-up (not reported), a plain dnsperf run for queries/second and CPU, then a
 * shorter `dnsperf -v` run for the latency percentiles (dnsperf 2.10 prints no percentiles).
 * Besides qps, each row has the server's CPU time per answered query: on 2 shared cores the qps of
 * a closed-loop run swings between runs far more than the CPU cost does.
 *
 * Prints a table, the targets (sluice cached >= 30,000 qps and within 2x of dnsmasq: PASS/MISS),
 * and one JSON line with every figure. Only 127.0.0.1 is used. Every process started here is
 * stopped on the way out, Ctrl-C included, and the temp dir removed.
 * Exit status: 0 when the runs completed without errors (a missed target is not an error),
 * 1 on any error (a server answering wrongly, lost queries through sluice, a process failing).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { FakeDns } from "../test/helpers/fake-dns.ts";
import { queryOnce, rcodeName } from "./lib/dns-client.ts";
import { busyCores, hostCpu } from "./lib/dns-cpu.ts";
import { dnsmasqInstalled, startDnsmasq } from "./lib/dns-dnsmasq.ts";
import { dnsperfArgs, dnsperfInstalled, runDnsperf, type DnsperfResult } from "./lib/dns-perf.ts";
import { SluiceDnsUnavailable, startSluiceDns } from "./lib/dns-sluice.ts";
import {
  BENCH_CIDR,
  BENCH_DOMAIN,
  cachedAddress,
  cachedName,
  startBenchUpstream,
  UNCACHED_ADDRESS,
  uncachedName,
  writeCachedQueries,
  writeUncachedQueries,
} from "./lib/dns-upstream.ts";
import { HOST } from "./lib/net.ts";
import { cleanupAll, installSignalHandlers, isInterrupted, onCleanup, track } from "./lib/procs.ts";
import { cpuSeconds } from "./lib/procfs.ts";
import { BIN, ROOT } from "./lib/sluice.ts";

const TARGETS = { cachedQps: 30_000, ratioToDnsmasq: 0.5 } as const;
const NAMES = 1000;
const WARMUP_S = 2;
const THREADS = 1;

type Mode = "cached" | "uncached";
type Server = "dnsmasq" | "sluice";

interface Row {
  readonly server: Server;
  readonly mode: Mode;
  readonly run: DnsperfResult;
  readonly latency: DnsperfResult;
  /** Queries the upstream received per query dnsperf completed, during the throughput run. */
  readonly upstreamPerQuery: number;
  /** CPU seconds per wall second used by the server process during the throughput run. */
  readonly cores: number;
  /** The same for dnsperf, and for the whole machine (every process). */
  readonly clientCores: number;
  readonly hostCores: number;
}

interface Target {
  readonly name: string;
  readonly value: number | null;
  readonly unit: string;
  readonly goal: string;
  readonly pass: boolean | null;
}

const errors: string[] = [];
const notes: string[] = [];

function loud(msg: string): void {
  if (isInterrupted()) return;
  errors.push(msg);
  console.error(`\n!!!!!!!! ERROR: ${msg}\n`);
}

function parseDurationS(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s)?$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new Error(`--duration wants seconds, e.g. 10 or 10s (got ${JSON.stringify(text)})`);
  return Math.max(1, Math.round(Number(m[1])));
}

function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} wants a positive integer (got ${JSON.stringify(text)})`);
  return n;
}

async function ensureBinary(): Promise<void> {
  if (await Bun.file(BIN).exists()) return;
  console.log(`${BIN} is missing: running \`bun run build\``);
  const proc = track("build", Bun.spawn([process.execPath, "run", "build"], { cwd: ROOT, stdout: "inherit", stderr: "inherit" }));
  if ((await proc.exited) !== 0 || !(await Bun.file(BIN).exists())) throw new Error("bun run build failed");
}

interface Settings {
  readonly tmp: string;
  readonly durationS: number;
  readonly latencyS: number;
  readonly clients: number;
  readonly outstanding: number;
  readonly cachedFile: string;
}

/** Checks that a server answers a cached and an uncached name with the fake upstream's address. */
async function checkAnswers(server: Server, port: number): Promise<boolean> {
  const probes: [string, string][] = [
    [cachedName(7), cachedAddress(7)],
    [uncachedName("check", 1), UNCACHED_ADDRESS],
  ];
  for (const [name, want] of probes) {
    try {
      const r = await queryOnce(port, name);
      if (r.rcode !== 0 || r.addresses.join() !== want) {
        loud(`${server} answered ${name} A with ${rcodeName(r.rcode)} [${r.addresses.join(", ")}]${r.ede ? ` (EDE ${r.ede})` : ""}; expected NOERROR [${want}]`);
        return false;
      }
    } catch (err) {
      loud(`${server}: ${name} A: ${String(err)}`);
      return false;
    }
  }
  return true;
}

/** Lost queries and answers other than NOERROR: errors through sluice, notes for the baseline. */
function checkRun(server: Server, what: string, r: DnsperfResult): void {
  const bad = Object.entries(r.rcodes).filter(([code]) => code !== "NOERROR");
  if (r.lost === 0 && bad.length === 0 && r.completed > 0) return;
  const msg = `${server} ${what}: ${r.completed} completed, ${r.lost} lost, rcodes ${JSON.stringify(r.rcodes)} (${r.command})`;
  if (server === "sluice" || r.completed === 0) loud(msg);
  else notes.push(msg);
}

async function measureMode(
  server: Server,
  mode: Mode,
  target: { port: number; pid: number },
  upstream: FakeDns,
  s: Settings,
  files: { warm: string; run: string; latency: string },
): Promise<Row> {
  const base = { port: target.port, clients: s.clients, threads: THREADS, outstanding: s.outstanding };
  process.stdout.write(`  ${server} ${mode}: warm-up ${WARMUP_S}s`);
  checkRun(server, `${mode} warm-up`, await runDnsperf({ ...base, queryFile: files.warm, durationS: WARMUP_S }));

  process.stdout.write(`, run ${s.durationS}s`);
  const upBefore = upstream.count();
  const cpuBefore = await cpuSeconds(target.pid);
  const hostBefore = await hostCpu();
  const t0 = performance.now();
  const run = await runDnsperf({ ...base, queryFile: files.run, durationS: s.durationS });
  const wall = (performance.now() - t0) / 1000;
  const cores = ((await cpuSeconds(target.pid)) - cpuBefore) / wall;
  const hostCores = busyCores(hostBefore, await hostCpu(), availableParallelism());
  const clientCores = run.clientCpuS / wall;
  const upstreamPerQuery = (upstream.count() - upBefore) / Math.max(1, run.completed);
  checkRun(server, mode, run);

  process.stdout.write(`, latency run ${s.latencyS}s`);
  const verboseOut = join(s.tmp, `${server}-${mode}-dnsperf-v.out`);
  const latency = await runDnsperf({ ...base, queryFile: files.latency, durationS: s.latencyS, latencyFile: verboseOut });
  rmSync(verboseOut, { force: true });
  checkRun(server, `${mode} latency run`, latency);
  console.log(`: ${fmtInt(run.qps)} qps, p99 ${fmt(latency.p99Ms ?? 0, 3)} ms, upstream ${fmt(upstreamPerQuery)}/query`);

  if (mode === "cached" && upstreamPerQuery > 0.01) {
    loud(`${server} cached: the upstream got ${fmt(upstreamPerQuery, 3)} queries per query answered: the cache is not being used`);
  }
  if (mode === "uncached" && upstreamPerQuery < 0.99) {
    notes.push(`${server} uncached: the upstream got only ${fmt(upstreamPerQuery, 3)} queries per query answered (some answers came from a cache)`);
  }
  return { server, mode, run, latency, upstreamPerQuery, cores, clientCores, hostCores };
}

/** Cached then uncached rows for one server already listening on `port`. */
async function measureServer(server: Server, target: { port: number; pid: number }, upstream: FakeDns, s: Settings): Promise<Row[]> {
  if (!(await checkAnswers(server, target.port))) return [];
  const rows: Row[] = [];
  // Fill the cache: one pass over the names.
  const fill = await runDnsperf({ port: target.port, clients: s.clients, threads: THREADS, outstanding: s.outstanding, queryFile: s.cachedFile, maxRuns: 1 });
  if (fill.completed !== NAMES) loud(`${server}: the cache-filling pass completed ${fill.completed} of ${NAMES} queries (${fill.lost} lost)`);
  rows.push(await measureMode(server, "cached", target, upstream, s, { warm: s.cachedFile, run: s.cachedFile, latency: s.cachedFile }));

  // Uncached query files: enough names that none repeats within a run, judged by the cached rate.
  const perSecond = Math.ceil(rows[0]!.run.qps * 1.3) + 1000;
  const files = { warm: join(s.tmp, `${server}-uncached-warm.txt`), run: join(s.tmp, `${server}-uncached-run.txt`), latency: join(s.tmp, `${server}-uncached-latency.txt`) };
  await writeUncachedQueries(files.warm, "w", perSecond * WARMUP_S);
  await writeUncachedQueries(files.run, "q", perSecond * s.durationS);
  await writeUncachedQueries(files.latency, "l", perSecond * s.latencyS);
  try {
    rows.push(await measureMode(server, "uncached", target, upstream, s, files));
  } finally {
    for (const f of Object.values(files)) rmSync(f, { force: true });
  }
  return rows;
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");

function ratioOf(row: Row, rows: readonly Row[]): number | null {
  const base = rows.find((r) => r.server === "dnsmasq" && r.mode === row.mode);
  return base ? row.run.qps / base.run.qps : null;
}

function printTable(rows: readonly Row[]): void {
  const header = ["name", "mode", "qps", "p50 ms", "p99 ms", "lost", "upstream/q", "server CPU", "CPU us/q", "dnsperf CPU", "host busy", "vs dnsmasq"];
  const body = rows.map((r) => {
    const ratio = ratioOf(r, rows);
    return [
      r.server,
      r.mode,
      fmtInt(r.run.qps),
      r.latency.p50Ms === null ? "-" : fmt(r.latency.p50Ms, 3),
      r.latency.p99Ms === null ? "-" : fmt(r.latency.p99Ms, 3),
      String(r.run.lost),
      fmt(r.upstreamPerQuery),
      `${fmt(r.cores)} cores`,
      fmt(usPerQuery(r), 1),
      `${fmt(r.clientCores)} cores`,
      `${fmt(r.hostCores)} cores`,
      ratio === null ? "-" : `${fmt(ratio)}x`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of body) console.log(line(row));
}

/** Server CPU microseconds per answered query: less sensitive than qps to who else is busy. */
const usPerQuery = (r: Row): number => (r.cores * 1e6) / Math.max(1, r.run.qps);

function printTargets(targets: readonly Target[]): void {
  const body = targets.map((t) => [t.name, t.value === null ? "n/a" : `${t.unit === "x" ? fmt(t.value) : fmtInt(t.value)}${t.unit}`, t.goal, t.pass === null ? "n/a" : t.pass ? "PASS" : "MISS"]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...body.map((r) => r[i]!.length)));
  for (const r of body) console.log(r.map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  "));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      duration: { type: "string", default: "10" },
      clients: { type: "string", default: "4" },
      outstanding: { type: "string", default: "20" },
      "keep-tmp": { type: "boolean", default: false },
    },
    strict: true,
  });
  const durationS = parseDurationS(values.duration);
  const clients = positiveInt("clients", values.clients);
  const outstanding = positiveInt("outstanding", values.outstanding);
  const latencyS = Math.max(2, Math.round(durationS / 2));

  if (!dnsperfInstalled()) throw new Error("dnsperf is not installed (apt-get install -y dnsperf)");
  await ensureBinary();

  const tmp = mkdtempSync(join(tmpdir(), "sluice-bench-dns-"));
  const tmpState = { keep: values["keep-tmp"] };
  onCleanup("temp dir", () => {
    if (tmpState.keep) console.log(`\n(temp dir kept: ${tmp})`);
    else rmSync(tmp, { recursive: true, force: true });
  });

  const rows: Row[] = [];
  const skipped: { name: string; reason: string }[] = [];
  let sluiceAudit = 0;
  try {
    const upstream = await startBenchUpstream(NAMES);
    onCleanup("fake upstream", () => upstream.stop());
    const cachedFile = join(tmp, "cached.txt");
    await writeCachedQueries(cachedFile, NAMES);
    const s: Settings = { tmp, durationS, latencyS, clients, outstanding, cachedFile };
    const example = dnsperfArgs({ port: 0, queryFile: "FILE", durationS, clients, threads: THREADS, outstanding }).join(" ").replace(" -p 0", " -p PORT");
    console.log(`fake upstream ${upstream.address}: ${NAMES} names *.${BENCH_DOMAIN} (A, TTL 300) + uncached names *.u.${BENCH_DOMAIN} (A, TTL 0, each used once)`);
    console.log(`${example}  (+${WARMUP_S}s warm-up; latency from a separate ${latencyS}s run with -v); temp dir ${tmp}\n`);

    // ---- dnsmasq -------------------------------------------------------------------------
    const dnsmasqBin = dnsmasqInstalled();
    if (!dnsmasqBin) {
      skipped.push({ name: "dnsmasq", reason: "not installed (apt-get install -y dnsmasq)" });
      console.log("  dnsmasq: SKIPPED: not installed");
    } else {
      let d: Awaited<ReturnType<typeof startDnsmasq>> | undefined;
      try {
        d = await startDnsmasq(dnsmasqBin, join(tmp, "dnsmasq"), upstream.port, 10_000);
      } catch (err) {
        loud(`dnsmasq is installed but did not start: ${String(err)}`);
      }
      if (d) {
        try {
          rows.push(...(await measureServer("dnsmasq", { port: d.port, pid: d.pid }, upstream, s)));
        } finally {
          await d.stop();
        }
      }
    }

    // ---- sluice --------------------------------------------------------------------------
    let sl: Awaited<ReturnType<typeof startSluiceDns>> | undefined;
    try {
      sl = await startSluiceDns(join(tmp, "sluice"), { upstreamPort: upstream.port, domain: BENCH_DOMAIN, trustedCidr: BENCH_CIDR });
    } catch (err) {
      if (!(err instanceof SluiceDnsUnavailable)) throw err;
      skipped.push({ name: "sluice", reason: err.message });
      console.log(`  sluice: skipped: ${err.message}`);
    }
    if (sl) {
      try {
        rows.push(...(await measureServer("sluice", { port: sl.port, pid: sl.pid }, upstream, s)));
      } finally {
        const code = await sl.stop();
        if (code !== 0) loud(`sluice exited with ${code} on SIGTERM (expected 0)`);
        if (sl.problems.length > 0) {
          notes.push(`sluice logged ${sl.problems.length} warn/error line(s):\n${sl.problems.slice(0, 10).map((l) => `    ${JSON.stringify(l)}`).join("\n")}`);
        }
      }
      // Sluice records blocked or rewritten queries (kind "dns"); the benchmark's should all pass.
      const audit = await Bun.file(sl.auditFile).text().catch(() => "");
      const dnsRecords = audit.split("\n").filter((l) => l.includes('"kind":"dns"'));
      sluiceAudit = dnsRecords.length;
      if (sluiceAudit > 0) loud(`sluice wrote ${sluiceAudit} DNS decision record(s) (blocked or rewritten queries); first: ${dnsRecords[0]}`);
    }
  } catch (err) {
    if (!isInterrupted()) tmpState.keep = true;
    throw err;
  } finally {
    if (errors.length > 0 && !isInterrupted()) tmpState.keep = true;
    await cleanupAll();
  }

  // ---- report ------------------------------------------------------------------------------
  console.log(`\ndnsperf -c${clients} -T${THREADS} -q${outstanding} -l${durationS}, A queries over UDP, one fake upstream on ${HOST}:\n`);
  printTable(rows);
  console.log(
    `\nserver CPU: cores the server used during the throughput run; CPU us/q: that per answered query; dnsperf CPU: the load\n` +
      `generator; host busy: every process (${availableParallelism()} cores here: dnsperf, the server and, uncached, the fake upstream share them).\n` +
      `p50/p99 come from the separate dnsperf -v run. upstream/q: queries the fake upstream got per query answered.`,
  );

  const sluiceCached = rows.find((r) => r.server === "sluice" && r.mode === "cached");
  const cachedRatio = sluiceCached ? ratioOf(sluiceCached, rows) : null;
  const targets: Target[] = [
    {
      name: "sluice cached qps",
      value: sluiceCached?.run.qps ?? null,
      unit: " qps",
      goal: `>= ${fmtInt(TARGETS.cachedQps)} qps`,
      pass: sluiceCached ? sluiceCached.run.qps >= TARGETS.cachedQps : null,
    },
    {
      name: "sluice cached qps / dnsmasq cached",
      value: cachedRatio,
      unit: "x",
      goal: `>= ${fmt(TARGETS.ratioToDnsmasq)}x (within 2x)`,
      pass: cachedRatio === null ? null : cachedRatio >= TARGETS.ratioToDnsmasq,
    },
  ];
  console.log("\ntargets:");
  printTargets(targets);
  // Not a target: the qps of a closed-loop run on 2 shared cores swings from run to run (dnsmasq
  // cached has read anywhere from ~95k to ~250k here), while CPU per query stays within a few %.
  for (const mode of ["cached", "uncached"] as const) {
    const sl = rows.find((r) => r.server === "sluice" && r.mode === mode);
    const dm = rows.find((r) => r.server === "dnsmasq" && r.mode === mode);
    if (sl && dm) console.log(`(${mode}: dnsmasq CPU per query / sluice CPU per query = ${fmt(usPerQuery(dm) / usPerQuery(sl))}x)`);
  }

  for (const s of skipped) console.log(`\nskipped ${s.name}: ${s.reason}`);
  for (const n of notes) console.log(`\nnote: ${n}`);
  if (errors.length > 0) {
    console.error(`\n!!!!!!!! ${errors.length} ERROR(S):`);
    for (const e of errors) console.error(`  - ${e.split("\n")[0]}`);
  }

  const round = (n: number | null, d = 3) => (n === null ? null : Math.round(n * 10 ** d) / 10 ** d);
  console.log(
    `\n${JSON.stringify({
      bench: "dns",
      duration_s: durationS,
      latency_run_s: latencyS,
      warmup_s: WARMUP_S,
      dnsperf: { clients, threads: THREADS, outstanding },
      names: NAMES,
      results: rows.map((r) => ({
        name: r.server,
        mode: r.mode,
        qps: round(r.run.qps, 1),
        p50_ms: round(r.latency.p50Ms),
        p99_ms: round(r.latency.p99Ms),
        avg_ms: round(r.run.avgMs),
        max_ms: round(r.run.maxMs),
        ratio: round(ratioOf(r, rows)),
        sent: r.run.sent,
        completed: r.run.completed,
        lost: r.run.lost,
        rcodes: r.run.rcodes,
        latency_samples: r.latency.samples,
        upstream_per_query: round(r.upstreamPerQuery),
        server_cpu_cores: round(r.cores, 2),
        server_cpu_us_per_query: round(usPerQuery(r), 2),
        dnsperf_cpu_cores: round(r.clientCores, 2),
        host_busy_cores: round(r.hostCores, 2),
      })),
      skipped,
      sluice_dns_records: sluiceAudit,
      targets: targets.map((t) => ({ name: t.name, value: round(t.value), goal: t.goal, pass: t.pass })),
      cpu_cost_ratio: Object.fromEntries(
        (["cached", "uncached"] as const).flatMap((mode) => {
          const sl = rows.find((r) => r.server === "sluice" && r.mode === mode);
          const dm = rows.find((r) => r.server === "dnsmasq" && r.mode === mode);
          return sl && dm ? [[mode, round(usPerQuery(dm) / usPerQuery(sl))]] : [];
        }),
      ),
      errors: errors.map((e) => e.split("\n")[0]),
    })}`,
  );
  return errors.length > 0 ? 1 : 0;
}

installSignalHandlers();
try {
  process.exitCode = await main();
} catch (err) {
  await cleanupAll();
  if (isInterrupted()) await new Promise(() => {}); // the signal handler exits
  console.error(`\n!!!!!!!! benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
}
process.exit();
