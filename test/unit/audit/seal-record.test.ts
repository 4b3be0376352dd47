/**
 * sealRecord's fast path (members split around `hash`, serialised natively, sorting skipped for
 * sorted bodies, the chain's seq and prev merged in) against the plain definition: the RFC 8785
 * canonical JSON of the record without `hash`, its SHA-256, and the canonical JSON with it.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { canonicalJson } from "../../../src/audit/canonical-json.ts";
import { hashOfLine, sealRecord } from "../../../src/audit/log-format.ts";
import { mulberry32 } from "../../helpers/mulberry32.ts";

const NAMES = ["agent", "bytes_in", "client", "detail", "findings", "hash", "host", "kind", "prev", "seq", "status", "time", "verdict", "zeta", "Älter", "a", "h", "hasz", "i"];

function reference(body: Record<string, unknown>, chain?: { seq: number; prev: string }) {
  const without: Record<string, unknown> = { ...body, ...chain };
  delete without.hash;
  const canonical = canonicalJson(without);
  const hash = createHash("sha256").update(canonical).digest("hex");
  return { line: canonicalJson({ ...without, hash }), hash };
}

describe("sealRecord", () => {
  test("gives the canonical line and hash for random records, sorted or not, with and without the chain", () => {
    const rnd = mulberry32(20261127);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    for (let n = 0; n < 2000; n++) {
      const names = NAMES.filter(() => rnd() < 0.5);
      if (rnd() < 0.5) names.sort();
      else names.sort(() => rnd() - 0.5);
      const body: Record<string, unknown> = {};
      for (const k of names) {
        body[k] = pick([
          () => `v${n}"\\\u2028${k}`,
          () => Math.round(rnd() * 1e6) / 100,
          () => undefined,
          () => null,
          () => [{ z: 1, a: "x", m: [2, { y: true, b: null }] }],
          () => ({ rule: "dlp.x", location: "body", preview: "ab…" }),
        ])();
      }
      const chain = rnd() < 0.6 ? { seq: n, prev: createHash("sha256").update(String(n)).digest("hex") } : undefined;
      const sealed = sealRecord(body, chain);
      const want = reference(body, chain);
      expect(sealed.line).toBe(want.line);
      expect(sealed.hash).toBe(want.hash);
      expect(sealed.digest.toString("hex")).toBe(want.hash);
      expect(hashOfLine(sealed.line, sealed.hash)).toBe(sealed.hash);
    }
  });

  test("the chain's seq and prev win over a body's own, and a body's hash is never kept", () => {
    const sealed = sealRecord({ seq: 99, prev: "forged", hash: "forged", kind: "http" }, { seq: 3, prev: "p" });
    const line = JSON.parse(sealed.line) as Record<string, unknown>;
    expect(line).toEqual({ hash: sealed.hash, kind: "http", prev: "p", seq: 3 });
    expect(sealRecord({}).line).toBe(`{"hash":"${createHash("sha256").update("{}").digest("hex")}"}`);
  });
});
