/**
 * Receipts from a running dist/sluice: a block response names its receipt (x-sluice-receipt and
 * the body's `receipt`), the record carries the same id, and `GET /v1/receipts/:id` returns the
 * record with its inclusion proof at once (a tree head is signed on demand), which verifies
 * offline with the exported public key. Bad and unknown ids, and no token, are refused.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { auditTestConfig, runSluice } from "../helpers/audit.ts";
import { curlThrough, startEchoOrigin, type EchoOrigin } from "../helpers/origins.ts";
import { startSluice, tempDir, type Running } from "../helpers/sluice.ts";

const T = 60_000;
const RECEIPT = /^[0-9a-f]{12}-[0-9a-z]+$/;
const dir = tempDir("slt-audit-receipts-");
let echo: EchoOrigin;
let s: Running;

beforeAll(async () => {
  echo = await startEchoOrigin();
  s = await startSluice(auditTestConfig({ denyLocalhost: true }), { dir });
}, T);
afterAll(async () => {
  await s?.stop();
  await echo?.stop();
});

const admin = (path: string, token: string | null = s.adminToken) => fetch(`${s.adminUrl}${path}`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });

describe("receipts of a running sluice", () => {
  test(
    "a block names its receipt; the admin API returns the record with a proof that verifies offline",
    async () => {
      const port = new URL(echo.url).port;
      const refused = await curlThrough(s.proxyUrl, `http://localhost:${port}/refused`);
      expect(refused.status).toBe(403);
      const id = refused.headers.get("x-sluice-receipt");
      expect(id).toMatch(RECEIPT);
      expect(JSON.parse(refused.body.toString())).toMatchObject({ rule: "egress.deny-host", receipt: id });
      // Two decisions, two ids.
      const again = await curlThrough(s.proxyUrl, `http://localhost:${port}/refused-again`);
      expect(again.headers.get("x-sluice-receipt")).toMatch(RECEIPT);
      expect(again.headers.get("x-sluice-receipt")).not.toBe(id);

      // Asked for at once: the record is neither on disk nor signed yet by the default checkpoints.
      const res = await admin(`/v1/receipts/${id}`);
      expect(res.status).toBe(200);
      const receipt = (await res.json()) as { type: string; record: Record<string, unknown>; tree_head: { tree_size: number } };
      expect(receipt).toMatchObject({ type: "sluice.receipt.v1", record: { receipt: id, verdict: "block", rule: "egress.deny-host", path: "/refused" } });
      expect(receipt.tree_head.tree_size).toBeGreaterThan(receipt.record.seq as number);

      const pub = runSluice(s.home, ["audit", "pubkey"]);
      expect(pub.code).toBe(0);
      writeFileSync(join(dir, "sluice.pub"), pub.out);
      writeFileSync(join(dir, "receipt.json"), JSON.stringify(receipt));
      const checked = runSluice(s.home, ["audit", "verify-proof", join(dir, "receipt.json"), "--pubkey", join(dir, "sluice.pub")]);
      expect(checked.out).toContain(`ok: seq ${receipt.record.seq} (http, block, egress.deny-host)`);
      expect(checked.code).toBe(0);

      // The same receipt from the command line, by id.
      const cli = runSluice(s.home, ["audit", "receipt", id!, join(dir, "log")]);
      expect(cli.code).toBe(0);
      expect((JSON.parse(cli.out) as { record: { receipt: string } }).record.receipt).toBe(id as string);
    },
    T,
  );

  test("an allowed exchange's record carries a receipt id too; refusals of the API are clear", async () => {
    expect((await curlThrough(s.proxyUrl, `${echo.url}/allowed`)).status).toBe(200);
    // audit.file is off here: the record is read back through the API.
    const decisions = (await (await admin("/v1/decisions?limit=5")).json()) as { decisions: { path?: string; receipt?: string }[] };
    const allowed = decisions.decisions.find((d) => d.path === "/allowed");
    expect(allowed?.receipt).toMatch(RECEIPT);

    expect((await admin(`/v1/receipts/${allowed!.receipt}`, null)).status).toBe(401);
    const bad = await admin("/v1/receipts/not-a-receipt");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toContain("not a receipt id");
    const unknown = await admin("/v1/receipts/000000000000-zz");
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toBe("no record with receipt 000000000000-zz in the log");
  }, T);
});
