/**
 * Content-Encoding decoded as a body streams (src/proxy/stream-decode.ts): every coding the held
 * path takes, in pieces; raw deflate as servers send it; an empty body; a decompression bomb
 * stopped by the ratio; broken input reported once.
 */
import { describe, expect, test } from "bun:test";
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { createStreamDecoder } from "../../../src/proxy/stream-decode.ts";

function decode(coding: string, body: Uint8Array, ratio = 100, piece = 5): Promise<{ out: string; error: string | null }> {
  return new Promise((done) => {
    const parts: Buffer[] = [];
    const d = createStreamDecoder(coding, { onData: (b) => parts.push(b), onEnd: () => done({ out: Buffer.concat(parts).toString(), error: null }), onError: (e) => done({ out: Buffer.concat(parts).toString(), error: e }) }, ratio)!;
    for (let i = 0; i < body.length; i += piece) d.write(body.subarray(i, i + piece));
    d.end();
  });
}

const TEXT = "data: the forecast is sunny\n\n".repeat(20);

describe("createStreamDecoder", () => {
  test("gzip, x-gzip, zlib deflate, raw deflate and br, in small pieces", async () => {
    expect(await decode("gzip", gzipSync(TEXT))).toEqual({ out: TEXT, error: null });
    expect(await decode("X-Gzip ", gzipSync(TEXT))).toEqual({ out: TEXT, error: null });
    expect(await decode("deflate", deflateSync(TEXT))).toEqual({ out: TEXT, error: null });
    expect(await decode("deflate", deflateRawSync(TEXT))).toEqual({ out: TEXT, error: null });
    expect(await decode("br", brotliCompressSync(TEXT))).toEqual({ out: TEXT, error: null });
  });

  test("an empty body ends cleanly; other codings and lists are not taken", async () => {
    expect(await decode("gzip", new Uint8Array(0))).toEqual({ out: "", error: null });
    expect(createStreamDecoder("zstd", { onData() {}, onEnd() {}, onError() {} }, 100)).toBeNull();
    expect(createStreamDecoder("gzip, identity", { onData() {}, onEnd() {}, onError() {} }, 100)).toBeNull();
  });

  test("a bomb stops at the ratio, past the first MiB; broken input is an error", async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x61));
    const r = await decode("gzip", bomb, 100, 4096);
    expect(r.error).toContain("more than 100 times");
    expect(r.out.length).toBeLessThanOrEqual(100 * bomb.length + 1024 * 1024);
    expect((await decode("gzip", Buffer.from("not gzip at all"))).error).toContain("gzip:");
  });
});
