/**
 * WebSocket relay benchmark: Bun's WebSocket client against a Bun.serve echo origin, straight
 * and through dist/sluice, measured in the same run:
 *
 * - wss:// through an intercepted tunnel (tls.intercept, DLP and injection scanning on, the
 *   defaults), against wss:// straight to the origin;
 * - round trips per second of --size byte JSON messages (a chat-like payload: clean text), with
 *   --connections sockets each keeping one message in flight, for --duration seconds;
 * - one-way throughput of 64 KiB messages (the origin answers each with a short ack), MB/s.
 *
 *   bun bench/websocket.ts [--duration 5] [--connections 16] [--size 1024]
 *
 * Prints the figures, ratios against direct, and one JSON line. No target is set by an issue;
 * the ratio is the figure to watch.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createCa } from "../src/proxy/tls-ca.ts";
import { fmt, printTable } from "./lib/report.ts";
import { ensureBinary, launchSluice } from "./lib/sluice.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { duration: { type: "string", default: "5" }, connections: { type: "string", default: "16" }, size: { type: "string", default: "1024" } },
  strict: true,
});
const durationS = Number(values.duration);
const connections = Number(values.connections);
const size = Number(values.size);
if (!(durationS > 0) || !Number.isInteger(connections) || connections < 1 || !Number.isInteger(size) || size < 16) {
  console.error("--duration seconds > 0, --connections an integer >= 1, --size an integer >= 16");
  process.exit(1);
}

await ensureBinary();
const dir = mkdtempSync(join(tmpdir(), "sluice-bench-ws-"));
const originCa = await createCa(() => Date.now(), { commonName: "bench origin CA" });
const leaf = await originCa.mint("127.0.0.1");
const origin = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  tls: { cert: leaf.certPem, key: leaf.keyPem },
  fetch(req, server) {
    return server.upgrade(req, { data: undefined }) ? undefined : new Response("not a websocket", { status: 400 });
  },
  websocket: {
    // Big messages are acknowledged, not echoed: the one-way figure measures one way.
    message: (ws, m) => void ws.send(typeof m === "string" && m.length < 4096 ? m : "ack"),
  },
});
writeFileSync(join(dir, "origin-ca.pem"), originCa.certPem);
const sluice = await launchSluice({
  name: "sluice-ws",
  dir,
  config: (auditFile) =>
    `version: 1\nproxy: { listen: "127.0.0.1:0", require_agent: false }\nadmin: { listen: "127.0.0.1:0" }\negress:\n  allow: ["127.0.0.1"]\n  ports: { connect: ["1-65535"], http: ["1-65535"] }\n  trusted_cidrs: [127.0.0.1/32]\ntls:\n  intercept: true\n  extra_ca_files: [${JSON.stringify(join(dir, "origin-ca.pem"))}]\naudit: { file: ${JSON.stringify(auditFile)} }\n`,
});
const proxy = `http://${String(sluice.ready.proxy)}`;
const sluiceCa = readFileSync(join(dir, "home", "ca.pem"), "utf8");
const url = `wss://127.0.0.1:${origin.port}/bench`;

type Options = { proxy?: string; tls: { ca: string } };
async function open(opts: Options): Promise<WebSocket> {
  const ws = new WebSocket(url, opts as unknown as string[]);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("WebSocket failed to open"));
  });
  return ws;
}

/** A clean chat-like JSON message of about `size` bytes. */
const MESSAGE = JSON.stringify({ type: "message", id: 1, text: "The build finished; 42 tests passed and the report is ready for review. ".repeat(Math.ceil(size / 72)).slice(0, size - 40) });

/** Round trips per second over `connections` sockets, one message in flight on each. */
async function roundTrips(opts: Options, seconds: number): Promise<{ rate: number; failed: number }> {
  const sockets = await Promise.all(Array.from({ length: connections }, () => open(opts)));
  const until = performance.now() + seconds * 1000;
  let done = 0;
  let failed = 0;
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          ws.onmessage = (e) => {
            if (e.data === MESSAGE) done++;
            else failed++;
            if (performance.now() < until) ws.send(MESSAGE);
            else resolve();
          };
          ws.onclose = () => {
            failed++;
            resolve();
          };
          ws.send(MESSAGE);
        }),
    ),
  );
  for (const ws of sockets) ws.close();
  return { rate: done / seconds, failed };
}

/** MB/s of 64 KiB messages one way, acknowledged one by one, on one socket. */
async function oneWay(opts: Options, seconds: number): Promise<{ mbps: number; failed: number }> {
  const big = "y".repeat(64 * 1024);
  const ws = await open(opts);
  const until = performance.now() + seconds * 1000;
  let bytes = 0;
  let failed = 0;
  await new Promise<void>((resolve) => {
    ws.onmessage = (e) => {
      if (e.data === "ack") bytes += big.length;
      else failed++;
      if (performance.now() < until) ws.send(big);
      else resolve();
    };
    ws.onclose = () => {
      failed++;
      resolve();
    };
    ws.send(big);
  });
  ws.close();
  return { mbps: bytes / seconds / 1e6, failed };
}

const direct: Options = { tls: { ca: originCa.certPem } };
const via: Options = { proxy, tls: { ca: sluiceCa } };
await roundTrips(direct, 1);
const rtDirect = await roundTrips(direct, durationS);
await roundTrips(via, 1);
const rtVia = await roundTrips(via, durationS);
const owDirect = await oneWay(direct, durationS);
const owVia = await oneWay(via, durationS);
await sluice.stop();
origin.stop(true);
rmSync(dir, { recursive: true, force: true });

console.log(`\nwss://, ${size}-byte JSON messages, ${connections} sockets with one message in flight each, ${durationS} s:`);
printTable(
  ["path", "round trips/s", "failed", "x direct"],
  [
    ["direct to the origin", fmt(rtDirect.rate, 0), String(rtDirect.failed), "1"],
    ["through sluice, intercepted (DLP + injection on)", fmt(rtVia.rate, 0), String(rtVia.failed), fmt(rtVia.rate / rtDirect.rate, 3)],
  ],
);
console.log(`\nwss://, 64 KiB messages one way on one socket, each acknowledged, ${durationS} s:`);
printTable(
  ["path", "MB/s", "failed", "x direct"],
  [
    ["direct to the origin", fmt(owDirect.mbps, 1), String(owDirect.failed), "1"],
    ["through sluice, intercepted (DLP on each message)", fmt(owVia.mbps, 1), String(owVia.failed), fmt(owVia.mbps / owDirect.mbps, 3)],
  ],
);
console.log(
  `\n${JSON.stringify({
    bench: "websocket",
    size,
    connections,
    duration_s: durationS,
    round_trips: { direct: Math.round(rtDirect.rate), via: Math.round(rtVia.rate), ratio: Number((rtVia.rate / rtDirect.rate).toFixed(3)), failed: rtDirect.failed + rtVia.failed },
    one_way_mbps: { direct: Number(owDirect.mbps.toFixed(1)), via: Number(owVia.mbps.toFixed(1)), ratio: Number((owVia.mbps / owDirect.mbps).toFixed(3)), failed: owDirect.failed + owVia.failed },
  })}`,
);
