import { describe, expect, test } from "bun:test";
import type { Fragment, HttpRequestAction } from "../../../src/core/types.ts";
import { SENSITIVE_HEADERS, headerFragments, requestFragments, urlFragments } from "../../../src/inspect/fragments.ts";
import { httpRequest } from "../../helpers/actions.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const texts = (fragments: readonly Fragment[], location: string) => fragments.filter((f) => f.location === location).map((f) => f.text);
const locations = (fragments: readonly Fragment[]) => fragments.map((f) => f.location);

describe("urlFragments", () => {
  test("host, whole path, each non-empty segment, query values and keys, all raw", () => {
    const out = urlFragments("api.example.com", "/v1//repos/acme%2Fwidgets/", "token=ghp%5Fabc&page=2&flag&=orphan");
    expect(out).toEqual([
      { location: "url.host", text: "api.example.com" },
      { location: "url.path", text: "/v1//repos/acme%2Fwidgets/" },
      { location: "url.path[0]", text: "v1" },
      { location: "url.path[1]", text: "repos" },
      { location: "url.path[2]", text: "acme%2Fwidgets" },
      { location: "url.query-key", text: "token" },
      { location: "url.query.token", text: "ghp%5Fabc" },
      { location: "url.query-key", text: "page" },
      { location: "url.query.page", text: "2" },
      { location: "url.query-key", text: "flag" },
      { location: "url.query.", text: "orphan" },
    ]);
  });

  test("a secret sent as a query key is a fragment; repeated keys keep every value; `+` is not decoded", () => {
    const out = urlFragments("h.example", "/", "sk-proj-AbC123&a=1&a=x+y%2Bz");
    expect(texts(out, "url.query-key")).toEqual(["sk-proj-AbC123", "a", "a"]);
    expect(texts(out, "url.query.a")).toEqual(["1", "x+y%2Bz"]);
  });

  test("no query and root path give host and path only", () => {
    expect(urlFragments("h.example", "/", "")).toEqual([
      { location: "url.host", text: "h.example" },
      { location: "url.path", text: "/" },
    ]);
  });
});

describe("headerFragments", () => {
  test("every header lower-cased with its raw value; proxy credential and framing skipped", () => {
    const out = headerFragments([
      ["Host", "api.openai.com"],
      ["Authorization", "Bearer sk-proj-abc"],
      ["Proxy-Authorization", "Basic c2x1aWNlOnNlY3JldA=="],
      ["Content-Length", "42"],
      ["Transfer-Encoding", "chunked"],
      ["Connection", "keep-alive"],
      ["X-Api-Key", "sk-ant-api03-xyz"],
      ["X-Empty", ""],
    ]);
    expect(out).toEqual([
      { location: "header.host", text: "api.openai.com" },
      { location: "header.authorization", text: "Bearer sk-proj-abc" },
      { location: "header.x-api-key", text: "sk-ant-api03-xyz" },
    ]);
  });

  test("cookie: the whole header and one fragment per cookie", () => {
    const out = headerFragments([["Cookie", "session=abc123; theme=dark;  _ga=GA1.2.3 ; bare"]]);
    expect(out).toEqual([
      { location: "header.cookie", text: "session=abc123; theme=dark;  _ga=GA1.2.3 ; bare" },
      { location: "header.cookie.session", text: "abc123" },
      { location: "header.cookie.theme", text: "dark" },
      { location: "header.cookie._ga", text: "GA1.2.3" },
      { location: "header.cookie.", text: "bare" },
    ]);
  });

  test("repeated headers each give a fragment", () => {
    const out = headerFragments([["X-Part", "ghp_"], ["Accept", "*/*"], ["x-part", "abc"]]);
    expect(texts(out, "header.x-part")).toEqual(["ghp_", "abc"]);
  });

  test("SENSITIVE_HEADERS names the credential headers, lower-case", () => {
    for (const name of ["authorization", "cookie", "x-api-key", "proxy-authorization", "x-goog-api-key", "api-key"]) {
      expect(SENSITIVE_HEADERS.has(name)).toBe(true);
    }
    expect(SENSITIVE_HEADERS.has("accept")).toBe(false);
    for (const name of SENSITIVE_HEADERS) expect(name).toBe(name.toLowerCase());
  });
});

const request = (target: { path?: string; query?: string; headers?: HttpRequestAction["headers"] }) => httpRequest(target);

describe("requestFragments", () => {
  test("URL, headers, body by its content type, then joins", () => {
    const body = enc(JSON.stringify({ model: "gpt-4o", parts: ["ghp_", "1234", "abcd"] }));
    const out = requestFragments(request({ headers: [["Content-Type", "application/json"], ["Authorization", "Bearer sk-x"]] }), body);
    expect(out.kind).toBe("json");
    expect(out.error).toBeUndefined();
    const locs = locations(out.fragments);
    expect(locs.slice(0, 5)).toEqual(["url.host", "url.path", "url.path[0]", "url.path[1]", "url.path[2]"]);
    expect(locs).toContain("header.authorization");
    expect(texts(out.fragments, "body.json.model")).toEqual(["gpt-4o"]);
    expect(texts(out.fragments, "joined(body.json.parts[0]..body.json.parts[2])")).toEqual(["ghp_1234abcd"]);
  });

  test("no body: URL and headers only, query joins included", () => {
    const out = requestFragments(request({ path: "/search", query: "a=ghp_abc&b=def" }));
    expect(out.kind).toBeUndefined();
    expect(texts(out.fragments, "joined(url.query.a..url.query.b)")).toEqual(["ghp_abcdef"]);
  });

  test("two different Content-Type values are not trusted: the body is sniffed and kept whole", () => {
    const body = enc('{"key":"value"}');
    const out = requestFragments(request({ headers: [["Content-Type", "image/png"], ["content-type", "application/json"]] }), body);
    expect(out.kind).toBe("text");
    expect(texts(out.fragments, "body.text")).toEqual(['{"key":"value"}']);
  });

  test("a body error is passed on, with the whole body still present", () => {
    const out = requestFragments(request({ headers: [["Content-Type", "application/json"]] }), enc('{"a": "ghp_x",'));
    expect(out.error).toBe("invalid JSON");
    expect(texts(out.fragments, "body.text")).toEqual(['{"a": "ghp_x",']);
  });
});
