/**
 * Streaming-upload benchmark (issue 4: "streaming a 1 GiB upload through the proxy grows RSS by
 * <= 64 MB"). An origin process on 127.0.0.1 reads and discards each body (counting and hashing
 * it); a raw-socket client streams 1 GiB of realistic clean text, generated on the fly in 64 KiB
 * pieces with backpressure, as one POST: first with Content-Length, then chunked. Each is sent
 * directly to the origin (the throughput baseline, same run) and through a fresh dist/sluice with
 * DLP on (the defaults: a body over dlp.body.max_buffer streams through the scanner with an
 * overlap window), and, for reference, through one with `dlp: { enabled: false }`. Sluice's VmRSS is read before the upload and every 100 ms during it, and
 * VmHWM (the kernel's peak, reset through /proc/PID/clear_refs where permitted) after it.
 *
 *   bun bench/upload.ts [--mib 1024] [--no-hash] [--keep-tmp]
 *
 * Prints, per framing: MB/s direct and through sluice (and the ratio), peak RSS growth over idle,
 * that the origin got exactly the bytes sent (count and SHA-256), PASS / MISS for the RSS target;
 * then one JSON line. MB = MiB. Only 127.0.0.1 is used. Exit status 1 on an error (a body that
 * did not arrive whole, a refusal, a process that failed), 0 otherwise (a MISS is not an error).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cleanTextPieces } from "./lib/clean-text.ts";
import { HOST } from "./lib/net.ts";
import { runBenchmark, stopProcess, track } from "./lib/procs.ts";
import { cpuSeconds, rssMiB } from "./lib/procfs.ts";
import {
  benchTempDir,
  errorHeadlines,
  errors,
  fmt,
  loud,
  measureThenCleanUp,
  noteLogProblems,
  positiveInt,
  printFindings,
  printTable,
  printTargets,
  round,
  targetsJson,
  type Target,
} from "./lib/report.ts";
import { ensureBinary, ROOT, startSluice } from "./lib/sluice.ts";
import { upload, type UploadResult } from "./lib/upload-client.ts";

const TARGET_GROWTH_MIB = 64;
const PIECE = 64 * 1024;
const SAMPLE_MS = 100;

interface Memory {
  idleMiB: number;
  peakSampledMiB: number;
  /** VmHWM after the run: the true peak, when clear_refs could reset it before. */
  hwmMiB: number | null;
  afterMiB: number;
  samples: number;
}

interface Run {
  readonly name: string;
  readonly chunked: boolean;
  readonly via: "direct" | "sluice";
  readonly result: UploadResult;
  readonly origin: { bytes: number; sha256: string | null };
  readonly mibPerS: number;
  readonly memory: Memory | null;
  readonly proxyCores: number | null;
}

async function status(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  const text = await Bun.file(`/proc/${pid}/status`).text();
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, "m").exec(text);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** Resets the process's peak RSS (VmHWM) to its current RSS (proc(5), clear_refs "5"); false if not permitted. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Samples VmRSS every 100 ms until stopped; returns the highest value seen. */
function sampleRss(pid: number): { stop(): Promise<{ peak: number; samples: number }> } {
  let peak = 0;
  let samples = 0;
  let busy: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    busy = rssMiB(pid)
      .then((v) => {
        samples++;
        if (v > peak) peak = v;
      })
      .catch(() => {});
  }, SAMPLE_MS);
  return {
    async stop() {
      clearInterval(timer);
      await busy;
      return { peak, samples };
    },
  };
}

async function startOrigin(hash: boolean): Promise<{ port: number; pid: number; stop(): Promise<number | null> }> {
  const proc = track(
    "upload-origin",
    Bun.spawn([process.execPath, join(ROOT, "bench/lib/upload-origin.ts"), ...(hash ? [] : ["--no-hash"])], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "inherit",
      detached: true,
    }),
  );
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = setTimeout(() => void stopProcess(proc), 15_000);
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  clearTimeout(deadline);
  reader.releaseLock();
  const port = (JSON.parse(text.split("\n")[0] || "{}") as { port?: number }).port;
  if (!port) throw new Error(`upload origin did not report its port (got ${JSON.stringify(text)})`);
  return { port, pid: proc.pid, stop: () => stopProcess(proc) };
}

async function runOne(o: {
  name: string;
  via: "direct" | "sluice";
  chunked: boolean;
  total: number;
  hash: boolean;
  originPort: number;
  proxy?: { port: number; pid: number };
}): Promise<Run> {
  const url = `http://${HOST}:${o.originPort}/upload`;
  let memory: Memory | null = null;
  let sampler: ReturnType<typeof sampleRss> | null = null;
  let cpuBefore = 0;
  let peakResettable = false;
  if (o.proxy) {
    const idle = await rssMiB(o.proxy.pid);
    peakResettable = resetPeak(o.proxy.pid);
    memory = { idleMiB: idle, peakSampledMiB: idle, hwmMiB: null, afterMiB: idle, samples: 0 };
    cpuBefore = await cpuSeconds(o.proxy.pid);
    sampler = sampleRss(o.proxy.pid);
  }
  process.stdout.write(`  ${o.name}: `);
  const t0 = performance.now();
  const result = await upload({
    port: o.proxy ? o.proxy.port : o.originPort,
    target: o.proxy ? url : "/upload",
    host: `${HOST}:${o.originPort}`,
    total: o.total,
    chunked: o.chunked,
    pieces: cleanTextPieces(o.total, PIECE),
    hash: o.hash,
  });
  const wall = (performance.now() - t0) / 1000;
  let proxyCores: number | null = null;
  if (o.proxy && sampler && memory) {
    const s = await sampler.stop();
    proxyCores = ((await cpuSeconds(o.proxy.pid)) - cpuBefore) / wall;
    memory.afterMiB = await rssMiB(o.proxy.pid);
    memory.peakSampledMiB = Math.max(memory.idleMiB, s.peak, memory.afterMiB);
    memory.samples = s.samples;
    if (peakResettable) memory.hwmMiB = await status(o.proxy.pid, "VmHWM");
  }
  let origin: { bytes: number; sha256: string | null } = { bytes: -1, sha256: null };
  try {
    origin = JSON.parse(result.body) as typeof origin;
  } catch {
    /* a refusal from sluice: reported below */
  }
  const mibPerS = result.sent / 1024 / 1024 / (result.ms / 1000);
  const growth = memory ? `, RSS ${fmt(memory.idleMiB, 1)} -> peak ${fmt(memory.hwmMiB ?? memory.peakSampledMiB, 1)} MB` : "";
  console.log(`${result.status}, ${fmt(mibPerS, 0)} MB/s${growth}`);
  if (result.status !== 200) {
    loud(`${o.name}: status ${result.status} ${result.headers["x-sluice-rule"] ?? ""} after ${result.sent} of ${o.total} bytes sent: ${result.body.slice(0, 300)}`);
  } else {
    if (origin.bytes !== o.total) loud(`${o.name}: the origin received ${origin.bytes} bytes, not ${o.total}`);
    if (o.hash && origin.sha256 !== result.sha256) loud(`${o.name}: the origin's SHA-256 ${origin.sha256} differs from the client's ${result.sha256}`);
  }
  return { name: o.name, chunked: o.chunked, via: o.via, result, origin, mibPerS, memory, proxyCores };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: { mib: { type: "string", default: "1024" }, "no-hash": { type: "boolean", default: false }, "keep-tmp": { type: "boolean", default: false } },
    strict: true,
  });
  const mib = positiveInt("mib", String(values.mib));
  const hash = values["no-hash"] !== true;
  const total = mib * 1024 * 1024;
  await ensureBinary();
  const tmpDir = benchTempDir("sluice-bench-upload-", values["keep-tmp"] === true);
  const runs: Run[] = [];
  let peakResetNote = "";

  await measureThenCleanUp(tmpDir, async () => {
    const origin = await startOrigin(hash);
    console.log(`origin http://${HOST}:${origin.port}/upload (reads and discards${hash ? ", SHA-256" : ""}); ${mib} MiB of clean text in ${PIECE / 1024} KiB pieces; temp dir ${tmpDir.path}\n`);
    for (const chunked of [false, true]) {
      const framing = chunked ? "chunked" : "Content-Length";
      runs.push(await runOne({ name: `direct, ${framing}`, via: "direct", chunked, total, hash, originPort: origin.port }));
      for (const dlp of [true, false]) {
        // DLP off is the reference: what forwarding alone costs, in speed and memory.
        const name = `sluice (DLP ${dlp ? "on" : "off"}), ${framing}`;
        const s = await startSluice(`sluice-upload-${dlp ? "dlp" : "nodlp"}-${chunked ? "chunked" : "length"}`, join(tmpDir.path, `sluice-${dlp ? "dlp" : "nodlp"}-${chunked ? "chunked" : "length"}`), { dlp });
        try {
          const run = await runOne({ name, via: "sluice", chunked, total, hash, originPort: origin.port, proxy: { port: s.proxyPort, pid: s.pid } });
          runs.push(run);
          if (run.memory && run.memory.hwmMiB === null) peakResetNote = "VmHWM could not be reset (/proc/PID/clear_refs not writable): peaks are from the 100 ms samples only";
        } finally {
          const code = await s.stop();
          if (code !== 0) loud(`${name}: sluice exited with ${code} on SIGTERM (expected 0)`);
          noteLogProblems(name, s.problems);
        }
      }
    }
    await origin.stop();
  });

  // ---- report ------------------------------------------------------------------------------
  const peakOf = (m: Memory) => Math.max(m.peakSampledMiB, m.hwmMiB ?? 0);
  console.log(`\n${mib} MiB POST of clean text, 64 KiB pieces with backpressure, origin reads and discards:\n`);
  printTable(
    ["run", "status", "MB/s", "vs direct", "origin got", "sha256", "RSS idle", "peak (sampled / VmHWM)", "growth", "after", "sluice CPU"],
    runs.map((r) => {
      const direct = runs.find((d) => d.via === "direct" && d.chunked === r.chunked);
      const m = r.memory;
      return [
        r.name,
        String(r.result.status),
        fmt(r.mibPerS, 0),
        direct ? `${fmt(r.mibPerS / direct.mibPerS)}x` : "-",
        r.origin.bytes === total ? `${mib} MiB exactly` : `${r.origin.bytes} B`,
        !hash ? "-" : r.origin.sha256 === r.result.sha256 ? "match" : "DIFFERS",
        m ? fmt(m.idleMiB, 1) : "-",
        m ? `${fmt(m.peakSampledMiB, 1)} / ${m.hwmMiB === null ? "n/a" : fmt(m.hwmMiB, 1)}` : "-",
        m ? `+${fmt(peakOf(m) - m.idleMiB, 1)} MB` : "-",
        m ? fmt(m.afterMiB, 1) : "-",
        r.proxyCores === null ? "-" : `${fmt(r.proxyCores)} cores`,
      ];
    }),
  );
  if (peakResetNote) console.log(`\nnote: ${peakResetNote}`);

  const targets: Target[] = runs
    .filter((r) => r.memory !== null && r.name.includes("DLP on"))
    .map((r) => {
      const growth = peakOf(r.memory!) - r.memory!.idleMiB;
      return { name: `${r.name}: RSS growth`, value: growth, unit: " MB", goal: `<= ${TARGET_GROWTH_MIB} MB`, pass: r.result.status === 200 && growth <= TARGET_GROWTH_MIB };
    });
  console.log("\ntargets (MB = MiB, growth = peak VmRSS/VmHWM during the upload minus VmRSS before it):");
  printTargets(targets, (t) => fmt(t.value, 1));
  printFindings([]);

  console.log(
    `\n${JSON.stringify({
      bench: "upload",
      bytes: total,
      piece_bytes: PIECE,
      hash,
      results: runs.map((r) => ({
        name: r.name,
        via: r.via,
        chunked: r.chunked,
        status: r.result.status,
        sent: r.result.sent,
        origin_bytes: r.origin.bytes,
        sha256_match: hash ? r.origin.sha256 === r.result.sha256 : null,
        ms: round(r.result.ms, 0),
        mb_per_s: round(r.mibPerS, 1),
        proxy_cpu_cores: round(r.proxyCores, 2),
        rss_mb: r.memory && {
          idle: round(r.memory.idleMiB, 1),
          peak_sampled: round(r.memory.peakSampledMiB, 1),
          hwm: round(r.memory.hwmMiB, 1),
          after: round(r.memory.afterMiB, 1),
          growth: round(peakOf(r.memory) - r.memory.idleMiB, 1),
          samples: r.memory.samples,
        },
      })),
      targets: targetsJson(targets),
      errors: errorHeadlines(),
    })}`,
  );
  return errors.length > 0 ? 1 : 0;
}

await runBenchmark(main);
