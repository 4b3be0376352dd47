/**
 * The WebSocket codec without sockets (proxy/websocket.ts): frames read from RFC 6455's own
 * examples (§5.7), fragmented messages with control frames between, every protocol error the
 * reader refuses, bounded reassembly, and the handshake checks.
 */
import { describe, expect, test } from "bun:test";
import {
  CLOSE_INVALID_DATA,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_TOO_BIG,
  closeFrame,
  encodeFrame,
  OP_BINARY,
  OP_CLOSE,
  OP_PING,
  OP_TEXT,
  upgradeRequestProblem,
  upgradeResponseProblem,
  wantsWebSocket,
  WsReader,
  type WsError,
  type WsEvent,
} from "../../../src/proxy/websocket.ts";

const bytes = (...b: number[]) => Buffer.from(b);
const MAX = 1 << 20;

function events(r: WsReader, chunk: Buffer): WsEvent[] {
  const out = r.feed(chunk);
  if (!Array.isArray(out)) throw new Error(`unexpected error: ${out.reason}`);
  return out;
}

/** A frame written out by hand (not with encodeFrame): opcode byte, payload, optional mask key. */
function frame(b0: number, payload: Buffer, key?: number[]): Buffer {
  const n = payload.length;
  const len = n < 126 ? [n] : n < 65536 ? [126, n >> 8, n & 255] : [127, 0, 0, 0, 0, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255];
  len[0]! |= key ? 0x80 : 0;
  const body = key ? Buffer.from(payload.map((x, i) => x ^ key[i % 4]!)) : payload;
  return Buffer.concat([bytes(b0, ...len), ...(key ? [bytes(...key)] : []), body]);
}

describe("WsReader: RFC 6455 §5.7 examples", () => {
  test("a single-frame unmasked text message (from a server)", () => {
    expect(events(new WsReader(false, MAX), bytes(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f))).toEqual([{ type: "message", text: true, payload: Buffer.from("Hello") }]);
  });

  test("a single-frame masked text message (from a client)", () => {
    const masked = bytes(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
    expect(events(new WsReader(true, MAX), masked)).toEqual([{ type: "message", text: true, payload: Buffer.from("Hello") }]);
  });

  test("a fragmented message with a ping between its fragments: the ping first, then the whole message", () => {
    const r = new WsReader(false, MAX);
    const input = Buffer.concat([bytes(0x01, 0x03, 0x48, 0x65, 0x6c), bytes(0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f), bytes(0x80, 0x02, 0x6c, 0x6f)]);
    expect(events(r, input)).toEqual([
      { type: "control", opcode: OP_PING, payload: Buffer.from("Hello") },
      { type: "message", text: true, payload: Buffer.from("Hello") },
    ]);
  });

  test("16-bit and 64-bit lengths; fed one byte at a time gives the same events", () => {
    const small = Buffer.alloc(256, 7);
    const big = Buffer.alloc(65536, 9);
    const input = Buffer.concat([frame(0x82, small), frame(0x82, big)]);
    const whole = events(new WsReader(false, MAX), input);
    expect(whole).toEqual([
      { type: "message", text: false, payload: small },
      { type: "message", text: false, payload: big },
    ]);
    const r = new WsReader(false, MAX);
    const trickled: WsEvent[] = [];
    for (let i = 0; i < input.length; i++) trickled.push(...events(r, input.subarray(i, i + 1)));
    expect(trickled).toEqual(whole);
  });

  test("an empty message, and a close frame with a code and a reason", () => {
    const r = new WsReader(true, MAX);
    const key = [1, 2, 3, 4];
    const close = Buffer.concat([bytes(0x03, 0xe8), Buffer.from("bye")]);
    expect(events(r, Buffer.concat([frame(0x81, Buffer.alloc(0), key), frame(0x88, close, key)]))).toEqual([
      { type: "message", text: true, payload: Buffer.alloc(0) },
      { type: "control", opcode: OP_CLOSE, payload: close },
    ]);
  });
});

describe("WsReader: refused input", () => {
  const key = [9, 8, 7, 6];
  const cases: [string, boolean, Buffer, WsError["code"], string][] = [
    ["a reserved bit (no extension was negotiated)", false, frame(0xc1, Buffer.from("x")), CLOSE_PROTOCOL_ERROR, "reserved bit"],
    ["an unmasked frame from a client", true, frame(0x81, Buffer.from("x")), CLOSE_PROTOCOL_ERROR, "not masked"],
    ["a masked frame from a server", false, frame(0x81, Buffer.from("x"), key), CLOSE_PROTOCOL_ERROR, "masked"],
    ["an unknown data opcode", false, frame(0x83, Buffer.from("x")), CLOSE_PROTOCOL_ERROR, "unknown opcode 3"],
    ["an unknown control opcode", false, frame(0x8b, Buffer.from("x")), CLOSE_PROTOCOL_ERROR, "unknown opcode 11"],
    ["a fragmented control frame", false, frame(0x09, Buffer.from("x")), CLOSE_PROTOCOL_ERROR, "fragmented control"],
    ["a control frame over 125 bytes", false, frame(0x89, Buffer.alloc(126)), CLOSE_PROTOCOL_ERROR, "over 125"],
    ["a continuation with no message", false, frame(0x80, Buffer.from("x")), CLOSE_PROTOCOL_ERROR, "no message to continue"],
    ["a new message inside a fragmented one", false, Buffer.concat([frame(0x01, Buffer.from("a")), frame(0x81, Buffer.from("b"))]), CLOSE_PROTOCOL_ERROR, "before the last one ended"],
    ["a text message that is not UTF-8", false, frame(0x81, bytes(0xc3, 0x28)), CLOSE_INVALID_DATA, "not UTF-8"],
    ["a close frame with one byte", false, frame(0x88, bytes(3)), CLOSE_PROTOCOL_ERROR, "one-byte"],
  ];
  test.each(cases)("%s", (_name, masked, input, code, reason) => {
    const r = new WsReader(masked, MAX);
    const out = r.feed(input);
    expect(Array.isArray(out)).toBe(false);
    if (!Array.isArray(out)) {
      expect(out.code).toBe(code);
      expect(out.reason).toContain(reason);
    }
    // An error ends the direction: nothing more is read from it.
    expect(r.feed(frame(masked ? 0x81 : 0x81, Buffer.from("ok"), masked ? key : undefined))).toEqual(out);
  });

  test("a frame declaring more than max_message is refused from its header, before its payload", () => {
    const r = new WsReader(false, 1024);
    // Only the 10-byte header of a 1 GiB frame: no payload needed to refuse it.
    const out = r.feed(bytes(0x82, 127, 0, 0, 0, 0, 0x40, 0, 0, 0));
    expect(out).toEqual({ code: CLOSE_TOO_BIG, reason: "a message over 1024 bytes (proxy.websocket.max_message)" });
    expect(r.pending).toBe(0);
  });

  test("fragments are counted together against max_message", () => {
    const r = new WsReader(false, 1024);
    expect(events(r, frame(0x02, Buffer.alloc(600)))).toEqual([]);
    expect(r.pending).toBe(600);
    const out = r.feed(frame(0x80, Buffer.alloc(600)));
    expect(!Array.isArray(out) && out.code).toBe(CLOSE_TOO_BIG);
  });

  test("a length with the top bit set (past 2^53) is refused", () => {
    const out = new WsReader(false, MAX).feed(bytes(0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1));
    expect(!Array.isArray(out) && out.code).toBe(CLOSE_TOO_BIG);
  });
});

describe("encodeFrame and closeFrame", () => {
  test.each([0, 1, 125, 126, 65535, 65536, 70000])("a %i-byte payload reads back, masked and unmasked", (n) => {
    const payload = Buffer.alloc(n, 0x61);
    expect(events(new WsReader(true, MAX), encodeFrame(OP_BINARY, payload, true))).toEqual([{ type: "message", text: false, payload }]);
    expect(events(new WsReader(false, MAX), encodeFrame(OP_TEXT, payload, false))).toEqual([{ type: "message", text: true, payload }]);
  });

  test("each masked frame gets its own random key", () => {
    const a = encodeFrame(OP_TEXT, Buffer.from("same"), true);
    const b = encodeFrame(OP_TEXT, Buffer.from("same"), true);
    expect(a.subarray(2, 6).equals(b.subarray(2, 6))).toBe(false);
    // The payload is not sent in the clear.
    expect(a.includes(Buffer.from("same"))).toBe(false);
  });

  test("a close reason is cut to fit 125 bytes, on a UTF-8 boundary", () => {
    const f = closeFrame(1008, `blocked ${"é".repeat(100)}`, false);
    const [e] = events(new WsReader(false, MAX), f);
    expect(e!.type).toBe("control");
    expect(e!.payload.length).toBeLessThanOrEqual(125);
    expect(e!.payload.readUInt16BE(0)).toBe(1008);
    const reason = e!.payload.subarray(2);
    expect(Buffer.from(reason.toString("utf8"), "utf8").equals(reason)).toBe(true);
  });
});

describe("the handshake", () => {
  const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
  const h = (...pairs: [string, string][]) => pairs;

  test("wantsWebSocket: Upgrade: websocket named in Connection, in any case and list position", () => {
    expect(wantsWebSocket(h(["Upgrade", "WebSocket"]), ["keep-alive", "upgrade"])).toBe(true);
    expect(wantsWebSocket(h(["upgrade", "h2c, websocket"]), ["upgrade"])).toBe(true);
    expect(wantsWebSocket(h(["Upgrade", "websocket"]), [])).toBe(false);
    expect(wantsWebSocket(h(["Upgrade", "h2c"]), ["upgrade"])).toBe(false);
  });

  test("upgradeRequestProblem: GET, HTTP/1.1, no body, one 16-byte key", () => {
    const ok = h(["Sec-WebSocket-Key", KEY], ["Sec-WebSocket-Version", "13"]);
    expect(upgradeRequestProblem("GET", 1, ok, false)).toBeNull();
    expect(upgradeRequestProblem("POST", 1, ok, false)).toContain("GET");
    expect(upgradeRequestProblem("GET", 0, ok, false)).toContain("HTTP/1.1");
    expect(upgradeRequestProblem("GET", 1, ok, true)).toContain("no body");
    expect(upgradeRequestProblem("GET", 1, h(["Sec-WebSocket-Key", "short"]), false)).toContain("Sec-WebSocket-Key");
    expect(upgradeRequestProblem("GET", 1, h(["Sec-WebSocket-Key", KEY], ["sec-websocket-key", KEY]), false)).toContain("one Sec-WebSocket-Key");
    expect(upgradeRequestProblem("GET", 1, [], false)).toContain("Sec-WebSocket-Key");
  });

  test("upgradeResponseProblem: a 101 to websocket without extensions", () => {
    expect(upgradeResponseProblem(h(["Upgrade", "websocket"], ["Sec-WebSocket-Accept", "x"]), ["upgrade"])).toBeNull();
    expect(upgradeResponseProblem(h(["Upgrade", "h2c"]), ["upgrade"])).toContain("does not upgrade");
    expect(upgradeResponseProblem(h(["Upgrade", "websocket"]), [])).toContain("does not upgrade");
    expect(upgradeResponseProblem(h(["Upgrade", "websocket"], ["Sec-WebSocket-Extensions", "permessage-deflate"]), ["upgrade"])).toContain("not offered");
  });
});
