import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createUpstreamClient, MAX_OUTSTANDING } from "../../../src/dns/upstream.ts";
import { startFakeDns, type FakeDns } from "../../helpers/fake-dns.ts";

let fake: FakeDns;
beforeAll(async () => {
  fake = await startFakeDns({
    names: {
      "ok.test": { answers: [{ type: "A", data: "192.0.2.1" }] },
      "big.test": { answers: [{ type: "A", data: "192.0.2.2" }], truncate: true },
      "fail.test": { rcode: "SERVFAIL" },
    },
    unknown: { silent: true },
  });
});
afterAll(async () => {
  await fake?.stop();
});

describe("createUpstreamClient", () => {
  const up = () => [{ hostname: "127.0.0.1", port: fake.port }];

  test("each query goes out from a port of its own", async () => {
    const c = createUpstreamClient();
    fake.resetQueries();
    await Promise.all([c.exchange("ok.test", "A", up(), { timeoutMs: 2000, attempts: 1 }), c.exchange("ok.test", "AAAA", up(), { timeoutMs: 2000, attempts: 1 })]);
    const ports = fake.queries().map((q) => q.from.port);
    expect(ports.length).toBe(2);
    expect(ports[0]).not.toBe(ports[1]);
    c.close();
  });

  test("a truncated answer is asked again over TCP", async () => {
    const c = createUpstreamClient();
    const r = await c.exchange("big.test", "A", up(), { timeoutMs: 2000, attempts: 1 });
    expect(r.answers.map((a) => a.type === "A" && a.data)).toEqual(["192.0.2.2"]);
    c.close();
  });

  test("SERVFAIL from every upstream is returned after trying them all", async () => {
    const c = createUpstreamClient();
    fake.resetQueries();
    const r = await c.exchange("fail.test", "A", [...up(), ...up()], { timeoutMs: 2000, attempts: 1 });
    expect(r.rcode).toBe(2);
    expect(fake.count("fail.test")).toBe(2);
    c.close();
  });

  test(`at most ${MAX_OUTSTANDING} queries wait at once; the next fails at once`, async () => {
    const c = createUpstreamClient();
    const waiting = Array.from({ length: MAX_OUTSTANDING }, (_, i) => c.exchange(`silent${i}.test`, "A", up(), { timeoutMs: 3000, attempts: 1 }).catch(() => "timed out"));
    const extra = await Promise.race([c.exchange("one-too-many.test", "A", up(), { timeoutMs: 3000, attempts: 1 }).catch((e: Error) => e.message), Bun.sleep(2500).then(() => "waited")]);
    expect(extra).toContain("in flight");
    c.close();
    await Promise.all(waiting);
  }, 20_000);
});
