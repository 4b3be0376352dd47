/**
 * ClientHello reading (src/proxy/client-hello.ts) on the first flights of real clients (curl,
 * openssl s_client, Bun's fetch) captured on a loopback listener: their server name and ALPN,
 * whatever the record boundaries; truncated input waits; anything else is refused with a reason.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { MAX_HELLO, parseClientHello } from "../../../src/proxy/client-hello.ts";

/** The first bytes a client sends to a listener that never answers. */
async function capture(client: (port: number) => Promise<unknown> | void, ms = 5000): Promise<Uint8Array> {
  let got = new Uint8Array(0);
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(_s, d) {
        got = new Uint8Array([...got, ...d]);
      },
    },
  });
  try {
    void Promise.resolve(client(listener.port)).catch(() => {});
    // Until a whole first flight is in (or `ms` pass).
    for (let waited = 0; waited < ms && (got.length === 0 || parseClientHello(got).status === "incomplete"); waited += 20) await Bun.sleep(20);
    return got;
  } finally {
    listener.stop(true);
  }
}

const spawned: ReturnType<typeof Bun.spawn>[] = [];
afterAll(() => spawned.forEach((p) => p.kill()));
const run = (cmd: string[]) => void spawned.push(Bun.spawn(cmd, { stdin: "ignore", stdout: "ignore", stderr: "ignore" }));

describe("real clients' ClientHellos", () => {
  test("curl: the host it asked for, and its ALPN offer", async () => {
    const hello = await capture((port) => run(["curl", "-s", "--max-time", "1", "--resolve", `origin.test:${port}:127.0.0.1`, `https://Origin.Test:${port}/`]));
    expect(parseClientHello(hello)).toEqual({ status: "ok", sni: "origin.test", alpn: expect.arrayContaining(["http/1.1"]) });
  });

  test("openssl s_client with and without a server name; Bun's fetch", async () => {
    const named = await capture((port) => run(["sh", "-c", `sleep 2 | openssl s_client -connect 127.0.0.1:${port} -servername api.example.test -alpn http/1.1`]));
    expect(parseClientHello(named)).toEqual({ status: "ok", sni: "api.example.test", alpn: ["http/1.1"] });
    const unnamed = await capture((port) => run(["sh", "-c", `sleep 2 | openssl s_client -connect 127.0.0.1:${port} -noservername`]));
    expect(parseClientHello(unnamed)).toMatchObject({ status: "ok", sni: null });
    const bun = await capture((port) => fetch(`https://localhost:${port}/`));
    expect(parseClientHello(bun)).toMatchObject({ status: "ok", sni: "localhost" });
  });

  test("a ClientHello split over several records, or still arriving", async () => {
    const hello = await capture((port) => run(["curl", "-s", "--max-time", "1", "--resolve", `split.test:${port}:127.0.0.1`, `https://split.test:${port}/`]));
    const body = hello.subarray(5, 5 + ((hello[3]! << 8) | hello[4]!));
    const record = (b: Uint8Array) => new Uint8Array([22, 3, 1, b.length >> 8, b.length & 0xff, ...b]);
    const split = new Uint8Array([...record(body.subarray(0, 3)), ...record(body.subarray(3, 100)), ...record(body.subarray(100))]);
    expect(parseClientHello(split)).toMatchObject({ status: "ok", sni: "split.test" });
    for (const cut of [0, 3, 5, 8, 60, split.length - 1]) expect(parseClientHello(split.subarray(0, cut))).toEqual({ status: "incomplete" });
  });
});

describe("what is not a ClientHello", () => {
  test("plain HTTP, an alert, another handshake message, a record of another type midway, bad lengths: refused with a reason", () => {
    const reason = (b: number[] | string) => {
      const r = parseClientHello(typeof b === "string" ? new TextEncoder().encode(b) : new Uint8Array(b));
      return r.status === "error" ? r.reason : r.status;
    };
    expect(reason("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).toContain("not TLS");
    expect(reason([21, 3, 3, 0, 2, 2, 40])).toContain("alert");
    expect(reason([22, 3, 3, 0, 4, 2, 0, 0, 0])).toContain("instead of a ClientHello");
    expect(reason([22, 3, 1, 0, 4, 1, 0, 0, 9, 23, 3, 3, 0, 1, 0])).toContain("type 23");
    expect(reason([22, 3, 1, 0, 0])).toContain("record length");
    expect(reason([22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff])).toContain(`over ${MAX_HELLO}`);
    // A ClientHello whose extensions claim more than there is.
    const body = [3, 3, ...new Array(32).fill(0), 0, 0, 2, 0x13, 0x01, 1, 0, 0, 50];
    const msg = [1, 0, 0, body.length, ...body];
    expect(reason([22, 3, 1, 0, msg.length, ...msg])).toContain("malformed ClientHello");
  });
});
