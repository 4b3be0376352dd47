/**
 * TLS interception benchmark (issue 6), two parts:
 *
 * - leaf minting from the per-instance CA (src/proxy/tls-ca.ts), cold (a host not in the cache:
 *   one ECDSA P-256 signature over a fresh certificate) and warm (from the cache), against one
 *   bare WebCrypto ECDSA P-256 signature over a certificate-sized message, measured in the run;
 * - HTTPS requests per second through dist/sluice with tls.intercept on (DLP and injection
 *   scanning on, defaults), against the same requests straight to the same origin (Bun.serve
 *   over TLS on 127.0.0.1, 1 KiB text bodies), keep-alive, --connections concurrent loops of
 *   Bun's fetch for --duration seconds each. The client runs in this process for both, so the
 *   ratio compares like with like. mitmproxy (mitmdump) is compared when installed.
 * - new connections per second: the same loops, but every request on a new connection (CONNECT
 *   and a TLS handshake each time through sluice, with its leaf cache warm), against new TLS
 *   connections straight to the origin.
 *
 *   bun bench/tls.ts [--hosts 500] [--duration 5] [--connections 32]
 *
 * Targets (issue 6): leaf minting <= 5 ms cold; >= 0.20x direct HTTPS rps with scanning on;
 * 10x mitmproxy's rps (n/a when mitmdump is not installed).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createCa } from "../src/proxy/tls-ca.ts";
import { fmt, printTable, printTargets, round, targetsJson, type Target } from "./lib/report.ts";
import { ensureBinary, launchSluice } from "./lib/sluice.ts";

const TARGET_MINT_MS = 5;
const TARGET_RATIO = 0.2;
const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { hosts: { type: "string", default: "500" }, duration: { type: "string", default: "5" }, connections: { type: "string", default: "32" } },
  strict: true,
});
const hosts = Number(values.hosts);
const durationS = Number(values.duration);
const connections = Number(values.connections);
if (!Number.isInteger(hosts) || hosts < 50 || !(durationS > 0) || !Number.isInteger(connections) || connections < 1) {
  console.error("--hosts wants an integer >= 50, --duration seconds > 0, --connections an integer >= 1");
  process.exit(1);
}

const percentile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
async function timeEach(n: number, f: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = Bun.nanoseconds();
    await f(i);
    ms.push((Bun.nanoseconds() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) };
}

const t0 = Bun.nanoseconds();
const ca = await createCa(() => Date.now(), { cacheSize: hosts * 2 });
const caMs = (Bun.nanoseconds() - t0) / 1e6;

// Baseline: a bare signature over a message the size of a leaf's to-be-signed part.
const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
const message = crypto.getRandomValues(new Uint8Array(400));
for (let i = 0; i < 50; i++) await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, message);
const baseline = await timeEach(hosts, () => crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, message));

// Warm up the minting path on hosts not measured, then cold mints of new hosts, then cache hits.
for (let i = 0; i < 20; i++) await ca.mint(`warmup-${i}.bench.test`);
const cold = await timeEach(hosts, (i) => ca.mint(`host-${i}.bench.test`));
const warm = await timeEach(hosts, (i) => ca.mint(`host-${i}.bench.test`));

console.log(`CA generated in ${fmt(caMs, 1)} ms; ${hosts} hosts\n`);
printTable(
  ["operation", "p50 ms", "p99 ms", "x baseline (p50)"],
  [
    ["baseline: one ECDSA P-256 signature", fmt(baseline.p50, 3), fmt(baseline.p99, 3), "1"],
    ["leaf mint, cold (new host)", fmt(cold.p50, 3), fmt(cold.p99, 3), fmt(cold.p50 / baseline.p50, 1)],
    ["leaf mint, warm (cached)", fmt(warm.p50, 4), fmt(warm.p99, 4), fmt(warm.p50 / baseline.p50, 2)],
  ],
);
// ---- HTTPS through interception vs direct ----------------------------------------------------
await ensureBinary();
const dir = mkdtempSync(join(tmpdir(), "sluice-bench-tls-"));
const originCa = await createCa(() => Date.now(), { commonName: "bench origin CA" });
const originLeaf = await originCa.mint("127.0.0.1");
const BODY = "x".repeat(1024);
const origin = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: originLeaf.certPem, key: originLeaf.keyPem }, fetch: () => new Response(BODY, { headers: { "content-type": "text/plain" } }) });
writeFileSync(join(dir, "origin-ca.pem"), originCa.certPem);
const sluice = await launchSluice({
  name: "sluice-tls",
  dir,
  config: (auditFile) =>
    `version: 1\nproxy: { listen: "127.0.0.1:0", require_agent: false }\nadmin: { listen: "127.0.0.1:0" }\negress:\n  allow: ["127.0.0.1"]\n  ports: { connect: ["1-65535"], http: ["1-65535"] }\n  trusted_cidrs: [127.0.0.1/32]\ntls:\n  intercept: true\n  extra_ca_files: [${JSON.stringify(join(dir, "origin-ca.pem"))}]\naudit: { file: ${JSON.stringify(auditFile)} }\n`,
});
const proxy = `http://${String(sluice.ready.proxy)}`;
const sluiceCa = readFileSync(join(dir, "home", "ca.pem"), "utf8");
const url = `https://127.0.0.1:${origin.port}/bench`;

/** Requests per second of `connections` loops of fetch for `seconds`, and how many failed. */
async function load(init: RequestInit, seconds: number, loops = connections): Promise<{ rps: number; failed: number }> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < until) {
        try {
          const res = await fetch(url, init);
          if ((await res.text()).length === BODY.length && res.status === 200) done++;
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return { rps: done / seconds, failed };
}
/**
 * The same keep-alive load through mitmdump (its own CA in a temporary confdir, trusting the
 * origin's CA upstream); null when mitmdump is not installed.
 */
async function measureMitmproxy(): Promise<{ version: string; rps: number; failed: number } | null> {
  const bin = Bun.which("mitmdump");
  if (bin === null) return null;
  const version = (await new Response(Bun.spawn([bin, "--version"], { stdout: "pipe" }).stdout).text()).match(/Mitmproxy: (\S+)/)?.[1] ?? "?";
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  const confdir = join(dir, "mitmproxy");
  writeFileSync(join(dir, "origin-ca-for-mitm.pem"), originCa.certPem);
  const proc = Bun.spawn(
    [bin, "-q", "--listen-host", "127.0.0.1", "--listen-port", String(port), "--set", `confdir=${confdir}`, "--set", `ssl_verify_upstream_trusted_ca=${join(dir, "origin-ca-for-mitm.pem")}`],
    { stdout: "ignore", stderr: "pipe" },
  );
  try {
    const caFile = join(confdir, "mitmproxy-ca-cert.pem");
    for (let i = 0; ; i++) {
      const up = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
        (s) => (s.end(), true),
        () => false,
      );
      if (up && (await Bun.file(caFile).exists())) break;
      if (i === 100) throw new Error("mitmdump did not start listening within 10 s");
      await Bun.sleep(100);
    }
    const init = { proxy: `http://127.0.0.1:${port}`, tls: { ca: readFileSync(caFile, "utf8") } } as RequestInit;
    await load(init, 1);
    return { version, ...(await load(init, durationS)) };
  } finally {
    proc.kill();
    await proc.exited;
  }
}

const directInit = { tls: { ca: originCa.certPem } } as RequestInit;
const viaInit = { proxy, tls: { ca: sluiceCa } } as RequestInit;
await load(directInit, 1);
const direct = await load(directInit, durationS);
await load(viaInit, 1);
const via = await load(viaInit, durationS);
// A new connection per request: keepalive off in Bun's fetch.
const fresh = (init: RequestInit) => ({ ...init, keepalive: false, headers: { connection: "close" } }) as RequestInit;
const handshakeLoops = Math.min(connections, 8);
const directNew = await load(fresh(directInit), durationS, handshakeLoops);
const viaNew = await load(fresh(viaInit), durationS, handshakeLoops);
await sluice.stop();
const mitm = await measureMitmproxy();
origin.stop(true);
rmSync(dir, { recursive: true, force: true });
const ratio = via.rps / direct.rps;
console.log(`\nHTTPS, 1 KiB bodies, keep-alive, ${connections} concurrent fetch loops, ${durationS} s each:`);
printTable(
  ["path", "req/s", "failed", "x direct"],
  [
    ["direct to the origin", fmt(direct.rps, 0), String(direct.failed), "1"],
    ["through sluice, intercepted (DLP + injection on)", fmt(via.rps, 0), String(via.failed), fmt(ratio, 3)],
  ],
);
console.log(`\nnew connections (TLS handshake per request; CONNECT too through sluice), ${handshakeLoops} concurrent loops, ${durationS} s each:`);
printTable(
  ["path", "handshakes/s", "failed", "x direct"],
  [
    ["direct to the origin", fmt(directNew.rps, 0), String(directNew.failed), "1"],
    ["through sluice, intercepted, leaf cache warm", fmt(viaNew.rps, 0), String(viaNew.failed), fmt(viaNew.rps / directNew.rps, 3)],
  ],
);
if (mitm) {
  console.log(`\nmitmproxy ${mitm.version} (mitmdump, no scanning), same loops: ${fmt(mitm.rps, 0)} req/s (${mitm.failed} failed); sluice ${fmt(via.rps / mitm.rps, 2)}x`);
}

const targets: Target[] = [
  { name: "leaf minting, cold (p50)", value: cold.p50, unit: " ms", goal: `<= ${TARGET_MINT_MS} ms`, pass: cold.p50 <= TARGET_MINT_MS },
  { name: "intercepted HTTPS rps / direct", value: ratio, unit: "x", goal: `>= ${TARGET_RATIO}x`, pass: ratio >= TARGET_RATIO && via.failed === 0 },
  { name: "intercepted rps / mitmproxy", value: mitm ? via.rps / mitm.rps : null, unit: "x", goal: ">= 10x", pass: mitm ? via.rps / mitm.rps >= 10 && mitm.failed === 0 : null },
];
console.log("\ntargets:");
printTargets(targets, (t) => fmt(t.value, 3));
if (mitm === null) console.log("\nskipped mitmproxy: mitmdump is not installed (Debian package mitmproxy)");
console.log(
  `\n${JSON.stringify({
    bench: "tls",
    hosts,
    ca_ms: round(caMs, 1),
    baseline_sign_p50_ms: round(baseline.p50, 4),
    mint_cold_p50_ms: round(cold.p50, 3),
    mint_cold_p99_ms: round(cold.p99, 3),
    mint_warm_p50_ms: round(warm.p50, 4),
    https: { connections, duration_s: durationS, direct_rps: round(direct.rps, 0), intercepted_rps: round(via.rps, 0), ratio: round(ratio, 3), failed: via.failed },
    mitmproxy: mitm ? { version: mitm.version, rps: round(mitm.rps, 0), failed: mitm.failed } : null,
    handshakes: { loops: handshakeLoops, direct_per_s: round(directNew.rps, 0), intercepted_per_s: round(viaNew.rps, 0), ratio: round(viaNew.rps / directNew.rps, 3), failed: viaNew.failed },
    targets: targetsJson(targets),
  })}`,
);
