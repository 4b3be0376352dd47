/**
 * `sluice audit show`, `receipt` and `verify-proof` through dist/sluice, on a log written by a
 * real `sluice run` (one allowed and one blocked request): filters, usage errors, and a receipt
 * checked offline against the exported public key, failing once it is tampered with.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { curlThrough, startEchoOrigin, type EchoOrigin } from "../helpers/origins.ts";
import { auditTestConfig, runSluice } from "../helpers/audit.ts";
import { launchSluice, tempDir } from "../helpers/sluice.ts";

const T = 60_000;
const dir = tempDir("slt-audit-show-");
const home = join(dir, "home");
const logDir = join(dir, "log");
let echo: EchoOrigin;

const config = auditTestConfig({ denyLocalhost: true, audit: ["checkpoint_every: { records: 2 }"] });
const run = (args: string[], stdin?: string) => runSluice(home, args, stdin);
const logLines = () =>
  readdirSync(logDir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()
    .flatMap((f) => readFileSync(join(logDir, f), "utf8").trimEnd().split("\n"));

beforeAll(async () => {
  echo = await startEchoOrigin();
  const s = await launchSluice({ configYaml: config, dir });
  expect((await curlThrough(s.proxyUrl, `${echo.url}/allowed`)).status).toBe(200);
  const port = new URL(echo.url).port;
  expect((await curlThrough(s.proxyUrl, `http://localhost:${port}/refused`)).status).toBe(403);
  expect(await s.stop()).toBe(0);
}, T);
afterAll(async () => {
  await echo?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("sluice audit show", () => {
  test("a table of the decisions, tree heads left out unless asked", () => {
    const r = run(["audit", "show", logDir]);
    expect(r.code).toBe(0);
    const [header, ...rows] = r.out.trimEnd().split("\n");
    expect(header).toMatch(/^TIME +SEQ +KIND +AGENT +VERDICT +RULE +TARGET$/);
    expect(rows.some((l) => / http .* allow .*GET 127\.0\.0\.1:\d+\/allowed$/.test(l))).toBe(true);
    expect(rows.some((l) => / http .* block +egress\.deny-host +GET localhost:\d+\/refused$/.test(l))).toBe(true);
    expect(rows.some((l) => l.includes("lifecycle.start"))).toBe(true);
    expect(rows.some((l) => l.includes("tree_head"))).toBe(false);
    const all = run(["audit", "show", logDir, "--tree-heads"]).out;
    expect(all).toContain(" tree_head ");
    expect(all.trimEnd().split("\n").length - 1).toBe(logLines().length);
  });

  test("--json prints the matching lines exactly as logged; filters by verdict, rule, agent and time", () => {
    const lines = logLines();
    const json = run(["audit", "show", logDir, "--json"]);
    expect(json.code).toBe(0);
    const shown = json.out.trimEnd().split("\n");
    expect(shown).toEqual(lines.filter((l) => !l.includes('"kind":"tree_head"')));

    const blocked = run(["audit", "show", logDir, "--json", "--verdict", "block"]).out.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(blocked.length).toBe(1);
    expect(blocked[0]).toMatchObject({ kind: "http", verdict: "block", rule: "egress.deny-host", path: "/refused" });
    expect(run(["audit", "show", logDir, "--json", "--rule", "egress.deny-host"]).out).toBe(`${lines.find((l) => l.includes('"rule":"egress.deny-host"'))}\n`);
    expect(run(["audit", "show", logDir, "--json", "--rule", "lifecycle.*"]).out.trimEnd().split("\n").map((l) => (JSON.parse(l) as { rule: string }).rule)).toEqual(["lifecycle.start", "lifecycle.stop"]);

    const agent = blocked[0]!.agent as string;
    expect(run(["audit", "show", logDir, "--json", "--agent", agent, "--verdict", "block"]).out.trimEnd().split("\n").length).toBe(1);
    const nobody = run(["audit", "show", logDir, "--agent", "nobody-at-all"]);
    expect([nobody.code, nobody.out, nobody.err]).toEqual([0, "", "sluice audit show: no records match\n"]);

    const t = Date.parse(blocked[0]!.time as string);
    const iso = (ms: number) => new Date(ms).toISOString();
    const since = run(["audit", "show", logDir, "--json", "--since", iso(t)]).out.trimEnd().split("\n").map((l) => JSON.parse(l) as { time: string });
    expect(since.length).toBeGreaterThan(0);
    expect(since.every((r) => Date.parse(r.time) >= t)).toBe(true);
    const until = run(["audit", "show", logDir, "--json", "--until", iso(t)]).out.trimEnd().split("\n").map((l) => JSON.parse(l) as { time: string });
    expect(until.every((r) => Date.parse(r.time) < t)).toBe(true);
    expect(until.length + since.length).toBe(shown.length);
    expect(run(["audit", "show", logDir, "--since", "1d"]).out.split("\n").length).toBeGreaterThan(2);
    expect(run(["audit", "show", logDir, "--until", "1d"]).out).toBe("");
  });

  test("usage errors exit 2 and say what is wrong; a missing log too", () => {
    const cases: [string[], RegExp][] = [
      [[logDir, "--since", "yesterday"], /--since 'yesterday' is not a time/],
      [[logDir, "--until", "2026-02-30T99:00"], /--until '2026-02-30T99:00' is not a time/],
      [[logDir, "--verdict", "maybe"], /--verdict 'maybe' is not one of allow, block, redact, warn/],
      [[logDir, "--since", "1h", "--until", "2h"], /--since must be before --until/],
      [[logDir, "--colour"], /colour/],
      [[logDir, logDir], /at most one DIR/],
      [[join(dir, "nowhere")], /cannot read/],
    ];
    for (const [args, why] of cases) {
      const r = run(["audit", "show", ...args]);
      expect([args, r.code]).toEqual([args, 2]);
      expect(r.err).toMatch(why);
    }
  });
});

describe("sluice audit receipt and verify-proof", () => {
  test("the blocked request's receipt verifies offline with the exported key, and fails once changed", () => {
    const pub = run(["audit", "pubkey"]);
    expect(pub.code).toBe(0);
    const pubFile = join(dir, "sluice.pub");
    writeFileSync(pubFile, pub.out);

    const blocked = JSON.parse(run(["audit", "show", logDir, "--json", "--verdict", "block"]).out) as { seq: number; hash: string };
    const made = run(["audit", "receipt", String(blocked.seq), logDir]);
    expect(made.err).toBe("");
    expect(made.code).toBe(0);
    const receipt = JSON.parse(made.out) as { type: string; record: { seq: number; hash: string; verdict: string }; leaf_index: number; audit_path: string[]; tree_head: { tree_size: number; root: string; key_id: string; sig: string } };
    const lines = logLines();
    const lastHead = JSON.parse(lines.at(-1)!) as { tree_size: number; root: string; sig: string };
    expect(receipt).toMatchObject({ type: "sluice.receipt.v1", leaf_index: blocked.seq, record: { hash: blocked.hash, verdict: "block" }, tree_head: { tree_size: lastHead.tree_size, root: lastHead.root, sig: lastHead.sig } });
    expect(receipt.audit_path.length).toBeGreaterThan(0);

    const file = join(dir, "receipt.json");
    writeFileSync(file, made.out);
    const ok = run(["audit", "verify-proof", file, "--pubkey", pubFile]);
    expect(ok.out).toContain(`ok: seq ${blocked.seq} (http, block, egress.deny-host) is leaf ${blocked.seq} of the tree of ${lastHead.tree_size}`);
    expect(ok.code).toBe(0);
    // From stdin, as JSON.
    const piped = run(["audit", "verify-proof", "-", "--pubkey", pubFile, "--json"], made.out);
    expect(JSON.parse(piped.out)).toMatchObject({ ok: true, seq: blocked.seq });

    // The record says "allow" now: its hash no longer matches.
    writeFileSync(file, made.out.replace('"verdict": "block"', '"verdict": "allow"'));
    const edited = run(["audit", "verify-proof", file, "--pubkey", pubFile]);
    expect(edited.out).toContain("FAILED: the record's hash");
    expect(edited.code).toBe(1);

    // Another key did not sign it.
    const foreign = join(dir, "foreign.pub");
    writeFileSync(foreign, generateKeyPairSync("ed25519").publicKey.export({ format: "pem", type: "spki" }) as string);
    writeFileSync(file, made.out);
    const wrongKey = run(["audit", "verify-proof", file, "--pubkey", foreign]);
    expect(wrongKey.out).toContain("not the trusted key");
    expect(wrongKey.code).toBe(1);

    const noKey = run(["audit", "verify-proof", file]);
    expect([noKey.code, noKey.err]).toEqual([2, expect.stringContaining("needs --pubkey") as unknown as string]);
    writeFileSync(join(dir, "junk.json"), "{not json");
    expect(run(["audit", "verify-proof", join(dir, "junk.json"), "--pubkey", pubFile]).code).toBe(2);
    writeFileSync(join(dir, "other.json"), '{"type":"something else"}');
    const other = run(["audit", "verify-proof", join(dir, "other.json"), "--pubkey", pubFile]);
    expect([other.code, other.err]).toEqual([2, expect.stringContaining("not a sluice receipt") as unknown as string]);
  });

  test("no receipt for a record no tree head covers, a seq not in the log, or a bad SEQ", () => {
    const lastSeq = logLines().length - 1;
    const uncovered = run(["audit", "receipt", String(lastSeq), logDir]);
    expect(uncovered.err).toContain(`seq ${lastSeq} is not covered by a signed tree head yet`);
    expect(uncovered.code).toBe(1);
    const absent = run(["audit", "receipt", "100000", logDir]);
    expect([absent.code, absent.err]).toEqual([1, "sluice audit receipt: no record with seq 100000 in the log\n"]);
    for (const bad of ["-1", "1.5", "seven"]) {
      const r = run(["audit", "receipt", bad, logDir]);
      expect([bad, r.code]).toEqual([bad, 2]);
    }
    expect(run(["audit", "receipt"]).code).toBe(2);
    expect(run(["audit", "receipt", "0", join(dir, "nowhere")]).code).toBe(2);
  });
});
