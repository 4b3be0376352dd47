import { describe, expect, test } from "bun:test";
import { formatAuthority, parseAbsoluteTarget, parseConnectTarget, parseTunnelTarget, type Target } from "../../../src/proxy/target.ts";

function absolute(input: string): Target {
  const r = parseAbsoluteTarget(input);
  if ("error" in r) throw new Error(`expected ${JSON.stringify(input)} to parse, got: ${r.error}`);
  return r;
}

function absoluteError(input: string): string {
  const r = parseAbsoluteTarget(input);
  if (!("error" in r)) throw new Error(`expected ${JSON.stringify(input)} to be refused, got ${JSON.stringify(r)}`);
  return r.error;
}

describe("parseAbsoluteTarget: accepted", () => {
  const rows: [input: string, expected: Target][] = [
    ["http://example.com/", { host: "example.com", port: 80, path: "/", query: "", originForm: "/", authority: "example.com" }],
    ["http://example.com", { host: "example.com", port: 80, path: "/", query: "", originForm: "/", authority: "example.com" }],
    ["http://example.com?", { host: "example.com", port: 80, path: "/", query: "", originForm: "/?", authority: "example.com" }],
    ["http://example.com?a=1", { host: "example.com", port: 80, path: "/", query: "a=1", originForm: "/?a=1", authority: "example.com" }],
    ["http://example.com/?", { host: "example.com", port: 80, path: "/", query: "", originForm: "/?", authority: "example.com" }],
    [
      "http://example.com/a/b?c=d&e",
      { host: "example.com", port: 80, path: "/a/b", query: "c=d&e", originForm: "/a/b?c=d&e", authority: "example.com" },
    ],
    ["http://example.com/a?b?c", { host: "example.com", port: 80, path: "/a", query: "b?c", originForm: "/a?b?c", authority: "example.com" }],
    [
      "http://example.com:8080/x",
      { host: "example.com", port: 8080, path: "/x", query: "", originForm: "/x", authority: "example.com:8080" },
    ],
    ["http://example.com:80/x", { host: "example.com", port: 80, path: "/x", query: "", originForm: "/x", authority: "example.com" }],
    // RFC 3986 section 3.2.3: an empty port means the scheme's default.
    ["http://example.com:/x", { host: "example.com", port: 80, path: "/x", query: "", originForm: "/x", authority: "example.com" }],
    ["http://example.com:65535", { host: "example.com", port: 65535, path: "/", query: "", originForm: "/", authority: "example.com:65535" }],
    ["HTTP://EXAMPLE.com/Path", { host: "example.com", port: 80, path: "/Path", query: "", originForm: "/Path", authority: "example.com" }],
    ["http://example.com./", { host: "example.com", port: 80, path: "/", query: "", originForm: "/", authority: "example.com" }],
    ["http://127.0.0.1:3000/", { host: "127.0.0.1", port: 3000, path: "/", query: "", originForm: "/", authority: "127.0.0.1:3000" }],
    ["http://[::1]:8080/", { host: "::1", port: 8080, path: "/", query: "", originForm: "/", authority: "[::1]:8080" }],
    ["http://[::1]/", { host: "::1", port: 80, path: "/", query: "", originForm: "/", authority: "[::1]" }],
    ["http://[::1]", { host: "::1", port: 80, path: "/", query: "", originForm: "/", authority: "[::1]" }],
    ["http://[2001:DB8::1]/p?q", { host: "2001:db8::1", port: 80, path: "/p", query: "q", originForm: "/p?q", authority: "[2001:db8::1]" }],
    // The path is passed on as sent: no decoding, no dot-segment removal.
    ["http://example.com/%2e%2e/x", { host: "example.com", port: 80, path: "/%2e%2e/x", query: "", originForm: "/%2e%2e/x", authority: "example.com" }],
    ["http://example.com/a@b", { host: "example.com", port: 80, path: "/a@b", query: "", originForm: "/a@b", authority: "example.com" }],
  ];
  test.each(rows)("%p", (input, expected) => {
    expect(absolute(input)).toEqual(expected);
  });

  test("IP literals in other spellings are normalised", () => {
    expect(absolute("http://0x7f.1/").host).toBe("127.0.0.1");
    expect(absolute("http://[0:0:0:0:0:0:0:1]/").host).toBe("::1");
  });
});

describe("parseAbsoluteTarget: refused", () => {
  const rows: [input: string, errorPart: string][] = [
    ["http://user:pass@example.com/", "userinfo"],
    ["http://user@example.com/", "userinfo"],
    ["http://@example.com/", "userinfo"],
    ["http://example.com@evil.example/", "userinfo"],
    ["http://example.com:80@evil.example/", "userinfo"],
    ["http://user@example.com?x", "userinfo"],
    ["https://example.com/", "CONNECT"],
    ["HTTPS://example.com/", "CONNECT"],
    ["/index.html", "forward proxy"],
    ["/", "forward proxy"],
    ["*", "absolute-form"],
    ["ftp://example.com/", "absolute-form"],
    ["ws://example.com/", "absolute-form"],
    ["example.com:80", "absolute-form"],
    ["http:/example.com/", "absolute-form"],
    ["http:example.com", "absolute-form"],
    ["http://", "bad authority"],
    ["http:///path", "bad authority"],
    ["http://:8080/", "bad authority"],
    ["http://example.com:0/", "bad authority"],
    ["http://example.com:65536/", "bad authority"],
    ["http://example.com:8o/", "bad authority"],
    ["http://example.com:+80/", "bad authority"],
    ["http://example.com:80:80/", "bad authority"],
    ["http://::1/", "bad authority"],
    ["http://[::1/", "bad authority"],
    ["http://[::1]x/", "bad authority"],
    ["http://exa%6dple.com/", "bad authority"],
    ["http://example.com\\@evil.example/", "userinfo"],
    ["http://example.com#frag", "fragment"],
    ["http://example.com/#frag", "fragment"],
    ["http://example.com/?q#frag", "fragment"],
  ];
  test.each(rows)("%p -> error mentioning %p", (input, errorPart) => {
    expect(absoluteError(input)).toContain(errorPart);
  });

  test("https:// carries a hint to use HTTPS_PROXY", () => {
    expect(absoluteError("https://example.com/")).toContain("HTTPS_PROXY");
  });

  test("origin-form carries a hint to use HTTP_PROXY", () => {
    expect(absoluteError("/x")).toContain("HTTP_PROXY");
  });
});

describe("parseConnectTarget", () => {
  const ok: [input: string, host: string, port: number][] = [
    ["example.com:443", "example.com", 443],
    ["EXAMPLE.com:8443", "example.com", 8443],
    ["example.com.:443", "example.com", 443],
    ["127.0.0.1:443", "127.0.0.1", 443],
    ["[::1]:443", "::1", 443],
    ["[2001:DB8::1]:1", "2001:db8::1", 1],
    ["a.example:65535", "a.example", 65535],
  ];
  test.each(ok)("%p -> %p port %p", (input, host, port) => {
    expect(parseConnectTarget(input)).toEqual({ host, port });
  });

  const refused = [
    "example.com",
    "example.com:",
    ":443",
    "example.com:0",
    "example.com:65536",
    "example.com:https",
    "example.com:-1",
    "user@example.com:443",
    "user:pass@example.com:443",
    "example.com:443/",
    "example.com:443/path",
    "http://example.com:443",
    "::1:443",
    "[::1]",
    "[::1]:",
    "",
  ];
  test.each(refused)("%p is refused", (input) => {
    const r = parseConnectTarget(input);
    expect("error" in r).toBe(true);
  });
});

describe("formatAuthority", () => {
  const rows: [host: string, port: number, def: number, out: string][] = [
    ["example.com", 80, 80, "example.com"],
    ["example.com", 8080, 80, "example.com:8080"],
    ["example.com", 443, 443, "example.com"],
    ["example.com", 80, 443, "example.com:80"],
    ["::1", 80, 80, "[::1]"],
    ["2001:db8::1", 8443, 443, "[2001:db8::1]:8443"],
    ["10.0.0.1", 81, 80, "10.0.0.1:81"],
  ];
  test.each(rows)("%p %p (default %p) -> %p", (host, port, def, out) => {
    expect(formatAuthority(host, port, def)).toBe(out);
  });
});

describe("parseTunnelTarget (requests inside an intercepted tunnel)", () => {
  test("origin-form takes the tunnel's host and port; the authority names the port unless it is 443", () => {
    expect(parseTunnelTarget("/a/b?x=1", "api.example.com", 443)).toEqual({ host: "api.example.com", port: 443, path: "/a/b", query: "x=1", originForm: "/a/b?x=1", authority: "api.example.com" });
    expect(parseTunnelTarget("/", "2001:db8::1", 8443)).toMatchObject({ authority: "[2001:db8::1]:8443" });
  });

  test("absolute-form is taken only when it names the tunnel's own origin; anything else is refused", () => {
    expect(parseTunnelTarget("https://api.example.com/v1?q", "api.example.com", 443)).toMatchObject({ path: "/v1", query: "q", originForm: "/v1?q" });
    expect(parseTunnelTarget("https://API.example.com:443", "api.example.com", 443)).toMatchObject({ originForm: "/" });
    for (const [target, why] of [
      ["https://evil.example/x", /not the tunnel's host/],
      ["https://api.example.com:8443/", /not the tunnel's host/],
      ["http://api.example.com/", /origin-form/],
      ["api.example.com:443", /origin-form/],
      ["*", /origin-form/],
      ["/a#frag", /fragment/],
    ] as const) {
      const r = parseTunnelTarget(target, "api.example.com", 443);
      expect("error" in r && r.error).toMatch(why);
    }
  });
});
