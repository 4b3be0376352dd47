import { describe, expect, test } from "bun:test";
import { compileHostPatterns } from "../../../src/net/host-pattern.ts";

function compileError(patterns: string[]): string {
  try {
    compileHostPatterns(patterns);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(patterns)} to be rejected`);
}

describe("compileHostPatterns: matching", () => {
  const matcher = compileHostPatterns([
    "api.github.com",
    "*.example.com",
    "*.deep.example.org",
    "registry.npmjs.org:443",
    "10.0.0.5",
    "0x7f.1:8080", // IP in any spelling is normalised
    "[::1]:8443",
    "2001:db8::1",
    "Bücher.DE.",
    "*.internal.corp",
    "*.svc.cluster.local:8443",
  ]);

  const rows: [host: string, port: number, pattern: string | null][] = [
    ["api.github.com", 443, "api.github.com"],
    ["api.github.com", 22, "api.github.com"], // no port in the pattern: any port
    ["github.com", 443, null],
    ["evil-api.github.com", 443, null],
    ["api.github.com.evil.net", 443, null],
    // Wildcards: subdomains at any depth, never the apex.
    ["a.example.com", 443, "*.example.com"],
    ["a.b.c.example.com", 80, "*.example.com"],
    ["example.com", 443, null],
    ["notexample.com", 443, null],
    ["example.com.evil.net", 443, null],
    ["x.deep.example.org", 443, "*.deep.example.org"],
    ["deep.example.org", 443, null],
    ["example.org", 443, null],
    // Ports.
    ["registry.npmjs.org", 443, "registry.npmjs.org:443"],
    ["registry.npmjs.org", 80, null],
    ["127.0.0.1", 8080, "0x7f.1:8080"],
    ["127.0.0.1", 80, null],
    ["::1", 8443, "[::1]:8443"],
    ["::1", 443, null],
    ["10.0.0.5", 1234, "10.0.0.5"],
    ["10.0.0.6", 1234, null],
    ["2001:db8::1", 443, "2001:db8::1"],
    ["xn--bcher-kva.de", 443, "Bücher.DE."],
    ["a.internal.corp", 443, "*.internal.corp"],
    ["api.svc.cluster.local", 8443, "*.svc.cluster.local:8443"],
    ["api.svc.cluster.local", 443, null],
  ];
  test.each(rows)("%p:%p -> %p", (host, port, pattern) => {
    expect(matcher.match(host, port)).toBe(pattern);
  });
});

describe("compileHostPatterns: precedence", () => {
  test("exact beats wildcard, port-specific beats any-port, deeper wildcard beats shallower", () => {
    const matcher = compileHostPatterns(["*.example.com", "api.example.com", "*.api.example.com:443", "*.api.example.com", "api.example.com:8443"]);
    expect(matcher.match("api.example.com", 443)).toBe("api.example.com");
    expect(matcher.match("api.example.com", 8443)).toBe("api.example.com:8443");
    expect(matcher.match("v1.api.example.com", 443)).toBe("*.api.example.com:443");
    expect(matcher.match("v1.api.example.com", 80)).toBe("*.api.example.com");
    expect(matcher.match("www.example.com", 80)).toBe("*.example.com");
  });
  test("the first of duplicate patterns is reported", () => {
    const matcher = compileHostPatterns(["Example.com", "example.com."]);
    expect(matcher.match("example.com", 1)).toBe("Example.com");
  });
  test("empty list matches nothing", () => {
    expect(compileHostPatterns([]).match("example.com", 443)).toBeNull();
  });
});

describe("compileHostPatterns: rejected patterns", () => {
  const rows: [pattern: string, why: RegExp][] = [
    ["", /empty pattern/],
    ["*", /bare wildcard/],
    ["*:443", /bare wildcard/],
    ["*.", /wildcard without a domain/],
    ["**.example.com", /only allowed as the whole leading label/],
    ["*example.com", /only allowed as the whole leading label/],
    ["api.*.example.com", /only allowed as the whole leading label/],
    ["api.example.*", /only allowed as the whole leading label/],
    ["*.*.example.com", /only allowed as the whole leading label/],
    ["a*.example.com", /only allowed as the whole leading label/],
    ["*.com", /public suffix/],
    ["*.COM.", /public suffix/],
    ["*.co.uk", /public suffix/],
    ["*.github.io", /public suffix/], // PSL private section: anyone can get a subdomain
    ["*.workers.dev", /public suffix/],
    ["*.s3.amazonaws.com", /public suffix/],
    ["*.internal", /public suffix/], // unlisted TLD: PSL default rule "*"
    ["*.xn--p1ai", /public suffix/],
    ["*.рф", /public suffix/],
    ["*.10.0.0.1", /IP address/],
    ["*.0x7f.1", /IP address/],
    ["*.[::1]", /IP address/],
    ["example.com:0", /invalid port/],
    ["example.com:65536", /invalid port/],
    ["example.com:", /invalid port/],
    ["example.com:http", /invalid port/],
    ["[::1]:99999", /invalid port/],
    ["[::1]x", /unexpected text/],
    ["[::1", /unterminated/],
    ["exa mple.com", /invalid character/],
    ["example..com", /empty label/],
    ["256.1.1.1", /ends in a number/],
    ["http://example.com", /invalid port/],
    ["example.com/path", /invalid character/],
  ];
  test.each(rows)("%p", (pattern, why) => {
    const message = compileError([pattern]);
    expect(message).toContain(`#0 ${JSON.stringify(pattern)}`);
    expect(message).toMatch(why);
  });

  test("one error lists every bad pattern with its index", () => {
    const message = compileError(["ok.example.com", "*", "*.co.uk", "fine.org:443", "x.com:0"]);
    expect(message).toContain('#1 "*"');
    expect(message).toContain('#2 "*.co.uk"');
    expect(message).toContain('#4 "x.com:0"');
    expect(message).not.toContain("#0");
    expect(message).not.toContain("#3");
  });

  test("wildcards one level under a public suffix are fine", () => {
    const matcher = compileHostPatterns(["*.example.co.uk", "*.myproject.github.io"]);
    expect(matcher.match("www.example.co.uk", 443)).toBe("*.example.co.uk");
    expect(matcher.match("a.myproject.github.io", 443)).toBe("*.myproject.github.io");
    expect(matcher.match("other.github.io", 443)).toBeNull();
  });
});
