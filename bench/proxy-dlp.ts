/**
 * Forwarding benchmark with request-body scanning: wrk POSTs ~1 KiB chat-completions JSON bodies
 * (no secrets) to a local origin directly, then through sluice with DLP on (the default: bodies up
 * to dlp.body.max_buffer are held, parsed as JSON and scanned before they go upstream), then
 * through sluice with `dlp: { enabled: false }` for reference. No two requests send the same body:
 *
 * - "conversation" (the target): what an agent sends turn after turn, the same conversation so
 *   far and a new last message (each request's own number in it);
 * - "every message new" (the worst case, reported): every message carries the request's number,
 *   so nothing the engine read before comes back.
 *
 * Prints requests/sec, p50, p99, the ratio to direct for the same workload measured in the same
 * run, the proxy's CPU, and PASS / MISS for the target (issue 4: >= 0.20x direct with DLP on);
 * then one JSON line with every figure.
 *
 *   bun bench/proxy-dlp.ts [--duration 10] [--connections 32] [--keep-tmp]
 *
 * Before measuring, one request with a planted credential goes through each sluice instance, to
 * show that DLP is really on (403 from a dlp.* rule) and really off (200) where it should be.
 * Only 127.0.0.1 is used. Exit status: 0 when the runs completed without errors (a missed target
 * is not an error), 1 on any error (a non-2xx or socket error through a proxy, a body the origin
 * got wrong, a record other than allow, ...).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { countAudit } from "./lib/audit.ts";
import { chatRequestBody, chatRequestTemplate, chatResponseBody, TURN_MARKER } from "./lib/chat-body.ts";
import { locate } from "./lib/baselines.ts";
import { HOST } from "./lib/net.ts";
import { onCleanup, runBenchmark } from "./lib/procs.ts";
import { cpuSeconds, rssMiB } from "./lib/procfs.ts";
import {
  benchTempDir,
  errorHeadlines,
  errors,
  fmt,
  fmtInt,
  loud,
  measureThenCleanUp,
  noteLogProblems,
  notes,
  parseBenchArgs,
  printFindings,
  printTable,
  printTargets,
  round,
  targetsJson,
  type Target,
} from "./lib/report.ts";
import { ensureBinary, ROOT, startSluice } from "./lib/sluice.ts";
import { runWrk, socketErrorCount, writePostTemplateScript, type WrkResult } from "./lib/wrk.ts";

const TARGET_RATIO = 0.2;
const WARMUP_S = 2;
const PATH = "/v1/chat/completions";
const PROBE_PATH = "/v1/probe";

interface Row {
  readonly name: string;
  readonly wrk: WrkResult;
  readonly originServed: number;
  readonly proxyCores: number | null;
  readonly rssMiB: { idle: number; after: number } | null;
}

/**
 * A cheap test for the bodies a template stands for: the template's text around each marker,
 * where an 8-digit request number stands (so the offsets are fixed and no regex runs per body).
 */
function templateMatcher(template: string): (body: string) => boolean {
  const parts = template.split(TURN_MARKER);
  return (body) => {
    if (body.length !== template.length) return false;
    let at = 0;
    for (const [i, part] of parts.entries()) {
      if (i > 0) {
        for (let k = at; k < at + TURN_MARKER.length; k++) if (body.charCodeAt(k) < 48 || body.charCodeAt(k) > 57) return false;
        at += TURN_MARKER.length;
      }
      if (!body.startsWith(part, at)) return false;
      at += part.length;
    }
    return true;
  };
}

/** An origin that reads each body whole, checks it is one a template stands for, and answers a small completion. */
function startOrigin(templates: readonly string[]) {
  const wants = templates.map(templateMatcher);
  const reply = chatResponseBody();
  let served = 0;
  let wrongBodies = 0;
  const server = Bun.serve({
    hostname: HOST,
    port: 0,
    async fetch(req) {
      const body = await req.text();
      // The probes (a planted credential) go to their own path and are not counted.
      if (new URL(req.url).pathname === PROBE_PATH) return new Response(reply, { headers: { "content-type": "application/json" } });
      if (!wants.some((matches) => matches(body))) wrongBodies++;
      served++;
      return new Response(reply, { headers: { "content-type": "application/json" } });
    },
  });
  onCleanup("origin", () => server.stop(true));
  return { port: server.port ?? 0, served: () => served, wrongBodies: () => wrongBodies };
}

type Origin = ReturnType<typeof startOrigin>;

function checkRun(name: string, r: WrkResult, throughProxy: boolean): void {
  if (r.non2xx === 0 && socketErrorCount(r.socketErrors) === 0) return;
  const e = r.socketErrors;
  const what = `${name}: ${r.non2xx} non-2xx responses, socket errors connect ${e.connect} read ${e.read} write ${e.write} timeout ${e.timeout} (of ${r.requests} requests)`;
  if (throughProxy) loud(`${what}\n${r.raw}`);
  else notes.push(`direct run had errors (origin or load generator problem): ${what}`);
}

async function measure(o: { name: string; url: string; script: string; durationS: number; connections: number; origin: Origin; pid?: number; throughProxy: boolean }): Promise<Row> {
  const base = { url: o.url, connections: o.connections, threads: 1, script: o.script };
  process.stdout.write(`  ${o.name}: warm-up ${WARMUP_S}s`);
  checkRun(`${o.name} (warm-up)`, await runWrk({ ...base, durationS: WARMUP_S }), o.throughProxy);
  process.stdout.write(`, run ${o.durationS}s`);
  const servedBefore = o.origin.served();
  const cpuBefore = o.pid ? await cpuSeconds(o.pid) : 0;
  const t0 = performance.now();
  const wrk = await runWrk({ ...base, durationS: o.durationS });
  const wall = (performance.now() - t0) / 1000;
  const proxyCores = o.pid ? ((await cpuSeconds(o.pid)) - cpuBefore) / wall : null;
  const originServed = o.origin.served() - servedBefore;
  console.log(`: ${fmtInt(wrk.rps)} req/s, p99 ${fmt(wrk.p99Ms)} ms`);
  checkRun(o.name, wrk, o.throughProxy);
  const ok = wrk.requests - wrk.non2xx;
  if (originServed < ok) loud(`${o.name}: wrk counted ${ok} good responses but the origin served only ${originServed}`);
  return { name: o.name, wrk, originServed, proxyCores, rssMiB: null };
}

/** A credential from the rule pack's own examples (checksummed, not live), planted in a chat body. */
function plantedBody(): { body: string; rule: string } {
  const doc = parseYaml(readFileSync(join(ROOT, "rules/dlp/cloud.yaml"), "utf8")) as { rules: { id: string; examples: { match: string[] } }[] };
  const rule = doc.rules.find((r) => r.id === "dlp.aws-access-key-id");
  const example = rule?.examples.match[0];
  if (!example) throw new Error("rules/dlp/cloud.yaml has no dlp.aws-access-key-id match example");
  const body = JSON.parse(chatRequestBody()) as { messages: { role: string; content: string }[] };
  body.messages.push({ role: "user", content: `My config has ${example}, why does the SDK ignore it?` });
  return { body: JSON.stringify(body), rule: "dlp.aws-access-key-id" };
}

/** One POST with a planted credential through the proxy: the status and the rule sluice named. */
async function probe(proxyPort: number, url: string, body: string): Promise<{ status: number; rule: string | null }> {
  const res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json" }, proxy: `http://${HOST}:${proxyPort}` });
  await res.arrayBuffer();
  return { status: res.status, rule: res.headers.get("x-sluice-rule") };
}

async function main(): Promise<number> {
  const args = parseBenchArgs({ connections: "32" });
  const { durationS, ints } = args;
  const { connections } = ints;
  if (!locate("wrk").ok) throw new Error("wrk is not installed (apt-get install -y wrk)");
  await ensureBinary();

  const tmpDir = benchTempDir("sluice-bench-dlp-", args.keepTmp);
  const tmp = tmpDir.path;
  const workloads = [
    { key: "conversation", label: "conversation", template: chatRequestTemplate("last-turn") },
    { key: "fresh", label: "every message new", template: chatRequestTemplate("every-message") },
  ] as const;
  const bodyBytes = Buffer.byteLength(workloads[0].template);
  const rows: (Row & { workload: string })[] = [];
  const probes: { name: string; status: number; rule: string | null }[] = [];
  const audits: { name: string; http: number; allow: number; other: number; served: number }[] = [];

  await measureThenCleanUp(tmpDir, async () => {
    const origin = startOrigin(workloads.map((w) => w.template));
    const url = `http://${HOST}:${origin.port}${PATH}`;
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const script = (name: string, template: string, absolute: boolean) => writePostTemplateScript(tmp, name, url, template, TURN_MARKER, { absolute, headers });
    const planted = plantedBody();
    console.log(`origin ${url}; POST ~${bodyBytes} B application/json (chat completion), ${Buffer.byteLength(chatResponseBody())} B response`);
    console.log(`wrk -t1 -c${connections} -d${durationS}s --latency (+${WARMUP_S}s warm-up each); temp dir ${tmp}\n`);

    for (const w of workloads) {
      const row = await measure({ name: `direct (${w.label})`, url, script: script(`direct-${w.key}`, w.template, false), durationS, connections, origin, throughProxy: false });
      rows.push({ ...row, workload: w.key });
    }

    for (const [name, dlp] of [
      ["sluice (DLP on)", true],
      ["sluice (DLP off)", false],
    ] as const) {
      const dir = join(tmp, dlp ? "sluice-dlp" : "sluice-nodlp");
      const s = await startSluice(name, dir, { dlp });
      let served = 0;
      try {
        // The switch really does what it says, before anything is measured.
        const p = await probe(s.proxyPort, `http://${HOST}:${origin.port}${PROBE_PATH}`, planted.body);
        probes.push({ name, ...p });
        if (dlp && (p.status !== 403 || p.rule !== planted.rule)) loud(`${name}: a body with a planted ${planted.rule} got ${p.status} (rule ${p.rule}); expected 403 ${planted.rule}`);
        if (!dlp && p.status !== 200) loud(`${name}: a body with a planted ${planted.rule} got ${p.status} (rule ${p.rule}) with DLP off; expected 200`);
        const idle = await rssMiB(s.pid);
        // Without DLP nothing is scanned, so one workload is enough for the reference.
        for (const w of dlp ? workloads : workloads.slice(0, 1)) {
          const servedBefore = origin.served();
          const row = await measure({ name: `${name} (${w.label})`, url: `http://${HOST}:${s.proxyPort}/`, script: script(`proxy-${w.key}`, w.template, true), durationS, connections, origin, pid: s.pid, throughProxy: true });
          served += origin.served() - servedBefore;
          rows.push({ ...row, workload: w.key, rssMiB: { idle, after: await rssMiB(s.pid) } });
        }
      } finally {
        const code = await s.stop();
        if (code !== 0) loud(`${name} exited with ${code} on SIGTERM (expected 0)`);
        noteLogProblems(name, s.problems);
      }
      const counts = await countAudit(s.auditFile);
      // The probe is one record of its own (a block with DLP on, an allow with it off).
      const other = counts.block - (dlp ? 1 : 0);
      audits.push({ name, http: counts.http, allow: counts.allow, other, served });
      if (counts.http < served) loud(`${name} wrote ${counts.http} http decision records for ${served} requests the origin served through it`);
      if (other > 0 || counts.unparsable > 0) loud(`${name} audit: ${other} non-allow http records besides the probe, ${counts.unparsable} unparsable lines`);
      if (counts.oddities.length > 0) {
        notes.push(`${name} audit records other than "allow, 200" (the probe; status 0 = client left before the response, e.g. wrk stopping):\n    ${counts.oddities.map(([k, n]) => `${n}x ${k}`).join("\n    ")}`);
      }
    }
    if (origin.wrongBodies() > 0) loud(`the origin got ${origin.wrongBodies()} bodies that are none of the ones sent`);
  });

  // ---- report ------------------------------------------------------------------------------
  const directOf = (workload: string) => rows.find((r) => r.workload === workload && r.name.startsWith("direct"))?.wrk.rps ?? NaN;
  const ratio = (r: Row & { workload: string }) => r.wrk.rps / directOf(r.workload);
  const on = rows.find((r) => r.name === "sluice (DLP on) (conversation)");
  const onFresh = rows.find((r) => r.name === "sluice (DLP on) (every message new)");
  const off = rows.find((r) => r.name === "sluice (DLP off) (conversation)");
  console.log(`\nwrk -t1 -c${connections} -d${durationS}s, POST ~${bodyBytes} B JSON (a new body each request), absolute-form requests through sluice:\n`);
  printTable(
    ["name", "rps", "p50 ms", "p99 ms", "vs direct", "proxy CPU", "RSS idle -> after"],
    rows.map((r) => [
      r.name,
      fmtInt(r.wrk.rps),
      fmt(r.wrk.p50Ms),
      fmt(r.wrk.p99Ms),
      `${fmt(ratio(r))}x`,
      r.proxyCores === null ? "-" : `${fmt(r.proxyCores)} cores`,
      r.rssMiB === null ? "-" : `${fmt(r.rssMiB.idle, 1)} -> ${fmt(r.rssMiB.after, 1)} MB`,
    ]),
  );
  if (on && off) console.log(`\nDLP on / DLP off (conversation): ${fmt(on.wrk.rps / off.wrk.rps)}x rps, p99 ${fmt(on.wrk.p99Ms)} vs ${fmt(off.wrk.p99Ms)} ms`);
  if (onFresh) console.log(`worst case, every message new (nothing the engine read before comes back): ${fmt(ratio(onFresh))}x direct`);
  for (const p of probes) console.log(`probe with a planted ${"dlp.aws-access-key-id"} through ${p.name}: ${p.status}${p.rule ? ` (${p.rule})` : ""}`);
  for (const a of audits) console.log(`${a.name} decision records: ${fmtInt(a.http)} http (${fmtInt(a.allow)} allow) for ${fmtInt(a.served)} requests served through it`);

  const targets: Target[] = [
    {
      name: "sluice rps / direct, DLP on (POST ~1 KiB JSON, conversation)",
      value: on ? ratio(on) : null,
      unit: "x",
      goal: `>= ${fmt(TARGET_RATIO)}x`,
      pass: on ? ratio(on) >= TARGET_RATIO : null,
    },
  ];
  console.log("\ntargets:");
  printTargets(targets);
  printFindings([]);

  console.log(
    `\n${JSON.stringify({
      bench: "proxy-dlp",
      duration_s: durationS,
      warmup_s: WARMUP_S,
      connections,
      threads: 1,
      request_body_bytes: bodyBytes,
      results: rows.map((r) => ({
        name: r.name,
        rps: round(r.wrk.rps, 1),
        p50_ms: round(r.wrk.p50Ms),
        p99_ms: round(r.wrk.p99Ms),
        max_ms: round(r.wrk.maxMs),
        workload: r.workload,
        ratio: round(ratio(r)),
        requests: r.wrk.requests,
        non2xx: r.wrk.non2xx,
        socket_errors: r.wrk.socketErrors,
        origin_served: r.originServed,
        proxy_cpu_cores: round(r.proxyCores, 2),
        rss_mb: r.rssMiB && { idle: round(r.rssMiB.idle, 1), after: round(r.rssMiB.after, 1) },
      })),
      probes,
      audit: audits,
      targets: targetsJson(targets),
      errors: errorHeadlines(),
    })}`,
  );
  return errors.length > 0 ? 1 : 0;
}

await runBenchmark(main);
