/**
 * Known-secret scan benchmark: throughput of `compileKnownSecrets(...).scan` over clean text
 * against a baseline that only reads the bytes, both measured in this run.
 *
 *   bun bench/known-secrets.ts [--seed 1] [--secrets 100]
 *
 * - input: 10 MiB of clean mixed text (bench/lib/scan-corpus.ts), cut into 64 KiB chunks as the
 *   proxy would scan a body. It must hold none of the generated secrets: a match is printed (by
 *   name) and the run exits 1 before measuring.
 * - secrets: --secrets generated values (random 40-character tokens), each compiled into its ~20
 *   wire forms; the compile time is printed.
 * - throughput (MB/s, best of 3 passes) of the baseline (charCodeAt over every chunk, summed),
 *   the first scan pass after compiling, and the best scan pass; the ratio scan/baseline.
 * - sanity: a chunk with every secret inserted (raw, base64 inside `user:<secret>`, hex) must
 *   find all of them, else exit 1.
 *
 * Prints one table and one JSON line. Values are never printed.
 */
import { parseArgs } from "node:util";
import { compileKnownSecrets, type KnownSecret } from "../src/scan/known-secrets.ts";
import { chunks, cleanCorpus, rng } from "./lib/scan-corpus.ts";
import { fmt, printTable, round } from "./lib/report.ts";

const MiB = 1024 * 1024;
const CORPUS_BYTES = 10 * MiB;
const CHUNK_BYTES = 64 * 1024;
const PASSES = 3;

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { seed: { type: "string", default: "1" }, secrets: { type: "string", default: "100" } },
});
const seed = Number(values.seed);
const count = Number(values.secrets);
if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 1) {
  console.error("usage: bun bench/known-secrets.ts [--seed N] [--secrets N]");
  process.exit(2);
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const r = rng(seed + 1000);
const secrets: KnownSecret[] = Array.from({ length: count }, (_, i) => {
  let value = "kst_";
  for (let j = 0; j < 40; j++) value += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return { name: `env:BENCH_SECRET_${i}`, value };
});

const compileStart = performance.now();
const scanner = compileKnownSecrets(secrets);
const compileMs = performance.now() - compileStart;

const corpus = chunks(cleanCorpus(CORPUS_BYTES, seed), CHUNK_BYTES);
const totalBytes = corpus.reduce((n, c) => n + c.length, 0);

function baselinePass(): number {
  let sum = 0;
  for (const chunk of corpus) for (let i = 0; i < chunk.length; i++) sum = (sum + chunk.charCodeAt(i)) | 0;
  return sum;
}

function scanPass(): number {
  let found = 0;
  for (const chunk of corpus) found += scanner.scan(chunk).length;
  return found;
}

function mbps(pass: () => number): { first: number; best: number; result: number } {
  let first = 0;
  let best = 0;
  let result = 0;
  for (let p = 0; p < PASSES; p++) {
    const t = performance.now();
    result = pass();
    const rate = totalBytes / MiB / ((performance.now() - t) / 1000);
    if (p === 0) first = rate;
    best = Math.max(best, rate);
  }
  return { first, best, result };
}

// Sanity before measuring: every secret is found where it is, and nothing in the clean input.
const planted = secrets
  .map((s, i) => {
    const forms = [s.value, Buffer.from(`user:${s.value}`).toString("base64"), Buffer.from(s.value).toString("hex")];
    return `item ${i} ${forms[i % forms.length]} end`;
  })
  .join("\n");
const plantedNames = scanner.scan(planted).map((m) => m.name);
const missing = secrets.filter((s) => !plantedNames.includes(s.name)).map((s) => s.name);
if (missing.length > 0) {
  console.error(`known-secret scan missed ${missing.length} planted secrets, e.g. ${missing.slice(0, 3).join(", ")}`);
  process.exit(1);
}

const scan = mbps(scanPass);
if (scan.result !== 0) {
  const names = new Set(corpus.flatMap((c) => scanner.scan(c).map((m) => m.name)));
  console.error(`clean input matched ${scan.result} times (${[...names].slice(0, 5).join(", ")})`);
  process.exit(1);
}
const baseline = mbps(baselinePass);

printTable(
  ["measure", "MB/s", "x baseline"],
  [
    ["baseline (read every char)", fmt(baseline.best, 0), "1.00"],
    ["known-secret scan, first pass", fmt(scan.first, 0), fmt(scan.first / baseline.best)],
    ["known-secret scan, best pass", fmt(scan.best, 0), fmt(scan.best / baseline.best)],
  ],
);
console.log(`${count} secrets, ${fmt(compileMs, 1)} ms to compile, ${fmt(totalBytes / MiB, 1)} MiB in ${corpus.length} chunks`);
console.log(
  JSON.stringify({
    bench: "known-secrets",
    secrets: count,
    compile_ms: round(compileMs, 1),
    baseline_mbps: round(baseline.best, 0),
    scan_first_mbps: round(scan.first, 0),
    scan_best_mbps: round(scan.best, 0),
    ratio: round(scan.best / baseline.best, 2),
  }),
);
