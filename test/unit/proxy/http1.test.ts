import { describe, expect, test } from "bun:test";
import {
  findHeadEnd,
  HOP_BY_HOP,
  parseRequestHead,
  parseResponseHead,
  responseHasBody,
  serializeHeaders,
  type ParseError,
  type RequestHead,
  type ResponseHead,
} from "../../../src/proxy/http1.ts";

/** A request head: the request line, header lines, and the blank line that ends the head. */
function head(requestLine: string, ...headers: string[]): string {
  return [requestLine, ...headers].join("\r\n") + "\r\n\r\n";
}

function request(requestLine: string, ...headers: string[]): RequestHead {
  const r = parseRequestHead(head(requestLine, ...headers));
  if (r.error) throw new Error(`expected ${JSON.stringify(requestLine)} ${JSON.stringify(headers)} to parse, got ${r.status} ${r.message}`);
  return r;
}

function requestError(requestLine: string, ...headers: string[]): ParseError {
  const r = parseRequestHead(head(requestLine, ...headers));
  if (!r.error) throw new Error(`expected ${JSON.stringify(requestLine)} ${JSON.stringify(headers)} to be refused, it parsed as ${JSON.stringify(r)}`);
  return r;
}

function response(statusLine: string, ...headers: string[]): ResponseHead {
  const r = parseResponseHead(head(statusLine, ...headers));
  if (r.error) throw new Error(`expected ${JSON.stringify(statusLine)} ${JSON.stringify(headers)} to parse, got ${r.status} ${r.message}`);
  return r;
}

function responseError(statusLine: string, ...headers: string[]): ParseError {
  const r = parseResponseHead(head(statusLine, ...headers));
  if (!r.error) throw new Error(`expected ${JSON.stringify(statusLine)} ${JSON.stringify(headers)} to be refused, it parsed as ${JSON.stringify(r)}`);
  return r;
}

const GET = "GET http://example.com/ HTTP/1.1";
const POST = "POST http://example.com/upload HTTP/1.1";
const POST10 = "POST http://example.com/upload HTTP/1.0";

describe("findHeadEnd", () => {
  test("returns the index just past CRLFCRLF, or -1", () => {
    const text = "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\nBODY";
    expect(findHeadEnd(Buffer.from(text, "latin1"))).toBe(text.indexOf("BODY"));
    expect(findHeadEnd(Buffer.from("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r", "latin1"))).toBe(-1);
    expect(findHeadEnd(Buffer.from("", "latin1"))).toBe(-1);
  });

  test("finds a terminator that straddles the previous search position", () => {
    const text = "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n";
    const full = Buffer.from(text, "latin1");
    // The caller searched the first part already and passes its length as `from`; every split
    // point inside the CRLFCRLF must still be found.
    for (let split = text.length - 4; split < text.length; split++) {
      expect(findHeadEnd(full, split)).toBe(text.length);
    }
  });

  test("only LF LF is not a head end (bare LF framing is refused elsewhere)", () => {
    expect(findHeadEnd(Buffer.from("GET http://a/ HTTP/1.1\nHost: a\n\n", "latin1"))).toBe(-1);
  });
});

describe("parseRequestHead: request line", () => {
  const ok: [line: string, method: string, target: string, minor: number][] = [
    ["GET http://example.com/ HTTP/1.1", "GET", "http://example.com/", 1],
    ["GET http://example.com/ HTTP/1.0", "GET", "http://example.com/", 0],
    ["HEAD http://example.com/x?y=1 HTTP/1.1", "HEAD", "http://example.com/x?y=1", 1],
    ["POST http://example.com/ HTTP/1.1", "POST", "http://example.com/", 1],
    ["PUT http://example.com/a HTTP/1.1", "PUT", "http://example.com/a", 1],
    ["DELETE http://example.com/a HTTP/1.1", "DELETE", "http://example.com/a", 1],
    ["PATCH http://example.com/a HTTP/1.1", "PATCH", "http://example.com/a", 1],
    ["OPTIONS http://example.com/ HTTP/1.1", "OPTIONS", "http://example.com/", 1],
    ["OPTIONS * HTTP/1.1", "OPTIONS", "*", 1],
    ["CONNECT example.com:443 HTTP/1.1", "CONNECT", "example.com:443", 1],
    ["CONNECT [::1]:443 HTTP/1.1", "CONNECT", "[::1]:443", 1],
    ["PROPFIND http://example.com/dav HTTP/1.1", "PROPFIND", "http://example.com/dav", 1],
    ["M-SEARCH http://example.com/ HTTP/1.1", "M-SEARCH", "http://example.com/", 1],
    // Methods are case-sensitive tokens (RFC 9110 section 9.1): kept as sent.
    ["get http://example.com/ HTTP/1.1", "get", "http://example.com/", 1],
    ["GET /origin-form HTTP/1.1", "GET", "/origin-form", 1],
  ];
  test.each(ok)("%p parses", (line, method, target, minor) => {
    const r = request(line, "Host: example.com");
    expect(r.method).toBe(method);
    expect(r.target).toBe(target);
    expect(r.minor).toBe(minor);
  });

  const refused: [line: string, status: ParseError["status"]][] = [
    // RFC 9112 section 2.5 / 3: a version we do not speak is 505, a malformed one is 400.
    ["GET http://example.com/ HTTP/2.0", 505],
    ["GET http://example.com/ HTTP/1.2", 505],
    ["GET http://example.com/ HTTP/0.9", 505],
    ["GET http://example.com/ HTTP/3.0", 505],
    ["GET http://example.com/ HTTP/9.9", 505],
    ["GET http://example.com/ http/1.1", 400],
    ["GET http://example.com/ HTTP/1.10", 400],
    ["GET http://example.com/ HTTP/11", 400],
    ["GET http://example.com/ HTTP/1", 400],
    ["GET http://example.com/ HTTP/1.1x", 400],
    ["GET http://example.com/ HTTP/2", 400],
    ["GET http://example.com/ HTTPS/1.1", 400],
    ["GET http://example.com/", 400],
    ["GET", 400],
    ["", 400],
    ["GET  http://example.com/ HTTP/1.1", 400],
    ["GET http://example.com/  HTTP/1.1", 400],
    ["GET http://example.com/ HTTP/1.1 ", 400],
    [" GET http://example.com/ HTTP/1.1", 400],
    ["GET http://exa mple.com/ HTTP/1.1", 400],
    ["GET\thttp://example.com/ HTTP/1.1", 400],
    ["GET http://example.com/\tHTTP/1.1", 400],
    ["G(T http://example.com/ HTTP/1.1", 400],
    ["GET/ http://example.com/ HTTP/1.1", 400],
    ["G\u00e9T http://example.com/ HTTP/1.1", 400],
    ["GET http://example.com/\x7f HTTP/1.1", 400],
    ["GET http://example.com/\x00 HTTP/1.1", 400],
    ["GET http://example.com/\x01 HTTP/1.1", 400],
  ];
  test.each(refused)("%p is refused with %p", (line, status) => {
    expect(requestError(line, "Host: example.com").status).toBe(status);
  });
});

describe("parseRequestHead: header fields", () => {
  test("headers come back in wire order with names as sent and values without surrounding OWS", () => {
    const r = request(GET, "Host: example.com", "X-Mixed-Case:value", "X-Ows: \t padded \t ", "Accept: */*");
    expect(r.headers).toEqual([
      ["Host", "example.com"],
      ["X-Mixed-Case", "value"],
      ["X-Ows", "padded"],
      ["Accept", "*/*"],
    ]);
  });

  test("HTAB and obs-text inside a value are allowed (RFC 9110 section 5.5)", () => {
    const r = request(GET, "X-Tab: a\tb", "X-Latin1: caf\u00e9", "X-Empty:");
    expect(r.headers).toEqual([
      ["X-Tab", "a\tb"],
      ["X-Latin1", "caf\u00e9"],
      ["X-Empty", ""],
    ]);
  });

  const refused: [desc: string, lines: string[]][] = [
    ["space before the colon", ["Host : example.com"]],
    ["tab before the colon", ["Host\t: example.com"]],
    ["space before the colon on Transfer-Encoding", ["Transfer-Encoding : chunked"]],
    ["obs-fold with a space", ["X-A: b", " c"]],
    ["obs-fold with a tab", ["X-A: b", "\tc"]],
    ["obs-fold as the first header line", [" Host: example.com"]],
    ["NUL in a value", ["X-A: b\x00c"]],
    ["SOH in a value", ["X-A: b\x01c"]],
    ["ESC in a value", ["X-A: \x1b[31mred"]],
    ["DEL in a value", ["X-A: b\x7fc"]],
    ["bare CR in a value", ["X-A: b\rc"]],
    ["bare LF in a value", ["X-A: b\nc"]],
    ["bare LF line ending", ["X-A: b\nX-B: c"]],
    ["bare CR line ending", ["X-A: b\rX-B: c"]],
    ["a line without a colon", ["NoColonHere"]],
    ["an empty field name", [": value"]],
    ["a space inside the field name", ["X A: b"]],
    ["a separator in the field name", ["X(A): b"]],
    ["a non-ASCII field name", ["X-\u00e9: b"]],
    ["a control character in the field name", ["X\x01A: b"]],
  ];
  test.each(refused)("%s -> 400", (_desc, lines) => {
    expect(requestError(GET, "Host: example.com", ...lines).status).toBe(400);
  });

  test("bare LF inside the request line is refused", () => {
    const r = parseRequestHead("GET http://example.com/ HTTP/1.1\nHost: example.com\r\n\r\n");
    expect(r.error && r.status).toBe(400);
  });

  // RFC 9110 section 5.5: only SP and HTAB are OWS. JavaScript's trim() also strips VT, FF, NBSP
  // and Unicode spaces, so a control character at the edge of a value escapes the check and the
  // value is forwarded "cleaned": the proxy and the origin then disagree about the message.
  const edgeControls: [desc: string, line: string][] = [
    ["trailing form feed", "X-A: foo\x0c"],
    ["leading vertical tab", "X-A: \x0bfoo"],
    ["vertical tab after chunked", "Transfer-Encoding: chunked\x0b"],
    ["form feed before a Content-Length", "Content-Length: \x0c5"],
  ];
  test.each(edgeControls)("a control character at the edge of a value is refused, not trimmed: %s", (_desc, line) => {
    expect(requestError(POST, "Host: example.com", line).status).toBe(400);
  });

  test("a non-breaking space after a Content-Length is not trimmed into a valid length", () => {
    // NBSP (0xA0) is obs-text, not OWS: "5\xa0" is not 1*DIGIT, so the length is invalid.
    expect(requestError(POST, "Host: example.com", "Content-Length: 5\u00a0").status).toBe(400);
  });
});

describe("parseRequestHead: framing", () => {
  test("no framing headers: no body length and not chunked", () => {
    const r = request(GET, "Host: example.com");
    expect(r.contentLength).toBeNull();
    expect(r.chunked).toBe(false);
  });

  const lengths: [value: string, length: number][] = [
    ["0", 0],
    ["5", 5],
    ["42", 42],
    ["0042", 42],
    ["999999999999999", 999999999999999],
  ];
  test.each(lengths)("Content-Length: %p -> %p", (value, length) => {
    const r = request(POST, "Host: example.com", `Content-Length: ${value}`);
    expect(r.contentLength).toBe(length);
    expect(r.chunked).toBe(false);
  });

  test("Content-Length without a space after the colon", () => {
    expect(request(POST, "Host: example.com", "Content-Length:7").contentLength).toBe(7);
  });

  const badLengths = ["+5", "-5", "0x5", "0x05", "5 5", "5,5", "5, 5", "", "1e3", "5.0", "five", "1234567890123456", "\u0665"];
  test.each(badLengths)("Content-Length: %p -> 400", (value) => {
    expect(requestError(POST, "Host: example.com", `Content-Length: ${value}`).status).toBe(400);
  });

  test("two Content-Length headers are refused even with equal values", () => {
    expect(requestError(POST, "Host: example.com", "Content-Length: 5", "Content-Length: 5").status).toBe(400);
    expect(requestError(POST, "Host: example.com", "Content-Length: 5", "content-length: 5").status).toBe(400);
    expect(requestError(POST, "Host: example.com", "Content-Length: 5", "Content-Length: 6").status).toBe(400);
  });

  const chunkedOk: [desc: string, lines: string[]][] = [
    ["plain", ["Transfer-Encoding: chunked"]],
    ["coding names are case-insensitive", ["Transfer-Encoding: Chunked"]],
    ["upper case", ["TRANSFER-ENCODING: CHUNKED"]],
    ["no space after the colon", ["Transfer-Encoding:chunked"]],
    ["extra OWS around the value", ["Transfer-Encoding: \t chunked \t"]],
  ];
  test.each(chunkedOk)("chunked request: %s", (_desc, lines) => {
    const r = request(POST, "Host: example.com", ...lines);
    expect(r.chunked).toBe(true);
    expect(r.contentLength).toBeNull();
  });

  const smuggling: [desc: string, lines: string[], status: ParseError["status"]][] = [
    ["CL then TE", ["Content-Length: 5", "Transfer-Encoding: chunked"], 400],
    ["TE then CL", ["Transfer-Encoding: chunked", "Content-Length: 5"], 400],
    ["TE with CL 0", ["Transfer-Encoding: chunked", "Content-Length: 0"], 400],
    ["TE gzip with CL", ["Transfer-Encoding: gzip", "Content-Length: 5"], 400],
    ["gzip", ["Transfer-Encoding: gzip"], 501],
    ["identity", ["Transfer-Encoding: identity"], 501],
    ["chunked, identity", ["Transfer-Encoding: chunked, identity"], 501],
    ["identity, chunked", ["Transfer-Encoding: identity, chunked"], 501],
    ["gzip, chunked", ["Transfer-Encoding: gzip, chunked"], 501],
    ["chunked, chunked", ["Transfer-Encoding: chunked, chunked"], 501],
    ["two TE headers, both chunked", ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], 501],
    ["two TE headers, chunked then identity", ["Transfer-Encoding: chunked", "Transfer-Encoding: identity"], 501],
    ["chunked with a parameter", ["Transfer-Encoding: chunked;q=1"], 501],
    ["quoted chunked", ['Transfer-Encoding: "chunked"'], 501],
    ["space inside the coding", ["Transfer-Encoding: ch unked"], 501],
    ["a prefix on the coding", ["Transfer-Encoding: xchunked"], 501],
    ["a trailing comma", ["Transfer-Encoding: chunked,"], 501],
    ["an empty value", ["Transfer-Encoding:"], 501],
    ["space before the colon", ["Transfer-Encoding : chunked"], 400],
    ["folded onto the next line", ["Transfer-Encoding:", " chunked"], 400],
    ["name with a leading space", [" Transfer-Encoding: chunked"], 400],
  ];
  test.each(smuggling)("refused: %s -> %p", (_desc, lines, status) => {
    expect(requestError(POST, "Host: example.com", ...lines).status).toBe(status);
  });

  test("Transfer-Encoding in an HTTP/1.0 request is refused (RFC 9112 section 6.1)", () => {
    expect(requestError(POST10, "Host: example.com", "Transfer-Encoding: chunked").status).toBe(400);
  });

  test("a 501 names the unsupported coding", () => {
    expect(requestError(POST, "Host: example.com", "Transfer-Encoding: gzip").message).toContain("gzip");
  });
});

describe("parseRequestHead: Connection and close", () => {
  const rows: [desc: string, version: "1.0" | "1.1", lines: string[], close: boolean, tokens: string[]][] = [
    ["1.1 default is persistent", "1.1", [], false, []],
    ["1.1 with close", "1.1", ["Connection: close"], true, ["close"]],
    ["1.1 with Close (case-insensitive)", "1.1", ["Connection: Close"], true, ["close"]],
    ["1.1 with keep-alive", "1.1", ["Connection: keep-alive"], false, ["keep-alive"]],
    ["1.1 close among other tokens", "1.1", ["Connection: Keep-Alive, X-Foo ,close"], true, ["keep-alive", "x-foo", "close"]],
    ["1.1 close in a second Connection header", "1.1", ["Connection: x-foo", "Connection: close"], true, ["x-foo", "close"]],
    ["1.1 empty list members are skipped", "1.1", ["Connection: , x-foo,,"], false, ["x-foo"]],
    ["1.0 default closes", "1.0", [], true, []],
    ["1.0 with keep-alive", "1.0", ["Connection: keep-alive"], false, ["keep-alive"]],
    ["1.0 with Keep-Alive", "1.0", ["Connection: Keep-Alive"], false, ["keep-alive"]],
    ["1.0 with keep-alive and close", "1.0", ["Connection: keep-alive, close"], true, ["keep-alive", "close"]],
    ["1.0 with another token only", "1.0", ["Connection: x-foo"], true, ["x-foo"]],
    ["close as a substring is not close", "1.1", ["Connection: closed"], false, ["closed"]],
  ];
  test.each(rows)("%s", (_desc, version, lines, close, tokens) => {
    const r = request(`GET http://example.com/ HTTP/${version}`, "Host: example.com", ...lines);
    expect(r.close).toBe(close);
    expect([...r.connection]).toEqual(tokens);
  });
});

describe("parseResponseHead", () => {
  const statusLines: [line: string, status: number, reason: string, minor: number][] = [
    ["HTTP/1.1 200 OK", 200, "OK", 1],
    ["HTTP/1.1 404 Not Found", 404, "Not Found", 1],
    ["HTTP/1.1 204", 204, "", 1],
    ["HTTP/1.1 204 ", 204, "", 1],
    ["HTTP/1.0 200 OK", 200, "OK", 0],
    ["HTTP/1.1 599 Whatever Reason: with colon", 599, "Whatever Reason: with colon", 1],
  ];
  test.each(statusLines)("%p", (line, status, reason, minor) => {
    const r = response(line, "Content-Length: 0");
    expect(r.status).toBe(status);
    expect(r.reason).toBe(reason);
    expect(r.minor).toBe(minor);
  });

  const malformed = [
    "HTTP/1.1 20 OK",
    "HTTP/1.1 2000 OK",
    "HTTP/1.1 abc OK",
    "HTTP/1.1  200 OK",
    "HTTP/1.1 200\tOK",
    "HTTP/2 200 OK",
    "HTTP/1.2 200 OK",
    "HTTP/2.0 200 OK",
    "http/1.1 200 OK",
    "ICY 200 OK",
    " HTTP/1.1 200 OK",
    "",
  ];
  test.each(malformed)("malformed status line %p -> 502", (line) => {
    expect(responseError(line).status).toBe(502);
  });

  // RFC 9112 section 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ). The reason is copied
  // into the status line sent to the client, so a control character in it reaches the client.
  test.each([
    ["NUL", "HTTP/1.1 200 O\x00K"],
    ["ESC", "HTTP/1.1 200 \x1b[2JOK"],
    ["DEL", "HTTP/1.1 200 OK\x7f"],
  ])("a control character (%s) in the reason phrase is refused", (_name, line) => {
    expect(responseError(line, "Content-Length: 0").status).toBe(502);
  });

  test("Content-Length framing", () => {
    const r = response("HTTP/1.1 200 OK", "Content-Length: 12");
    expect(r.contentLength).toBe(12);
    expect(r.chunked).toBe(false);
  });

  test("no framing: neither length nor chunked (body runs to close)", () => {
    const r = response("HTTP/1.1 200 OK", "Content-Type: text/plain");
    expect(r.contentLength).toBeNull();
    expect(r.chunked).toBe(false);
  });

  test("Transfer-Encoding overrides Content-Length and the Content-Length header is dropped", () => {
    for (const lines of [
      ["Content-Length: 10", "Transfer-Encoding: chunked"],
      ["Transfer-Encoding: chunked", "Content-Length: 10"],
    ]) {
      const r = response("HTTP/1.1 200 OK", "X-Before: 1", ...lines, "X-After: 2");
      expect(r.chunked).toBe(true);
      expect(r.contentLength).toBeNull();
      expect(r.headers.map(([n]) => n.toLowerCase())).toEqual(["x-before", "transfer-encoding", "x-after"]);
    }
  });

  const refused: [desc: string, lines: string[]][] = [
    ["gzip", ["Transfer-Encoding: gzip"]],
    ["gzip, chunked", ["Transfer-Encoding: gzip, chunked"]],
    ["chunked, identity", ["Transfer-Encoding: chunked, identity"]],
    ["duplicate Content-Length", ["Content-Length: 5", "Content-Length: 5"]],
    ["signed Content-Length", ["Content-Length: +5"]],
    ["hex Content-Length", ["Content-Length: 0x5"]],
    ["obs-fold", ["X-A: b", " c"]],
    ["space before colon", ["Content-Length : 5"]],
    ["bare LF", ["X-A: b\nX-B: c"]],
    ["bare CR", ["X-A: b\rc"]],
    ["NUL in value", ["X-A: \x00"]],
    ["vertical tab after a Content-Length (trimmed by String#trim)", ["Content-Length: 5\x0b"]],
  ];
  test.each(refused)("refused from upstream: %s -> 502", (_desc, lines) => {
    expect(responseError("HTTP/1.1 200 OK", ...lines).status).toBe(502);
  });

  const close: [line: string, lines: string[], close: boolean][] = [
    ["HTTP/1.1 200 OK", [], false],
    ["HTTP/1.1 200 OK", ["Connection: close"], true],
    ["HTTP/1.1 200 OK", ["Connection: keep-alive"], false],
    ["HTTP/1.0 200 OK", [], true],
    ["HTTP/1.0 200 OK", ["Connection: keep-alive"], false],
  ];
  test.each(close)("%p %p -> close %p", (line, lines, expected) => {
    expect(response(line, "Content-Length: 0", ...lines).close).toBe(expected);
  });
});

describe("responseHasBody", () => {
  const rows: [method: string, status: number, body: boolean][] = [
    ["GET", 200, true],
    ["POST", 201, true],
    ["GET", 205, true],
    ["GET", 404, true],
    ["GET", 500, true],
    ["HEAD", 200, false],
    ["HEAD", 404, false],
    ["GET", 100, false],
    ["GET", 101, false],
    ["GET", 103, false],
    ["GET", 199, false],
    ["GET", 204, false],
    ["POST", 204, false],
    ["GET", 304, false],
    ["GET", 200, true],
  ];
  test.each(rows)("%s %p -> %p", (method, status, body) => {
    expect(responseHasBody(method, status)).toBe(body);
  });
});

describe("serializeHeaders", () => {
  test("HOP_BY_HOP holds the RFC 9110 section 7.6.1 fields and the proxy credential", () => {
    for (const name of ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]) {
      expect(HOP_BY_HOP.has(name)).toBe(true);
    }
  });

  test("drops hop-by-hop headers, Proxy-Authorization and headers named by Connection", () => {
    const r = request(
      GET,
      "Host: example.com",
      "Connection: keep-alive, X-Named, Upgrade",
      "Keep-Alive: timeout=5",
      "Proxy-Connection: keep-alive",
      "Proxy-Authorization: Basic dXNlcjpzZWNyZXQ=",
      "PROXY-AUTHENTICATE: Basic",
      "X-Named: drop me",
      "x-named: drop me too",
      "TE: trailers",
      "Trailer: X-Checksum",
      "Upgrade: websocket",
      "Accept: */*",
      "X-Kept: yes",
    );
    expect(serializeHeaders(r.headers, r.connection)).toBe("Host: example.com\r\nAccept: */*\r\nX-Kept: yes\r\n");
  });

  test("Transfer-Encoding is dropped (the proxy re-frames)", () => {
    expect(serializeHeaders([["Transfer-Encoding", "chunked"], ["X-A", "1"]], [])).toBe("X-A: 1\r\n");
  });

  test("the skip set removes more names, case-insensitively", () => {
    const out = serializeHeaders(
      [
        ["Host", "a"],
        ["HOST", "b"],
        ["X-A", "1"],
      ],
      [],
      new Set(["host"]),
    );
    expect(out).toBe("X-A: 1\r\n");
  });

  test("names keep their case and order; values are written as given", () => {
    expect(
      serializeHeaders(
        [
          ["x-lower", "a"],
          ["X-UPPER", "b c"],
          ["X-Lower", "d"],
        ],
        [],
      ),
    ).toBe("x-lower: a\r\nX-UPPER: b c\r\nX-Lower: d\r\n");
  });

  test("no headers -> empty string", () => {
    expect(serializeHeaders([], ["close"])).toBe("");
  });

  test("works on response heads too", () => {
    const r = response("HTTP/1.1 200 OK", "Connection: X-Internal", "X-Internal: secret", "Content-Length: 3", "Keep-Alive: timeout=5");
    expect(serializeHeaders(r.headers, r.connection)).toBe("Content-Length: 3\r\n");
  });
});
