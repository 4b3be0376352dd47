import { describe, expect, test } from "bun:test";
import { CHUNKED_ERROR, CHUNKED_INCOMPLETE, ChunkedReader } from "../../../src/proxy/chunked.ts";

const bytes = (text: string): Uint8Array => Buffer.from(text, "latin1");
const text = (parts: readonly Uint8Array[]): string => Buffer.concat(parts).toString("latin1");

interface Outcome {
  /** Index just past the body, in the coordinates of the whole input; or CHUNKED_ERROR / CHUNKED_INCOMPLETE. */
  end: number;
  payload: string;
  error: string;
  done: boolean;
}

/** Feeds `wire` in one call. */
function feedWhole(wire: Uint8Array, start = 0): Outcome {
  const reader = new ChunkedReader();
  const spans: Uint8Array[] = [];
  const end = reader.feed(wire, start, (from, to) => spans.push(wire.subarray(from, to)));
  return { end, payload: text(spans), error: reader.error, done: reader.done };
}

/** Feeds `wire` in pieces cut at `cuts`; the end index is translated back to `wire` coordinates. */
function feedPieces(wire: Uint8Array, cuts: readonly number[]): Outcome {
  const reader = new ChunkedReader();
  const spans: Uint8Array[] = [];
  const bounds = [0, ...cuts, wire.length];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const offset = bounds[k]!;
    const piece = wire.subarray(offset, bounds[k + 1]!);
    if (piece.length === 0) continue;
    const r = reader.feed(piece, 0, (from, to) => spans.push(piece.subarray(from, to)));
    if (r === CHUNKED_ERROR) return { end: r, payload: text(spans), error: reader.error, done: reader.done };
    if (r !== CHUNKED_INCOMPLETE) return { end: offset + r, payload: text(spans), error: reader.error, done: reader.done };
  }
  return { end: CHUNKED_INCOMPLETE, payload: text(spans), error: reader.error, done: reader.done };
}

function feedByteByByte(wire: Uint8Array): Outcome {
  return feedPieces(
    wire,
    Array.from({ length: wire.length - 1 }, (_, i) => i + 1),
  );
}

const kib = "0123456789abcdef".repeat(64);

const valid: [name: string, wire: string, payload: string][] = [
  ["one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"],
  ["two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"],
  ["empty body", "0\r\n\r\n", ""],
  ["hex sizes, both cases", "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij"],
  ["leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"],
  ["a 1 KiB chunk", `400\r\n${kib}\r\n0\r\n\r\n`, kib],
  ["data holding CRLF and a fake last-chunk", "8\r\n\r\n0\r\n\r\nX\r\n0\r\n\r\n", "\r\n0\r\n\r\nX"],
  ["extensions", "5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello"],
  ["extension with quoted value and tab", '5;a="b\tc";d\r\nhello\r\n0\r\n\r\n', "hello"],
  ["one trailer", "5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n", "hello"],
  ["two trailers", "5\r\nhello\r\n0\r\nX-One: 1\r\nX-Two: 2\r\n\r\n", "hello"],
  ["binary data", "4\r\n\x00\xff\r\n\r\n0\r\n\r\n", "\x00\xff\r\n"],
];

describe("ChunkedReader: valid bodies", () => {
  test.each(valid)("%s, fed whole", (_name, wireText, payload) => {
    const wire = bytes(wireText);
    const r = feedWhole(wire);
    expect(r).toEqual({ end: wire.length, payload, error: "", done: true });
  });

  test.each(valid)("%s, fed byte by byte", (_name, wireText, payload) => {
    const wire = bytes(wireText);
    const r = feedByteByByte(wire);
    expect(r).toEqual({ end: wire.length, payload, error: "", done: true });
  });

  test.each(valid)("%s, split in two at every position", (_name, wireText, payload) => {
    const wire = bytes(wireText);
    for (let cut = 1; cut < wire.length; cut++) {
      const r = feedPieces(wire, [cut]);
      expect({ cut, ...r }).toEqual({ cut, end: wire.length, payload, error: "", done: true });
    }
  });

  test("a prefix of a valid body is incomplete, never done", () => {
    const wire = bytes("5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n");
    for (let len = 1; len < wire.length; len++) {
      const reader = new ChunkedReader();
      expect(reader.feed(wire.subarray(0, len))).toBe(CHUNKED_INCOMPLETE);
      expect(reader.done).toBe(false);
      expect(reader.error).toBe("");
    }
  });

  test("onData reports absolute spans inside the given buffer, never a size line or CRLF", () => {
    const wire = bytes("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    const spans: [number, number][] = [];
    new ChunkedReader().feed(wire, 0, (from, to) => spans.push([from, to]));
    expect(spans).toEqual([
      [3, 6],
      [11, 13],
    ]);
  });
});

describe("ChunkedReader: where the body ends (pipelining)", () => {
  const next = "GET http://example.com/next HTTP/1.1\r\nHost: example.com\r\n\r\n";

  test.each(valid)("%s followed by another request: end index is the body's end", (_name, wireText, payload) => {
    const body = bytes(wireText);
    const wire = bytes(wireText + next);
    const whole = feedWhole(wire);
    expect(whole).toEqual({ end: body.length, payload, error: "", done: true });
    const bytewise = feedByteByByte(wire);
    expect(bytewise).toEqual({ end: body.length, payload, error: "", done: true });
  });

  test("a start offset is honoured and the result is an index into the same buffer", () => {
    const prefix = "HEADERS-ALREADY-CONSUMED";
    const body = "5\r\nhello\r\n0\r\n\r\n";
    const wire = bytes(prefix + body + "tail");
    const r = feedWhole(wire, prefix.length);
    expect(r).toEqual({ end: prefix.length + body.length, payload: "hello", error: "", done: true });
  });

  test("once done, later bytes are not consumed", () => {
    const reader = new ChunkedReader();
    expect(reader.feed(bytes("0\r\n\r\n"))).toBe(5);
    expect(reader.done).toBe(true);
    const more = bytes("GET / HTTP/1.1\r\n\r\n");
    expect(reader.feed(more)).toBe(0);
    expect(reader.feed(more, 4)).toBe(4);
  });

  test("the last CRLF arriving alone finishes the body at index 1 of that piece", () => {
    const reader = new ChunkedReader();
    expect(reader.feed(bytes("0\r\n\r"))).toBe(CHUNKED_INCOMPLETE);
    expect(reader.feed(bytes("\nNEXT"))).toBe(1);
    expect(reader.done).toBe(true);
  });
});

describe("ChunkedReader: malformed bodies", () => {
  const refused: [name: string, wire: string, error: string][] = [
    ["no size", "\r\nhello\r\n0\r\n\r\n", "missing chunk size"],
    ["a non-hex size", "g\r\nhello\r\n0\r\n\r\n", "missing chunk size"],
    ["a bad digit after a good one", "5g\r\nhello\r\n0\r\n\r\n", "invalid chunk size"],
    ["a 0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"],
    ["a sign", "+5\r\nhello\r\n0\r\n\r\n", "missing chunk size"],
    ["a negative size", "-5\r\nhello\r\n0\r\n\r\n", "missing chunk size"],
    ["space before the size", " 5\r\nhello\r\n0\r\n\r\n", "missing chunk size"],
    ["space after the size", "5 \r\nhello\r\n0\r\n\r\n", "invalid chunk size"],
    ["an extension without a size", ";ext\r\nhello\r\n0\r\n\r\n", "missing chunk size"],
    ["17 hex digits", `${"0".repeat(16)}5\r\nhello\r\n0\r\n\r\n`, "chunk size too long"],
    ["a size over 2^53", "fffffffffffffff\r\n", "chunk size too large"],
    ["bare LF after the size", "5\nhello\r\n0\r\n\r\n", "invalid chunk size"],
    ["bare CR after the size", "5\rhello\r\n0\r\n\r\n", "bare CR after chunk size"],
    ["data longer than its size", "5\r\nhello!\r\n0\r\n\r\n", "chunk data longer than its size"],
    ["no CRLF after data", "5\r\nhello0\r\n\r\n", "chunk data longer than its size"],
    ["bare LF after data", "5\r\nhello\n0\r\n\r\n", "chunk data longer than its size"],
    ["bare CR after data", "5\r\nhello\rX0\r\n\r\n", "bare CR after chunk data"],
    ["NUL in an extension", "5;a\x00b\r\nhello\r\n0\r\n\r\n", "control character in chunk extension"],
    ["bare LF in an extension", "5;a\nhello\r\n0\r\n\r\n", "control character in chunk extension"],
    ["DEL in an extension", "5;a\x7f\r\nhello\r\n0\r\n\r\n", "control character in chunk extension"],
    ["ESC in an extension", "5;\x1b[0m\r\nhello\r\n0\r\n\r\n", "control character in chunk extension"],
    ["a 5000-byte extension", `5;${"a".repeat(5000)}\r\nhello\r\n0\r\n\r\n`, "chunk extension too long"],
    ["bare LF in a trailer", "0\r\nX-T: 1\nX-U: 2\r\n\r\n", "control character in trailer"],
    ["NUL in a trailer", "0\r\nX-T: \x00\r\n\r\n", "control character in trailer"],
    ["bare CR in a trailer", "0\r\nX-T: 1\rX\r\n\r\n", "bare CR in trailer"],
    ["bare CR at the end", "0\r\n\rX", "bare CR at end of chunked body"],
    ["a huge trailer", `0\r\nX-Big: ${"a".repeat(17 * 1024)}\r\n\r\n`, "trailer section too large"],
    ["many trailers adding up", `0\r\n${"X-T: aaaaaaaaaa\r\n".repeat(2000)}\r\n`, "trailer section too large"],
  ];

  test.each(refused)("%s, fed whole", (_name, wireText, error) => {
    const r = feedWhole(bytes(wireText));
    expect(r.end).toBe(CHUNKED_ERROR);
    expect(r.error).toBe(error);
    expect(r.done).toBe(false);
  });

  test.each(refused)("%s, fed byte by byte", (_name, wireText, error) => {
    const r = feedByteByByte(bytes(wireText));
    expect(r.end).toBe(CHUNKED_ERROR);
    expect(r.error).toBe(error);
    expect(r.done).toBe(false);
  });

  test("data before an error is still reported, but never past the bad byte", () => {
    const wire = bytes("5\r\nhello!\r\n");
    const r = feedWhole(wire);
    expect(r.end).toBe(CHUNKED_ERROR);
    expect(r.payload).toBe("hello");
  });

  test("the largest 16-digit size below 2^53 is accepted as a size", () => {
    const reader = new ChunkedReader();
    // 0x001fffffffffffff = 2^53 - 1: the size line is fine, the data is simply incomplete.
    expect(reader.feed(bytes("001fffffffffffff\r\nabc"))).toBe(CHUNKED_INCOMPLETE);
    expect(reader.error).toBe("");
  });

  test("CHUNKED_ERROR and CHUNKED_INCOMPLETE are negative and distinct", () => {
    expect(CHUNKED_ERROR).toBeLessThan(0);
    expect(CHUNKED_INCOMPLETE).toBeLessThan(0);
    expect(CHUNKED_ERROR).not.toBe(CHUNKED_INCOMPLETE);
  });
});
