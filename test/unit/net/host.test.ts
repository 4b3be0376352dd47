import { describe, expect, test } from "bun:test";
import { normaliseHost, parsePort, splitHostPort, splitHostPortWithDefault } from "../../../src/net/host.ts";

describe("normaliseHost: accepted", () => {
  const rows: [raw: string, host: string, isIp: boolean][] = [
    ["example.com", "example.com", false],
    ["EXAMPLE.Com", "example.com", false],
    ["example.com.", "example.com", false], // one trailing root dot
    ["API.GitHub.com.", "api.github.com", false],
    ["_dmarc.example.com", "_dmarc.example.com", false],
    ["a-b.example", "a-b.example", false],
    ["localhost", "localhost", false],
    ["1.2.3.foo", "1.2.3.foo", false], // last label not numeric: a name
    ["0xg.example", "0xg.example", false],
    ["bücher.de", "xn--bcher-kva.de", false], // IDN to punycode (UTS #46)
    ["BÜCHER.de.", "xn--bcher-kva.de", false],
    ["xn--bcher-kva.de", "xn--bcher-kva.de", false],
    ["ＥＸＡＭＰＬＥ.com", "example.com", false], // full-width folds to ASCII
    ["example。com", "example.com", false], // ideographic full stop is a dot
    ["münchen.example。", "xn--mnchen-3ya.example", false],
    [`${"a".repeat(63)}.com`, `${"a".repeat(63)}.com`, false],
    // IPv4 literals in every spelling come out canonical.
    ["127.0.0.1", "127.0.0.1", true],
    ["127.0.0.1.", "127.0.0.1", true],
    ["2130706433", "127.0.0.1", true],
    ["0x7F.1", "127.0.0.1", true],
    ["0177.0.0.1", "127.0.0.1", true],
    ["1.2.3.0x10", "1.2.3.16", true],
    ["１２７。０。０。１", "127.0.0.1", true], // full-width digits
    // IPv6 with and without brackets.
    ["[::1]", "::1", true],
    ["::1", "::1", true],
    ["[2001:DB8::1]", "2001:db8::1", true],
    ["[fe80::1%25eth0]", "fe80::1", true],
    ["[::ffff:7f00:1]", "127.0.0.1", true], // IPv4-mapped: one address, one spelling
  ];
  test.each(rows)("%p -> %p", (raw, host, isIp) => {
    const result = normaliseHost(raw);
    expect(result).toMatchObject({ ok: true, host });
    if (result.ok) expect(result.ip !== null).toBe(isIp);
  });

  test("253 characters is the limit", () => {
    const label = "a".repeat(61);
    const base = `${[label, label, label, label].join(".")}.b`; // 4 * 61 + 3 dots + 2 = 249
    expect(`${base}.cde`.length).toBe(253);
    expect(normaliseHost(`${base}.cde`)).toMatchObject({ ok: true });
    expect(normaliseHost(`${base}.cdef`)).toMatchObject({ ok: false });
    expect(normaliseHost(`${base}.cde.`)).toMatchObject({ ok: true }); // the root dot does not count
  });
});

describe("normaliseHost: rejected", () => {
  const rows: [raw: string, why: RegExp][] = [
    ["", /empty/],
    [".", /empty/],
    ["example.com..", /empty label/], // only one trailing dot is stripped
    ["..example.com", /empty label/],
    ["foo..com", /empty label/],
    [`${"a".repeat(64)}.com`, /label longer than 63/],
    [`${"a.".repeat(127)}ab`, /longer than 253/],
    ["exa mple.com", /invalid character/],
    ["exa*mple.com", /invalid character/],
    ["*.example.com", /invalid character/],
    ["user@example.com", /invalid character/],
    ["example.com/path", /invalid character/],
    ["exa%6dple.com", /percent-encoding/],
    ["example.com:443", /IPv6/], // ports are split off by splitHostPort
    ["[example.com]", /IPv6/],
    ["[127.0.0.1]", /IPv6/],
    ["[::1", /IPv6/],
    ["1:::2", /IPv6/],
    ["xn--zz.com", /punycode/],
    ["a\u0000b.com", /invalid/],
    // WHATWG "ends in a number": numeric last label must make a valid IPv4 address.
    ["256.0.0.1", /ends in a number/],
    ["1.2.3.4.5", /ends in a number/],
    ["foo.123", /ends in a number/],
    ["example.08", /ends in a number/], // 08 is numeric but not octal
    ["foo.0x", /ends in a number/],
    ["4294967296", /ends in a number/],
    ["１２７.０.０.２５６", /internationalised/], // folds to 127.0.0.256, which UTS #46 refuses
  ];
  test.each(rows)("%p", (raw, why) => {
    const result = normaliseHost(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(why);
  });
});

describe("splitHostPort", () => {
  const good: [authority: string, host: string, port: number][] = [
    ["example.com:443", "example.com", 443],
    ["EXAMPLE.com.:8080", "example.com", 8080],
    ["[::1]:8443", "::1", 8443],
    ["[2001:DB8::1]:1", "2001:db8::1", 1],
    ["127.1:65535", "127.0.0.1", 65535],
    ["bücher.de:443", "xn--bcher-kva.de", 443],
    ["example.com:0443", "example.com", 443],
  ];
  test.each(good)("%p", (authority, host, port) => {
    expect(splitHostPort(authority)).toMatchObject({ ok: true, host, port });
  });

  const bad: [authority: string, why: RegExp][] = [
    ["example.com", /missing port/],
    ["example.com:", /missing port/],
    ["[::1]", /missing port/],
    ["example.com:0", /invalid port/],
    ["example.com:65536", /invalid port/],
    ["example.com:99999", /invalid port/],
    ["example.com:+443", /invalid port/],
    ["example.com:44 3", /invalid port/],
    ["example.com:0x1bb", /invalid port/],
    ["example.com:443a", /invalid port/],
    ["::1:443", /brackets/],
    ["[::1]443", /unexpected text/],
    ["[::1:443", /unterminated/],
    [":443", /empty host/],
    ["exa mple.com:443", /invalid character/],
    ["user@example.com:443", /invalid character/],
  ];
  test.each(bad)("rejects %p", (authority, why) => {
    const result = splitHostPort(authority);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(why);
  });

  test("returns the parsed IP for literals", () => {
    const result = splitHostPort("0x7f.1:80");
    expect(result.ok && result.ip?.text).toBe("127.0.0.1");
  });
});

describe("splitHostPortWithDefault", () => {
  const rows: [authority: string, host: string, port: number][] = [
    ["example.com", "example.com", 80],
    ["example.com:", "example.com", 80], // RFC 3986 §3.2.3: empty port is the default
    ["example.com:8080", "example.com", 8080],
    ["[::1]", "::1", 80],
    ["[::1]:81", "::1", 81],
  ];
  test.each(rows)("%p", (authority, host, port) => {
    expect(splitHostPortWithDefault(authority, 80)).toMatchObject({ ok: true, host, port });
  });
  test("still rejects bad ports", () => {
    expect(splitHostPortWithDefault("example.com:0", 80).ok).toBe(false);
  });
});

describe("parsePort", () => {
  test.each([["1", 1], ["80", 80], ["65535", 65535], ["00080", 80]] as const)("%p -> %p", (text, port) => {
    expect(parsePort(text)).toBe(port);
  });
  test.each([[""], ["0"], ["65536"], ["-1"], ["1e3"], [" 80"], ["000080"]])("rejects %p", (text) => {
    expect(parsePort(text)).toBeNull();
  });
});
