/**
 * Malformed and hostile input on the proxy port, fuzz-style: a seeded PRNG builds ~300 inputs
 * (random bytes, truncated heads, oversized heads, bad chunk sizes, CONNECT to garbage, request
 * smuggling shapes, HTTP/2 preface, absurd request lines). Each must be answered with an error
 * status line or a closed connection within a bounded time: never a 2xx, never a hang, and a
 * smuggling shape never reaches the origin. Then a normal request still works, and a slowloris
 * client gets 408.
 *
 * Safety: the sluice under test allows only 127.0.0.1 (`egress.allow`), so no generated host
 * name can ever be resolved or dialled: names are refused by policy before any lookup.
 * Reproduce a failure with SLUICE_FUZZ_SEED=<seed printed in the failure>.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { curlThrough, parseRawResponse, rawExchange, startRawOrigin, stopSluices, type RawOrigin } from "../helpers/origins.ts";
import { startSluice, type Running } from "../helpers/sluice.ts";
import { mulberry32 } from "../helpers/mulberry32.ts";

const SEED = Number(process.env.SLUICE_FUZZ_SEED ?? 0x5ee1ce);
const CASES = 300;
const CONCURRENCY = 16;
/** Per case: header_timeout (1 s) + the proxy's 0.5 s deadline tick, with a wide margin. */
const CASE_TIMEOUT_MS = 10_000;

/** Seeded: picks shapes and bytes the same way on every run. */
function prng(seed: number) {
  const next = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const bytes = (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = int(0, 255);
    return out;
  };
  const word = (n: number) => Array.from({ length: n }, () => pick("abcdefghijklmnopqrstuvwxyz0123456789-".split(""))).join("");
  return { next, int, pick, bytes, word };
}

type Rng = ReturnType<typeof prng>;

interface Case {
  readonly name: string;
  readonly category: string;
  readonly input: Uint8Array;
  /** Error statuses beyond 4xx this input may legitimately get (RFC 9112: 501, 505). */
  readonly also?: readonly number[];
  /** Must never open a connection to the origin. */
  readonly smuggling: boolean;
}

const bytesOf = (s: string) => Buffer.from(s, "latin1");
const concat = (...parts: (string | Uint8Array)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? bytesOf(p) : p)));

/**
 * Builds the case list. `guard` is the origin smuggling shapes aim at (it must stay untouched);
 * `sink` takes valid heads whose bodies then go wrong (bad chunk sizes).
 */
function generate(rng: Rng, guard: number, sink: number): Case[] {
  const g = `http://127.0.0.1:${guard}`;
  const filler = () => `X-${rng.word(rng.int(1, 8))}: ${rng.word(rng.int(0, 20))}\r\n`;
  const fillers = () => Array.from({ length: rng.int(0, 3) }, filler).join("");
  const path = () => `/${rng.word(rng.int(0, 12))}`;

  const smuggling: ((r: Rng) => { name: string; text: string | Uint8Array; also?: number[] })[] = [
    () => ({ name: "CL+TE", text: `POST ${g}${path()} HTTP/1.1\r\nHost: x\r\n${fillers()}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET ${g}/smuggled HTTP/1.1\r\n\r\n` }),
    () => ({ name: "TE+CL", text: `POST ${g}${path()} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n${fillers()}Content-Length: 40\r\n\r\n0\r\n\r\nGET ${g}/smuggled HTTP/1.1\r\n\r\n` }),
    (r) => ({ name: "duplicate CL (different)", text: `POST ${g}${path()} HTTP/1.1\r\nContent-Length: ${r.int(0, 9)}\r\n${fillers()}Content-Length: ${r.int(10, 99)}\r\n\r\nhello` }),
    () => ({ name: "duplicate CL (same)", text: `POST ${g}${path()} HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello` }),
    (r) => ({ name: "CL list", text: `POST ${g}/ HTTP/1.1\r\nContent-Length: ${r.pick(["5, 5", "5,6", "+5", "-1", "0x5", "5.0", "1e1", "99999999999999999999", "５"])}\r\n\r\nhello` }),
    () => ({ name: "TE obs-fold", text: `POST ${g}/ HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n` }),
    () => ({ name: "TE obs-fold after other header", text: `POST ${g}/ HTTP/1.1\r\nX-Pad: a\r\n\tTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n` }),
    (r) => ({ name: "space before colon", text: `POST ${g}/ HTTP/1.1\r\n${r.pick(["Transfer-Encoding : chunked", "Content-Length : 5", "Transfer-Encoding\t: chunked", "Host : x"])}\r\n\r\nhello` }),
    () => ({ name: "bare LF line endings", text: `POST ${g}/ HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello` }),
    () => ({ name: "bare LF inside a CRLF head", text: `POST ${g}/ HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello` }),
    () => ({ name: "bare CR inside a head", text: `GET ${g}/ HTTP/1.1\r\nX-A: 1\rTransfer-Encoding: chunked\r\n\r\n` }),
    (r) => ({
      name: "unknown transfer coding",
      text: `POST ${g}/ HTTP/1.1\r\nTransfer-Encoding: ${r.pick(["xchunked", "chunked, identity", "identity", "gzip, chunked", "chunked;q=1", "\"chunked\""])}\r\n\r\n0\r\n\r\n`,
      also: [501],
    }),
    () => ({ name: "two TE headers", text: `POST ${g}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`, also: [501] }),
    () => ({ name: "TE in HTTP/1.0", text: `POST ${g}/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` }),
    (r) => ({ name: "control byte in header value", text: `GET ${g}/ HTTP/1.1\r\nX-A: a${String.fromCharCode(r.pick([0, 1, 8, 11, 12, 27, 127]))}b\r\n\r\n` }),
    (r) => ({ name: "bad header name", text: `GET ${g}/ HTTP/1.1\r\n${r.pick(["X\u0001Y", "Content-Length\u0000", "X Y", "[x]", "Hos t", "ü"])}: 5\r\n\r\n` }),
    () => ({ name: "header without colon", text: `GET ${g}/ HTTP/1.1\r\nTransfer-Encoding chunked\r\n\r\n` }),
    () => ({ name: "two Host headers", text: `GET ${g}/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n` }),
    () => ({ name: "userinfo in target", text: `GET http://user@127.0.0.1:${guard}/ HTTP/1.1\r\n\r\n` }),
    () => ({ name: "fragment in target", text: `GET ${g}/#frag HTTP/1.1\r\n\r\n` }),
    () => ({ name: "trailing space after version", text: `GET ${g}/ HTTP/1.1 \r\n\r\n` }),
    () => ({ name: "pipelined smuggle after CL+TE", text: `POST ${g}/ HTTP/1.1\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET ${g}/admin HTTP/1.1\r\nX: y\r\n\r\n` }),
  ];

  const badChunks = ["zz\r\n", "-1\r\n", "0x10\r\n", " 5\r\nhello\r\n0\r\n\r\n", "5 \r\nhello\r\n0\r\n\r\n", "+5\r\nhello\r\n", "5\nhello\r\n", "1ffffffffffffffff\r\n", "5\r\nhelloEXTRA\r\n", "5;a=\u0001\r\nhello\r\n", "5\r\nhello\r\n0\r\nBad Trailer\n\r\n", "5\r\nhello\rX", "\r\n", ";ext\r\n"];

  const cases: Case[] = [];
  for (let i = 0; i < CASES; i++) {
    const kind = rng.pick(["random", "random-terminated", "truncated", "huge", "bad-chunk", "connect-garbage", "smuggling", "smuggling", "smuggling", "h2", "absurd-line"] as const);
    const name = `#${i} ${kind}`;
    switch (kind) {
      case "random":
        cases.push({ name, category: kind, input: rng.bytes(rng.int(1, 3000)), smuggling: false });
        break;
      case "random-terminated":
        cases.push({ name, category: kind, input: concat(rng.bytes(rng.int(1, 500)), "\r\n\r\n"), also: [505], smuggling: false });
        break;
      case "truncated": {
        const head = `${rng.pick(["GET", "POST", "PUT"])} ${g}${path()} HTTP/1.1\r\nHost: 127.0.0.1\r\n${fillers()}\r\n`;
        cases.push({ name, category: kind, input: bytesOf(head.slice(0, rng.int(1, head.length - 2))), smuggling: true });
        break;
      }
      case "huge": {
        const size = rng.int(65 * 1024, 200 * 1024);
        const input = rng.next() < 0.5
          ? `GET ${g}/ HTTP/1.1\r\nX-Big: ${"a".repeat(size)}\r\n\r\n`
          : `GET ${g}/ HTTP/1.1\r\n${Array.from({ length: Math.ceil(size / 40) }, (_, j) => `X-Many-${j}: ${"b".repeat(30)}\r\n`).join("")}\r\n`;
        cases.push({ name, category: kind, input: bytesOf(input), smuggling: true });
        break;
      }
      case "bad-chunk": {
        const lead = rng.next() < 0.5 ? "" : "3\r\nabc\r\n";
        cases.push({
          name: `${name} ${JSON.stringify(lead)}`,
          category: kind,
          input: bytesOf(`POST http://127.0.0.1:${sink}${path()} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${lead}${rng.pick(badChunks)}`),
          smuggling: false,
        });
        break;
      }
      case "connect-garbage": {
        const target = rng.pick([
          "", ":", ":::", "[::1", "[::1]", "host:", "host:abc", "1.2.3.4:99999", "127.0.0.1:-1", "%00:80", "[fe80::1%25eth0]:443",
          "..:443", "a..b:443", `${"a".repeat(300)}:443`, "127.0.0.1:443/path", "user@127.0.0.1:443", `${rng.word(6)}.${rng.word(3)}:${rng.int(1, 65535)}`,
          `0x${rng.int(0, 255).toString(16)}.${rng.word(4)}:443`, "*:443", "http://127.0.0.1:443",
        ]);
        cases.push({ name: `${name} ${JSON.stringify(target)}`, category: kind, input: bytesOf(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`), smuggling: false });
        break;
      }
      case "smuggling": {
        const s = rng.pick(smuggling)(rng);
        cases.push({ name: `${name} ${s.name}`, category: kind, input: typeof s.text === "string" ? bytesOf(s.text) : s.text, ...(s.also ? { also: s.also } : {}), smuggling: true });
        break;
      }
      case "h2":
        cases.push({
          name,
          category: kind,
          input: concat("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", rng.bytes(rng.int(0, 64))),
          also: [505],
          smuggling: true,
        });
        break;
      case "absurd-line": {
        const line = rng.pick([
          "GET",
          "GET  HTTP/1.1",
          `GET  ${g}/ HTTP/1.1`,
          `G@T ${g}/ HTTP/1.1`,
          `GET ${g}/ HTTP/1.2`,
          `GET ${g}/ HTTP/9.9`,
          `GET ${g}/ HTTPS/1.1`,
          `GET ${g}/ http/1.1`,
          `GET ${g}/`,
          "GET / HTTP/1.1",
          "GET * HTTP/1.1",
          `GET https://127.0.0.1:${guard}/ HTTP/1.1`,
          `GET ftp://127.0.0.1:${guard}/ HTTP/1.1`,
          `GET http://[::1/ HTTP/1.1`,
          `GET http://127.0.0.1:99999/ HTTP/1.1`,
          `GET http:///x HTTP/1.1`,
          `GET ${g}/${"x".repeat(rng.int(70_000, 120_000))} HTTP/1.1`,
          // Long methods are legal tokens; one with a non-token byte is not.
          `${"A".repeat(rng.int(1000, 5000))}{ ${g}/ HTTP/1.1`,
          `\tGET ${g}/ HTTP/1.1`,
          "",
          ` ${g}/ HTTP/1.1`,
          `GET\t${g}/\tHTTP/1.1`,
          `GET ${g}/\u0000 HTTP/1.1`,
        ]);
        const also = /HTTP\/(1\.2|9\.9)$/.test(line) ? [505] : [];
        cases.push({ name: `${name} ${JSON.stringify(line.slice(0, 60))}`, category: kind, input: bytesOf(`${line}\r\nHost: x\r\n\r\n`), also, smuggling: true });
        break;
      }
    }
  }
  return cases;
}

interface Outcome {
  readonly c: Case;
  readonly status: number | null;
  readonly closed: boolean;
  readonly timedOut: boolean;
  readonly guardConnectionsBefore: number;
}

let sl: Running;
let guard: RawOrigin;
let sink: RawOrigin;
let ok: RawOrigin;

beforeAll(async () => {
  // Smuggling shapes aim here: any connection at all is a failure.
  guard = startRawOrigin(async (conn) => {
    while ((await conn.readHead()) !== null) conn.write("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nsmuggled!");
  });
  // Takes the heads of bad-chunk cases and waits; sluice must abort on the bad body.
  sink = startRawOrigin(async (conn) => {
    await conn.readHead();
    while ((await conn.readSome()) !== null) {
      // Never answer: a response would hide whether sluice caught the bad chunk itself.
    }
  });
  ok = startRawOrigin(async (conn) => {
    while ((await conn.readHead()) !== null) conn.write("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy");
  });
  sl = await startSluice(`version: 1
proxy:
  listen: "127.0.0.1:0"
  header_timeout: 1s
admin: { listen: "127.0.0.1:0" }
egress:
  allow: ["127.0.0.1"]
  ports: { http: ["1-65535"], connect: ["1-65535"] }
  trusted_cidrs: [127.0.0.1/32]
`);
});

afterAll(async () => {
  await stopSluices(sl);
  guard?.stop();
  sink?.stop();
  ok?.stop();
});

function statusOf(data: Buffer): number | null {
  const m = /^HTTP\/1\.[01] (\d{3}) /.exec(data.toString("latin1", 0, Math.min(data.length, 64)));
  return m ? Number(m[1]) : null;
}

describe("fuzzed malformed input", () => {
  test(`${CASES} seeded malformed inputs (seed ${SEED}) get an error or a close, never a 2xx or a hang`, async () => {
    const cases = generate(prng(SEED), guard.port, sink.port);
    expect(cases.length).toBe(CASES);
    const outcomes: Outcome[] = [];
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        const guardConnectionsBefore = guard.connections();
        const r = await rawExchange(sl.proxyPort, [c.input], { timeoutMs: CASE_TIMEOUT_MS });
        outcomes.push({ c, status: statusOf(r.data), closed: r.closed, timedOut: r.timedOut, guardConnectionsBefore });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    const problems: string[] = [];
    const tally = new Map<string, number>();
    for (const o of outcomes) {
      const key = `${o.c.category}:${o.status ?? (o.closed ? "closed" : "hang")}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
      const allowed = o.status !== null && ((o.status >= 400 && o.status < 500) || (o.c.also ?? []).includes(o.status));
      if (o.status !== null && !allowed) problems.push(`${o.c.name}: status ${o.status}`);
      if (o.status === null && !o.closed) problems.push(`${o.c.name}: no answer and not closed within ${CASE_TIMEOUT_MS} ms`);
    }
    // Outside the loop: connections are counted after every case is done, so a late dial counts.
    if (guard.connections() > 0) {
      problems.push(`the guard origin got ${guard.connections()} connection(s) and ${guard.heads()} request head(s) from smuggling shapes`);
    }
    console.log(`bad-input seed ${SEED}: ${[...tally].sort().map(([k, v]) => `${k}=${v}`).join(" ")}`);
    expect(problems).toEqual([]);
    // The generator covered every category.
    expect(new Set(outcomes.map((o) => o.c.category)).size).toBe(9);
  }, 240_000);

  test("a normal request through the same sluice still succeeds afterwards", async () => {
    const r = await curlThrough(sl.proxyUrl, `${ok.url}/after-fuzz`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe("healthy");
    const health = await fetch(`http://127.0.0.1:${sl.adminPort}/healthz`);
    expect(health.status).toBe(200);
    expect(sl.proc.exitCode).toBeNull();
  }, 30_000);
});

describe("specific refusals", () => {
  test("a head over 64 KiB is 431", async () => {
    const head = `GET ${ok.url}/ HTTP/1.1\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`;
    const r = await rawExchange(sl.proxyPort, [head], { timeoutMs: CASE_TIMEOUT_MS });
    const res = parseRawResponse(r.data);
    expect(res?.status).toBe(431);
    expect(res?.headers.get("x-sluice-rule")).toBe("proxy.header-too-large");
  }, 30_000);

  test("CL+TE is 400 and the origin sees nothing", async () => {
    const before = ok.connections();
    const r = await rawExchange(sl.proxyPort, [`POST ${ok.url}/ HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX`], { timeoutMs: CASE_TIMEOUT_MS });
    const res = parseRawResponse(r.data);
    expect(res?.status).toBe(400);
    expect(res?.headers.get("x-sluice-rule")).toBe("proxy.bad-request");
    expect(r.closed).toBe(true);
    expect(ok.connections()).toBe(before);
  }, 30_000);

  test("the body of a blocked request is never read as a next request", async () => {
    // A request to a host off the allow list, whose body is itself a request to the guard.
    const inner = `GET http://127.0.0.1:${guard.port}/via-blocked-body HTTP/1.1\r\nHost: x\r\n\r\n`;
    for (const framing of ["cl", "chunked"] as const) {
      const body = framing === "cl" ? inner : `${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`;
      const head = `POST http://localhost:${guard.port}/ HTTP/1.1\r\nHost: x\r\n${framing === "cl" ? `Content-Length: ${inner.length}` : "Transfer-Encoding: chunked"}\r\n\r\n`;
      const r = await rawExchange(sl.proxyPort, [head + body], { timeoutMs: CASE_TIMEOUT_MS });
      const res = parseRawResponse(r.data);
      expect({ framing, status: res?.status }).toEqual({ framing, status: 403 });
      // Exactly one response: nothing after the 403's own body.
      expect(res!.body.length).toBe(Number(res!.headers.get("content-length")));
    }
    expect(guard.connections()).toBe(0);
  }, 30_000);

  test("a bad chunk size after a valid head is 400 proxy.bad-chunked", async () => {
    const r = await rawExchange(sl.proxyPort, [`POST http://127.0.0.1:${sink.port}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`], { timeoutMs: CASE_TIMEOUT_MS });
    const res = parseRawResponse(r.data);
    expect(res?.status).toBe(400);
    expect(res?.headers.get("x-sluice-rule")).toBe("proxy.bad-chunked");
  }, 30_000);
});

describe("slowloris", () => {
  test("a partial head and then silence gets 408 and a close after proxy.header_timeout", async () => {
    const before = ok.heads();
    const r = await rawExchange(sl.proxyPort, [`GET ${ok.url}/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `], { timeoutMs: 15_000 });
    expect(r.timedOut).toBe(false);
    expect(r.closed).toBe(true);
    const res = parseRawResponse(r.data);
    expect(res?.status).toBe(408);
    expect(res?.headers.get("x-sluice-rule")).toBe("proxy.header-timeout");
    expect(ok.heads()).toBe(before);
  }, 30_000);

  test("a head dripped one byte at a time does not extend the deadline", async () => {
    // The deadline runs from the first byte of the head, not from the last byte received.
    const head = `GET ${ok.url}/drip HTTP/1.1\r\n${"X-Drip: y\r\n".repeat(200)}\r\n`;
    const result = await new Promise<{ data: Buffer; sentAll: boolean }>((resolveDrip, reject) => {
      const chunks: Buffer[] = [];
      let at = 0;
      let timer: ReturnType<typeof setInterval> | null = null;
      const done = (sentAll: boolean) => {
        if (timer) clearInterval(timer);
        resolveDrip({ data: Buffer.concat(chunks), sentAll });
      };
      const guardTimer = setTimeout(() => done(at >= head.length), 20_000);
      Bun.connect<undefined>({
        hostname: "127.0.0.1",
        port: sl.proxyPort,
        socket: {
          open(socket: Socket<undefined>) {
            timer = setInterval(() => {
              if (at < head.length) socket.write(head[at++]!);
            }, 20);
          },
          data(_s, chunk) {
            chunks.push(Buffer.from(chunk));
          },
          close() {
            clearTimeout(guardTimer);
            done(at >= head.length);
          },
          error() {},
        },
      }).catch(reject);
    });
    const res = parseRawResponse(result.data);
    expect(res?.status).toBe(408);
    // 2,2xx bytes at 20 ms each would take ~45 s: the 408 came long before the head was complete.
    expect(result.sentAll).toBe(false);
  }, 40_000);
});
