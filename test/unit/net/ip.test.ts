import { describe, expect, test } from "bun:test";
import { formatIp, parseIpLiteral, unmapIpv4 } from "../../../src/net/ip.ts";

describe("parseIpLiteral: IPv4 spellings (WHATWG URL / inet_aton)", () => {
  const rows: [input: string, text: string][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["2130706433", "127.0.0.1"], // one 32-bit decimal
    ["0177.0.0.1", "127.0.0.1"], // octal first part
    ["0177.0000.0000.0001", "127.0.0.1"],
    ["0x7f.1", "127.0.0.1"], // hex, short form
    ["0X7F.0.0.1", "127.0.0.1"], // upper-case hex prefix and digits
    ["0x7f000001", "127.0.0.1"],
    ["017700000001", "127.0.0.1"], // octal whole
    ["127.1", "127.0.0.1"], // a.b: b fills 24 bits
    ["127.0.1", "127.0.0.1"], // a.b.c: c fills 16 bits
    ["0x7f.0.0x0.01", "127.0.0.1"], // mixed
    ["10.0.0.1", "10.0.0.1"],
    ["012.1", "10.0.0.1"],
    ["167772161", "10.0.0.1"],
    ["0xa.0.0.1", "10.0.0.1"],
    ["169.254.169.254", "169.254.169.254"],
    ["2852039166", "169.254.169.254"],
    ["0xa9fea9fe", "169.254.169.254"],
    ["0251.0376.0251.0376", "169.254.169.254"],
    ["169.254.43518", "169.254.169.254"],
    ["169.16689662", "169.254.169.254"],
    ["0", "0.0.0.0"],
    ["0x", "0.0.0.0"], // WHATWG: "0x" with no digits is 0
    ["00", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["4294967295", "255.255.255.255"],
    ["1.2.65535", "1.2.255.255"],
    ["8.8.8.8", "8.8.8.8"],
  ];
  test.each(rows)("%p -> %p", (input, text) => {
    const ip = parseIpLiteral(input);
    expect(ip).not.toBeNull();
    expect(ip?.family).toBe(4);
    expect(ip?.text).toBe(text);
    expect(ip?.bytes.length).toBe(4);
    expect(formatIp(ip!.bytes)).toBe(text);
  });

  // Differential check against the WHATWG URL parser Bun ships: same address or both refuse.
  test.each(rows.map(([input]) => [input]))("agrees with new URL() for %p", (input) => {
    expect(parseIpLiteral(input)?.text).toBe(new URL(`http://${input}/`).hostname);
  });
});

describe("parseIpLiteral: rejects malformed IPv4", () => {
  const rows: string[] = [
    "",
    "256.0.0.1", // part over 255
    "1.256.0.1",
    "1.2.3.256",
    "1.2.65536", // last part over 16 bits
    "1.16777216",
    "4294967296", // over 32 bits
    "0x100000000",
    "99999999999999999999999",
    "1.2.3.4.5", // too many parts
    "1..2.3", // empty part
    ".1.2.3",
    "1.2.3.", // trailing dot: normaliseHost strips it, the literal parser does not
    "08.0.0.1", // 8 is not an octal digit
    "0x7g.1",
    "1.2.3.a",
    "+1.2.3.4",
    "-1.2.3.4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4%eth0",
    "[127.0.0.1]", // brackets wrap IPv6 only
    "localhost",
    "example.com",
  ];
  test.each(rows.map((r) => [r]))("%p", (input) => {
    expect(parseIpLiteral(input)).toBeNull();
  });
});

describe("parseIpLiteral: IPv6 spellings", () => {
  const rows: [input: string, text: string][] = [
    ["::1", "::1"],
    ["[::1]", "::1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["0000:0000:0000:0000:0000:0000:0000:0001", "::1"],
    ["::", "::"],
    ["[::]", "::"],
    ["FE80::1", "fe80::1"],
    ["fe80::1%eth0", "fe80::1"],
    ["[fe80::1%25eth0]", "fe80::1"], // RFC 6874 URI form
    ["fe80::1%1", "fe80::1"],
    ["2001:DB8::A", "2001:db8::a"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // RFC 5952 §4.2.3: first of equal runs
    ["2001:db8:0:0:0:0:2:1", "2001:db8::2:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // §4.2.2: one zero group is not compressed
    ["2001:0db8::0001", "2001:db8::1"], // §4.1: no leading zeros
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"], // longest run wins
    ["::ffff:127.0.0.1", "::ffff:127.0.0.1"], // RFC 5952 §5: mapped keeps dotted form
    ["::FFFF:7F00:1", "::ffff:127.0.0.1"],
    ["[::ffff:a9fe:a9fe]", "::ffff:169.254.169.254"],
    ["::127.0.0.1", "::7f00:1"],
    ["64:ff9b::10.0.0.1", "64:ff9b::a00:1"],
    ["2606:4700::1111", "2606:4700::1111"],
    ["2606:4700:0:0:0:0:0:1111", "2606:4700::1111"],
  ];
  test.each(rows)("%p -> %p", (input, text) => {
    const ip = parseIpLiteral(input);
    expect(ip).not.toBeNull();
    expect(ip?.family).toBe(6);
    expect(ip?.bytes.length).toBe(16);
    expect(ip?.text).toBe(text);
    expect(formatIp(ip!.bytes)).toBe(text);
    // The canonical text parses back to the same bytes.
    expect(parseIpLiteral(text)?.bytes).toEqual(ip!.bytes);
  });

  test("bytes are in network order", () => {
    expect([...parseIpLiteral("2001:db8::ff00:42")!.bytes]).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42]);
  });
});

describe("parseIpLiteral: rejects malformed IPv6", () => {
  const rows: string[] = [
    ":::",
    "1:::2",
    "::1::",
    "1::2::3",
    ":1::2",
    "1::2:",
    "1:2:3:4:5:6:7", // too few groups without ::
    "1:2:3:4:5:6:7:8:9", // too many
    "1:2:3:4::5:6:7:8", // :: must stand for at least one group
    "12345::1",
    "g::1",
    "::ffff:256.0.0.1",
    "::ffff:0177.0.0.1", // no inet_aton forms inside IPv6
    "::ffff:127.1",
    "::ffff:1.2.3.4.5",
    "::1.2.3.4:1", // dotted part only at the end
    "[::1",
    "::1]",
    "[[::1]]",
    "fe80::1%", // empty zone
    "fe80::1%eth 0",
    "fe80::1%eth0/64",
    "::1/128",
  ];
  test.each(rows.map((r) => [r]))("%p", (input) => {
    expect(parseIpLiteral(input)).toBeNull();
  });
});

describe("formatIp", () => {
  test("rejects other lengths", () => {
    expect(() => formatIp(new Uint8Array(5))).toThrow(/4 or 16/);
  });
});

describe("unmapIpv4", () => {
  test("unmaps ::ffff:a.b.c.d only", () => {
    expect(unmapIpv4(parseIpLiteral("::ffff:10.1.2.3")!).text).toBe("10.1.2.3");
    expect(unmapIpv4(parseIpLiteral("::ffff:10.1.2.3")!).family).toBe(4);
    expect(unmapIpv4(parseIpLiteral("64:ff9b::10.1.2.3")!).family).toBe(6);
    expect(unmapIpv4(parseIpLiteral("10.1.2.3")!).text).toBe("10.1.2.3");
  });
});
