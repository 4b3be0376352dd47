import { describe, expect, test } from "bun:test";
import * as zlib from "node:zlib";
import { decodeContentEncoding, MAX_CODINGS, type InflateLimits, type InflateResult } from "../../../src/scan/decode/content-encoding.ts";

const MiB = 1024 * 1024;
const LIMITS: InflateLimits = { maxOutputBytes: 8 * MiB, maxRatio: 100 };
const TEXT = new TextEncoder().encode('{"prompt":"summarise this file","token":"not-a-real-token-42"} '.repeat(20));

const decode = (body: Uint8Array, ce: string | undefined, limits: InflateLimits = LIMITS): InflateResult => decodeContentEncoding(body, ce, limits, zlib);

function okBytes(result: InflateResult): Uint8Array {
  if (!result.ok) throw new Error(`expected ok, got ${result.code}: ${result.detail}`);
  return result.bytes;
}

function failure(result: InflateResult): { code: string; detail: string } {
  if (result.ok) throw new Error(`expected a failure, got ${result.bytes.length} bytes`);
  return result;
}

describe("content-encoding: each coding", () => {
  test.each([
    ["gzip", zlib.gzipSync(TEXT)],
    ["x-gzip", zlib.gzipSync(TEXT)],
    ["GZip", zlib.gzipSync(TEXT)],
    ["deflate (zlib-wrapped, RFC 1950)", zlib.deflateSync(TEXT)],
    ["deflate (raw, RFC 1951)", zlib.deflateRawSync(TEXT)],
    ["br", zlib.brotliCompressSync(TEXT)],
  ])("%s", (label, body) => {
    const ce = label.split(" ")[0]!;
    expect(Buffer.from(okBytes(decode(body, ce))).equals(Buffer.from(TEXT))).toBe(true);
  });

  test("identity, a missing header and an empty one return the body itself", () => {
    for (const ce of ["identity", undefined, "", " , identity ,"]) expect(okBytes(decode(TEXT, ce))).toBe(TEXT);
  });

  test("raw deflate whose first bytes happen to look like a zlib header still decodes", () => {
    // RFC 1951 §3.2.4: a non-final stored block of 1 byte ("A"), header bits padded with 0111 to
    // make 0x78; its LEN low byte is 0x01. "78 01" is also a valid RFC 1950 header (level 1), so
    // the zlib attempt runs first and fails; the raw attempt must follow.
    const rest = Buffer.from("BCDEF");
    const body = Buffer.concat([
      Buffer.from([0x78, 0x01, 0x00, 0xfe, 0xff, 0x41]),
      Buffer.from([0x01, rest.length, 0x00, ~rest.length & 0xff, 0xff]),
      rest,
    ]);
    expect(((body[0]! << 8) | body[1]!) % 31).toBe(0);
    expect(() => zlib.inflateSync(body)).toThrow();
    expect(new TextDecoder().decode(okBytes(decode(body, "deflate")))).toBe("ABCDEF");
  });

  test("gzip with several members decodes to their concatenation (RFC 1952 §2.2)", () => {
    const body = Buffer.concat([zlib.gzipSync(Buffer.from("first,")), zlib.gzipSync(Buffer.from("second"))]);
    expect(new TextDecoder().decode(okBytes(decode(body, "gzip")))).toBe("first,second");
  });

  test("an empty body is returned as is whatever the coding (HEAD, 204)", () => {
    expect(okBytes(decode(new Uint8Array(0), "gzip")).length).toBe(0);
  });
});

describe("content-encoding: stacked codings are undone in reverse order (RFC 9110 §8.4)", () => {
  test("gzip, br = gzip applied first, then br", () => {
    const body = zlib.brotliCompressSync(zlib.gzipSync(TEXT));
    expect(Buffer.from(okBytes(decode(body, "gzip, br"))).equals(Buffer.from(TEXT))).toBe(true);
    // The opposite order is a different body: it must not decode.
    expect(failure(decode(body, "br, gzip")).code).toBe("decode_error");
  });

  test("three codings, with identity and odd spacing in the list", () => {
    const body = zlib.gzipSync(zlib.deflateSync(zlib.brotliCompressSync(TEXT)));
    expect(Buffer.from(okBytes(decode(body, "br,identity ,  deflate,gzip"))).equals(Buffer.from(TEXT))).toBe(true);
  });

  test(`more than ${MAX_CODINGS} codings are refused`, () => {
    let body: Uint8Array = TEXT;
    for (let i = 0; i <= MAX_CODINGS; i++) body = zlib.gzipSync(body);
    expect(failure(decode(body, Array(MAX_CODINGS + 1).fill("gzip").join(", "))).code).toBe("unsupported_encoding");
  });
});

describe("content-encoding: bombs", () => {
  const zeros10 = new Uint8Array(10 * MiB);

  test.each([
    ["gzip", zlib.gzipSync(zeros10, { level: 9 })],
    ["deflate", zlib.deflateSync(zeros10, { level: 9 })],
    ["deflate-raw", zlib.deflateRawSync(zeros10, { level: 9 })],
    ["br", zlib.brotliCompressSync(zeros10)],
  ])("10 MiB of zeros as %s, limit 1 MiB: decode_bomb", (label, body) => {
    expect(body.length).toBeLessThan(32 * 1024);
    const ce = label === "deflate-raw" ? "deflate" : label;
    const f = failure(decode(body, ce, { maxOutputBytes: MiB, maxRatio: 1e9 }));
    expect(f.code).toBe("decode_bomb");
    expect(f.detail).toContain(`${MiB} bytes`);
  });

  test("a 2 GiB gzip bomb stops at the limit without allocating its output", () => {
    // Concatenated gzip members decode to the concatenation: 200 x 10 MiB of zeros in ~2 MB.
    const member = zlib.gzipSync(zeros10, { level: 9 });
    const body = Buffer.concat(Array.from({ length: 200 }, () => member));
    Bun.gc(true);
    const before = process.memoryUsage().rss;
    const started = performance.now();
    const f = failure(decode(body, "gzip", { maxOutputBytes: MiB, maxRatio: 1e9 }));
    const elapsed = performance.now() - started;
    const grown = process.memoryUsage().rss - before;
    expect(f.code).toBe("decode_bomb");
    // Decoding it all would take 2 GiB and seconds; stopping at 1 MiB takes neither.
    expect(grown).toBeLessThan(256 * MiB);
    expect(elapsed).toBeLessThan(2000);
  });

  test("an output of exactly maxOutputBytes is accepted, one more byte is a bomb", () => {
    const body = zlib.gzipSync(new Uint8Array(1000));
    expect(okBytes(decode(body, "gzip", { maxOutputBytes: 1000, maxRatio: 1e9 })).length).toBe(1000);
    expect(failure(decode(body, "gzip", { maxOutputBytes: 999, maxRatio: 1e9 })).code).toBe("decode_bomb");
  });

  test("the ratio limit is output against the body as received", () => {
    const body = zlib.gzipSync(new Uint8Array(100_000)); // ~130 bytes -> 100 000: ratio ~770
    const ratio = 100_000 / body.length;
    const f = failure(decode(body, "gzip", { maxOutputBytes: 8 * MiB, maxRatio: 100 }));
    expect(f.code).toBe("decode_bomb");
    expect(f.detail).toContain("100x");
    expect(okBytes(decode(body, "gzip", { maxOutputBytes: 8 * MiB, maxRatio: Math.ceil(ratio) })).length).toBe(100_000);
  });

  test("stacking does not multiply the ratio allowance", () => {
    // Each layer alone expands < 100x, but the total is far above 100x the received body.
    const inner = zlib.gzipSync(new Uint8Array(4 * MiB)); // ~4 KB
    const body = zlib.gzipSync(inner);
    expect(inner.length / body.length).toBeLessThan(100);
    expect(failure(decode(body, "gzip, gzip", { maxOutputBytes: 64 * MiB, maxRatio: 100 })).code).toBe("decode_bomb");
  });
});

describe("content-encoding: errors", () => {
  test.each(["compress", "zstd", "sdch", "gzip;q=1", "br, snappy"])("%p is unsupported_encoding", (ce) => {
    const f = failure(decode(zlib.gzipSync(TEXT), ce));
    expect(f.code).toBe("unsupported_encoding");
  });

  test("the unsupported name is shown shortened and without control characters", () => {
    const f = failure(decode(TEXT, `evil\r\nx-injected: 1${"a".repeat(100)}`));
    expect(f.detail).not.toContain("\n");
    expect(f.detail.length).toBeLessThan(100);
  });

  const secretText = new TextEncoder().encode("SECRET-BODY-MARKER-0123456789 ".repeat(50));
  const corrupt = (b: Uint8Array) => {
    const c = new Uint8Array(b);
    for (let i = 12; i < c.length - 8; i += 7) c[i] = c[i]! ^ 0x5a;
    return c;
  };
  test.each([
    ["gzip", "corrupt", corrupt(zlib.gzipSync(secretText))],
    ["gzip", "truncated", zlib.gzipSync(secretText).subarray(0, 40)],
    ["gzip", "not compressed", secretText],
    ["deflate", "not compressed", secretText],
    ["deflate", "corrupt", corrupt(zlib.deflateSync(secretText))],
    ["br", "corrupt", corrupt(zlib.brotliCompressSync(secretText))],
    ["br", "not compressed", secretText],
    ["gzip", "trailing garbage", Buffer.concat([zlib.gzipSync(secretText), secretText])],
  ])("%s, %s: decode_error, and the detail quotes no body bytes", (ce, _how, body) => {
    const f = failure(decode(body, ce));
    expect(f.code).toBe("decode_error");
    expect(f.detail).toStartWith(`${ce} body could not be decoded`);
    expect(f.detail).not.toContain("SECRET");
    expect(f.detail).not.toContain("0123");
  });

  test("limits that are not numbers are refused", () => {
    expect(() => decode(TEXT, "gzip", { maxOutputBytes: Number.NaN, maxRatio: 100 })).toThrow(RangeError);
  });
});
