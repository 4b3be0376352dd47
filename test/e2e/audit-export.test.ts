/**
 * audit.export through dist/sluice: every decision record goes, as the signed log has it, to a
 * syslog collector (RFC 5424 over UDP, and over TCP with octet counting) that the test runs on
 * loopback, and as an OTLP/JSON log line on stdout. Checked against the signed log itself: the
 * exported line is byte for byte the logged one, and a block is a warning.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import net from "node:net";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { auditTestConfig } from "../helpers/audit.ts";
import { curlThrough, startEchoOrigin, type EchoOrigin } from "../helpers/origins.ts";
import { BIN, launchSluice, tempDir } from "../helpers/sluice.ts";

const T = 60_000;
let echo: EchoOrigin;
beforeAll(async () => {
  echo = await startEchoOrigin();
});
afterAll(async () => {
  await echo?.stop();
});

/** RFC 5424 as sluice writes it: PRI, version 1, header fields, one SD element, BOM + the line. */
const SYSLOG = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[sluice@\d+(?: [a-z_]+="(?:[^"\\\]]|\\["\\\]])*")*\]) \uFEFF(.*)$/s;
const logLines = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), "utf8").trimEnd().split("\n"));

async function until<T>(get: () => T | undefined, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** Sends an allowed and a blocked request through a sluice exporting as configured; returns its log dir. */
async function traffic(exportYaml: string[], dir: string) {
  const s = await launchSluice({ configYaml: auditTestConfig({ denyLocalhost: true, audit: exportYaml }), dir });
  expect((await curlThrough(s.proxyUrl, `${echo.url}/exported-allowed`)).status).toBe(200);
  const port = new URL(echo.url).port;
  expect((await curlThrough(s.proxyUrl, `http://localhost:${port}/exported-refused`)).status).toBe(403);
  return s;
}

function checkSyslog(messages: string[], logged: string[]) {
  for (const path of ["/exported-allowed", "/exported-refused"]) {
    const line = logged.find((l) => l.includes(`"path":"${path}"`));
    expect(line).toBeDefined();
    const msg = messages.find((m) => m.endsWith(line!));
    expect(msg).toBeDefined();
    const m = SYSLOG.exec(msg!);
    expect(m).not.toBeNull();
    const record = JSON.parse(line!) as { seq: number; hash: string; verdict: string };
    // local3 (19) * 8 + warning (4) for the block, informational (6) for the allow.
    expect(Number(m![1])).toBe(19 * 8 + (record.verdict === "block" ? 4 : 6));
    expect(m![4]).toBe("sluice-test");
    expect(m![6]).toBe("http");
    expect(m![7]).toContain(`seq="${record.seq}"`);
    expect(m![7]).toContain(`hash="${record.hash}"`);
  }
}

describe("audit.export", () => {
  test(
    "syslog over UDP and OTLP on stdout carry each record exactly as the signed log has it",
    async () => {
      const received: string[] = [];
      const server = dgram.createSocket("udp4");
      server.on("message", (b) => received.push(b.toString("utf8")));
      await new Promise<void>((r) => server.bind(0, "127.0.0.1", () => r()));
      const dir = tempDir("slt-audit-export-udp-");
      const s = await traffic([`export: { syslog: { address: "127.0.0.1:${server.address().port}", facility: local3, app_name: sluice-test }, stdout: otlp }`], dir);
      try {
        // Both records (and the start record before them) are on stdout once the refused one is.
        const otlp = await until(() => {
          const found = s.lines.filter((l) => "resourceLogs" in l);
          return found.some((l) => JSON.stringify(l).includes("/exported-refused")) ? found : undefined;
        }, "the refused request's OTLP line on stdout");
        expect(await s.stop()).toBe(0);
        const logged = logLines(join(dir, "log"));
        await until(() => (received.some((m) => m.includes("/exported-refused")) ? true : undefined), "the block over syslog");
        checkSyslog(received, logged);
        // OTLP: the body is the logged line; seq is an int as a string, a block is WARN.
        type Otlp = { resourceLogs: { scopeLogs: { logRecords: { body: { stringValue: string }; severityNumber: number; attributes: { key: string; value: Record<string, string> }[] }[] }[] }[] };
        const records = (otlp as unknown as Otlp[]).map((o) => o.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!);
        const refused = records.find((r) => r.body.stringValue.includes('"path":"/exported-refused"'));
        expect(refused).toBeDefined();
        expect(logged).toContain(refused!.body.stringValue);
        expect(refused!.severityNumber).toBe(13);
        const seq = (JSON.parse(refused!.body.stringValue) as { seq: number }).seq;
        expect(refused!.attributes.find((a) => a.key === "sluice.seq")?.value).toEqual({ intValue: String(seq) });
      } finally {
        await s.stop();
        server.close();
      }
    },
    T,
  );

  test(
    "syslog over TCP: octet-counted frames, one record each",
    async () => {
      let buffered = Buffer.alloc(0);
      const messages: string[] = [];
      const server = net.createServer((sock) =>
        sock.on("data", (d: Buffer) => {
          buffered = Buffer.concat([buffered, d]);
          for (;;) {
            const sp = buffered.indexOf(0x20);
            if (sp < 0) break;
            const len = Number(buffered.subarray(0, sp).toString("ascii"));
            expect(Number.isInteger(len) && len > 0).toBe(true);
            if (buffered.length < sp + 1 + len) break;
            messages.push(buffered.subarray(sp + 1, sp + 1 + len).toString("utf8"));
            buffered = buffered.subarray(sp + 1 + len);
          }
        }),
      );
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      const dir = tempDir("slt-audit-export-tcp-");
      const port = (server.address() as net.AddressInfo).port;
      const s = await traffic([`export: { syslog: { address: "127.0.0.1:${port}", protocol: tcp, facility: local3, app_name: sluice-test } }`], dir);
      try {
        await until(() => (messages.some((m) => m.includes("/exported-refused")) ? true : undefined), "the block over TCP");
        expect(await s.stop()).toBe(0);
        checkSyslog(messages, logLines(join(dir, "log")));
        // Nothing but OTLP would be on stdout, and it is off here.
        expect(s.lines.some((l) => "resourceLogs" in l)).toBe(false);
      } finally {
        await s.stop();
        server.close();
      }
    },
    T,
  );

  test(
    "OTLP on stdout carries the tree heads too: what a pipeline collected verifies as the log does (audit verify --otlp), and a change to it shows",
    async () => {
      const dir = tempDir("slt-audit-export-otlp-verify-");
      const s = await traffic(["export: { stdout: otlp }", "checkpoint_every: { records: 2 }"], dir);
      expect((await curlThrough(s.proxyUrl, `${echo.url}/exported-third`)).status).toBe(200);
      expect(await s.stop()).toBe(0);
      const collected = s.lines.filter((l) => "resourceLogs" in l).map((l) => JSON.stringify(l));
      type Body = { resourceLogs: { scopeLogs: { logRecords: { body: { stringValue: string } }[] }[] }[] };
      const bodies = collected.map((l) => (JSON.parse(l) as Body).resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.body.stringValue);
      const firstHeadIndex = () => bodies.findIndex((b) => b.includes('"kind":"tree_head"'));
      // Exactly the log, in its order: records and tree heads (the closing one included).
      expect(bodies).toEqual(logLines(join(dir, "log")));
      expect(bodies.filter((b) => b.includes('"kind":"tree_head"')).length).toBeGreaterThan(1);
      const pub = join(dir, "pub.pem");
      writeFileSync(pub, Bun.spawnSync([BIN, "audit", "pubkey"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLUICE_HOME: s.home } }).stdout);
      const verify = (lines: string[]) => {
        const file = join(dir, `collected-${Math.random().toString(36).slice(2)}.jsonl`);
        writeFileSync(file, `${lines.join("\n")}\n`);
        const r = Bun.spawnSync([BIN, "audit", "verify", "--otlp", file, "--pubkey", pub], { stdout: "pipe", stderr: "pipe" });
        return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
      };
      // sluice's own log lines mixed in (kubectl logs gives stdout and stderr as one stream): skipped.
      const ok = verify([JSON.stringify({ level: "info", msg: "sluice ready" }), ...collected]);
      expect([ok.code, ok.err]).toEqual([0, expect.stringContaining("skipped 1 line(s)")]);
      expect(ok.out).toContain("result:     ok");
      // One record changed in the collection (allow made block): modified, at its seq.
      const i = bodies.findIndex((b) => b.includes("/exported-allowed"));
      const changed = [...collected];
      changed[i] = changed[i]!.replace(String.raw`\"verdict\":\"allow\"`, String.raw`\"verdict\":\"block\"`);
      expect(changed[i]).not.toBe(collected[i]);
      const tampered = verify(changed);
      expect(tampered.code).toBe(1);
      expect(tampered.out).toContain("TAMPERED: modified");
      // One line dropped: the chain breaks there.
      expect(verify(collected.filter((_, k) => k !== i)).code).toBe(1);
      // As a pipeline delivers: out of order, some lines twice, another service's record in between.
      const foreign = JSON.stringify({ resourceLogs: [{ resource: { attributes: [] }, scopeLogs: [{ scope: { name: "other.app" }, logRecords: [{ body: { stringValue: "hello" } }] }] }] });
      const shuffled = [...collected].reverse();
      const delivered = verify([...shuffled.slice(0, 2), foreign, ...shuffled, collected[0]!]);
      expect(delivered.code).toBe(0);
      expect(delivered.out).toContain("result:     ok");
      // A collection whose start was not kept: checked from its first tree head on.
      const secondHead = bodies.findIndex((b, k) => k > firstHeadIndex() && b.includes('"kind":"tree_head"'));
      const late = verify(collected.slice(firstHeadIndex() + 1));
      expect([late.code, late.out]).toEqual([0, expect.stringContaining("the first tree head collected")]);
      expect(late.out).toContain(`from:       seq ${JSON.parse(bodies[secondHead]!).seq}`);
      // ... and a record changed after it still shows.
      const lateChanged = collected.slice(firstHeadIndex() + 1);
      const last = lateChanged.findLastIndex((l) => !l.includes(String.raw`\"kind\":\"tree_head\"`) && l.includes(String.raw`\"verdict\":\"allow\"`));
      expect(last).toBeGreaterThan(0);
      lateChanged[last] = lateChanged[last]!.replace(String.raw`\"verdict\":\"allow\"`, String.raw`\"verdict\":\"block\"`);
      const lateTampered = verify(lateChanged);
      expect([lateTampered.code, lateTampered.out]).toEqual([1, expect.stringContaining("TAMPERED: modified")]);
      // A head to begin from that the key did not sign (its frontier rewritten): refused.
      const forged = collected.slice(firstHeadIndex() + 1);
      const start = forged.findIndex((l) => l.includes(String.raw`\"kind\":\"tree_head\"`));
      forged[start] = forged[start]!.replace(/\\"frontier\\":\[\\"[0-9a-f]/, (m) => `${m.slice(0, -1)}${m.endsWith("0") ? "1" : "0"}`);
      expect(verify(forged.slice(start)).code).toBe(1);
      // Records before the first tree head, alone: a chain anyone could have made from genesis,
      // nothing in it vouched for by the key: a failure.
      const firstHead = firstHeadIndex();
      expect(firstHead).toBeGreaterThan(0);
      const unsigned = verify(collected.slice(0, firstHead));
      expect(unsigned.code).toBe(1);
      expect(unsigned.out).toContain("no signed tree head");
      // Not OTLP, or no --pubkey: unreadable / usage (2).
      expect(verify(["not json"]).code).toBe(2);
      expect(Bun.spawnSync([BIN, "audit", "verify", "--otlp", pub]).exitCode).toBe(2);
    },
    T,
  );

  test("a collector address that is not ip:port, an unknown facility: the config is refused", async () => {
    const dir = tempDir("slt-audit-export-bad-");
    for (const [yaml, why] of [
      ['export: { syslog: { address: "logs.example:514" } }', "not a collector address"],
      ['export: { syslog: { address: "127.0.0.1:514", facility: local9 } }', "facility"],
      ["export: { stdout: json }", "stdout"],
    ] as const) {
      writeFileSync(join(dir, "sluice.yaml"), auditTestConfig({ audit: [yaml] }));
      const r = Bun.spawnSync([BIN, "check-config", join(dir, "sluice.yaml")]);
      expect([yaml, r.exitCode]).toEqual([yaml, 1]);
      expect(r.stderr.toString() + r.stdout.toString()).toContain(why);
    }
  });
});
