/**
 * What the flight recorder costs the proxy (issue 8: "the proxy benchmark with audit on stays
 * within 10% of audit off"). bench:proxy's workload (wrk GET of 1 KiB responses through sluice,
 * absolute-form) against dist/sluice, and against a reference binary built from the same source
 * without the recorder (build.ts `auditOff`, written to dist/bench/, never shipped). The two are
 * run in turn, `rounds` times each, and compared by their medians.
 */
import { join } from "node:path";
import { build } from "../../build.ts";
import { HOST } from "./net.ts";
import { onCleanup } from "./procs.ts";
import { cpuSeconds } from "./procfs.ts";
import { ensureBinary, ROOT, startSluice } from "./sluice.ts";
import { runWrk, socketErrorCount, writeProxyScript } from "./wrk.ts";

const AUDIT_OFF_BIN = join(ROOT, "dist/bench/sluice-audit-off");

export interface AuditProxyResult {
  readonly onRps: number[];
  readonly offRps: number[];
  readonly onCores: number[];
  readonly ratio: number;
  readonly errors: string[];
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function measureAuditProxy(opts: { tmp: string; durationS: number; rounds: number; connections: number }): Promise<AuditProxyResult> {
  await ensureBinary();
  await build({ outfile: AUDIT_OFF_BIN, auditOff: true });
  const body = new Uint8Array(1024).fill(0x61);
  const server = Bun.serve({ hostname: HOST, port: 0, fetch: () => new Response(body, { headers: { "content-type": "application/octet-stream" } }) });
  onCleanup("audit-proxy origin", () => server.stop(true));
  const url = `http://${HOST}:${server.port}/item`;
  const script = writeProxyScript(opts.tmp, "audit-proxy", url);
  const errors: string[] = [];
  const onRps: number[] = [];
  const offRps: number[] = [];
  const onCores: number[] = [];
  try {
    for (let round = 0; round < opts.rounds; round++) {
      for (const on of [false, true]) {
        const name = on ? "audit on" : "audit off";
        const s = await startSluice(`sluice (${name})`, join(opts.tmp, `audit-proxy-${round}-${on ? "on" : "off"}`), on ? {} : { bin: AUDIT_OFF_BIN });
        try {
          const base = { url: `http://${HOST}:${s.proxyPort}/`, connections: opts.connections, threads: 1, script };
          await runWrk({ ...base, durationS: 2 });
          const cpu0 = await cpuSeconds(s.pid);
          const t0 = performance.now();
          const r = await runWrk({ ...base, durationS: opts.durationS });
          const cores = ((await cpuSeconds(s.pid)) - cpu0) / ((performance.now() - t0) / 1000);
          if (r.non2xx > 0 || socketErrorCount(r.socketErrors) > 0) errors.push(`${name}, round ${round + 1}: ${r.non2xx} non-2xx, ${socketErrorCount(r.socketErrors)} socket errors`);
          (on ? onRps : offRps).push(r.rps);
          if (on) onCores.push(cores);
          console.log(`  proxy, ${name}, round ${round + 1}: ${Math.round(r.rps).toLocaleString("en-US")} req/s, ${cores.toFixed(2)} cores`);
        } finally {
          await s.stop();
        }
      }
    }
  } finally {
    server.stop(true);
  }
  return { onRps, offRps, onCores, ratio: median(onRps) / median(offRps), errors };
}
