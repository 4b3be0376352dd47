import { describe, expect, test } from "bun:test";
import type { HttpRequestAction } from "../../../src/core/types.ts";
import { compileHostPatterns } from "../../../src/net/host-pattern.ts";
import type { Credential } from "../../../src/policy/policy.ts";
import { covers, EchoGuard, judgeBodyPlaceholders, judgeCredentials, replacePlaceholders, sameHeader } from "../../../src/proxy/credentials.ts";

const entry = (name: string, hosts: string[], allowPlaintext = false, mode: Credential["mode"] = "header"): Credential => ({
  name,
  mode,
  hostPatterns: hosts,
  hosts: compileHostPatterns(hosts, { purpose: "allow" }),
  headerName: "Authorization",
  headerLower: "authorization",
  headerValue: "Bearer real",
  secret: "real",
  placeholder: `sluice-cred-${name}-0123456789abcdef`,
  allowPlaintext,
  clientHeader: "drop",
});
const A = entry("a", ["api.a.example"]);
const B = entry("b", ["*.b.example"], true);
const entries = [A, B];

const action = (host: string, scheme: "http" | "https" = "https", port = 443): HttpRequestAction => ({
  kind: "http.request",
  agent: { name: "t" } as HttpRequestAction["agent"],
  client: { address: "127.0.0.1", port: 0 },
  method: "GET",
  scheme,
  host,
  port,
  path: "/",
  query: "",
  headers: [],
});
const judge = (host: string, target: string, headers: [string, string][] = [], scheme: "http" | "https" = "https") => judgeCredentials(action(host, scheme), target, headers, entries);
const rule = (o: ReturnType<typeof judge>) => (o && "refuse" in o ? o.refuse.rule : o && "inject" in o ? `inject:${o.inject.map((e) => e.name).join("+")}` : null);

describe("judgeCredentials", () => {
  test("a request to an entry's host over TLS gets its header, with or without the placeholder", () => {
    expect(rule(judge("api.a.example", "/", [["Authorization", `Bearer ${A.placeholder}`]]))).toBe("inject:a");
    expect(rule(judge("api.a.example", "/"))).toBe("inject:a");
    expect(rule(judge("x.b.example", "/"))).toBe("inject:b");
  });

  test("a host no entry names is left alone, unless it carries a placeholder", () => {
    expect(rule(judge("other.example", "/", [["Authorization", "Bearer sluice-cred-unknown-zzz"]]))).toBeNull();
    expect(rule(judge("other.example", `/?k=${A.placeholder}`))).toBe("cred.wrong-host");
    expect(rule(judge("other.example", "/", [["X-Anything", `prefix${B.placeholder}suffix`]]))).toBe("cred.wrong-host");
  });

  test("one entry's placeholder sent to another entry's host is laundering too", () => {
    expect(rule(judge("x.b.example", "/", [["Authorization", `Bearer ${A.placeholder}`]]))).toBe("cred.wrong-host");
  });

  test("plain HTTP: no injection; the placeholder refused, unless the entry allows plaintext", () => {
    expect(rule(judge("api.a.example", "/", [], "http"))).toBeNull();
    expect(rule(judge("api.a.example", "/", [["Authorization", `Bearer ${A.placeholder}`]], "http"))).toBe("cred.plaintext");
    expect(rule(judge("x.b.example", "/", [["Authorization", `Bearer ${B.placeholder}`]], "http"))).toBe("inject:b");
  });

  test("the refusal names the credential and the host, never a value", () => {
    const o = judge("evil.example", `/?k=${A.placeholder}`);
    expect(o && "refuse" in o && o.refuse.detail).toBe("the placeholder of credential a was sent to evil.example, which is not one of its hosts");
  });

  test("the placeholder is found in any case, percent-encoded, and in header names", () => {
    expect(rule(judge("other.example", `/?k=${A.placeholder.toUpperCase()}`))).toBe("cred.wrong-host");
    expect(rule(judge("other.example", `/?k=${encodeURIComponent(A.placeholder).replace("-", "%2D")}`))).toBe("cred.wrong-host");
    expect(rule(judge("other.example", "/", [[A.placeholder, "x"]]))).toBe("cred.wrong-host");
  });
});

describe("covers", () => {
  test("a wildcard covers names under one owner, not a stranger's under a private suffix below it", () => {
    const aws = entry("aws", ["*.amazonaws.com"]);
    expect(covers(aws, "ec2.amazonaws.com", 443)).toBe(true);
    expect(covers(aws, "attacker.execute-api.us-east-1.amazonaws.com", 443)).toBe(false);
    expect(covers(aws, "bucket.s3.amazonaws.com", 443)).toBe(false);
    const own = entry("own", ["*.api.example.com:443"]);
    expect(covers(own, "eu.api.example.com", 443)).toBe(true);
    expect(covers(own, "eu.api.example.com", 8443)).toBe(false);
    expect(covers(entry("exact", ["api.example.com"]), "api.example.com", 443)).toBe(true);
  });
});

describe("sameHeader", () => {
  test("the credential's header under another spelling is the same header", () => {
    const e = { ...A, headerName: "X-Api-Key", headerLower: "x-api-key" };
    expect(sameHeader(e, "X_Api_Key")).toBe(true);
    expect(sameHeader(e, "x-api-key")).toBe(true);
    expect(sameHeader(e, "X-Api-Keys")).toBe(false);
  });
});

describe("EchoGuard: the real value never reaches the agent in a response", () => {
  const VALUE = "sk-live-0123456789abcdef";
  const PH = "sluice-cred-x-placeholder00";

  test("every occurrence is replaced by the placeholder, in a body and in a header value", () => {
    const g = new EchoGuard([[VALUE, PH]]);
    const out = g.push(Buffer.from(`{"auth":"Bearer ${VALUE}","again":"${VALUE}"}`), true);
    expect(out.toString()).toBe(`{"auth":"Bearer ${PH}","again":"${PH}"}`);
    expect(g.text(`Bearer ${VALUE}`)).toBe(`Bearer ${PH}`);
    expect(g.replaced).toBe(3);
  });

  test.each([1, 2, 3, 7, 100])("fed %i bytes at a time, a value cut by every read boundary is still replaced", (step) => {
    const g = new EchoGuard([[VALUE, PH]]);
    const body = Buffer.from(`start ${VALUE} middle ${VALUE}${VALUE} end ${VALUE.slice(0, 10)}`);
    const out: Buffer[] = [];
    for (let i = 0; i < body.length; i += step) out.push(g.push(body.subarray(i, i + step)));
    out.push(g.push(Buffer.alloc(0), true));
    const text = Buffer.concat(out).toString();
    expect(text).toBe(`start ${PH} middle ${PH}${PH} end ${VALUE.slice(0, 10)}`);
    expect(text).not.toContain(VALUE);
  });

  test("what is held back is at most the value's length less one", () => {
    const g = new EchoGuard([[VALUE, PH]]);
    const out = g.push(Buffer.from("x".repeat(100)));
    expect(out.length).toBe(100 - (VALUE.length - 1));
    expect(g.push(Buffer.alloc(0), true).length).toBe(VALUE.length - 1);
  });
});

describe("replace entries", () => {
  const R = { ...entry("r", ["api.a.example"], false, "replace"), secret: "v a/l&u=e" };
  const both = [A, R];

  test("every replace entry covering the host is a candidate, beside the first header entry; none over plain HTTP", () => {
    const j = judgeCredentials(action("api.a.example", "https"), "/", [], both);
    expect(j && "inject" in j ? j.inject.map((e) => e.name) : null).toEqual(["a", "r"]);
    expect(judgeCredentials(action("api.a.example", "http"), "/", [], both)).toBeNull();
    const carried = judgeCredentials(action("api.a.example", "http"), `/?k=${R.placeholder}`, [], both);
    expect(carried && "refuse" in carried ? carried.refuse.rule : null).toBe("cred.plaintext");
  });

  test("replacePlaceholders writes the value as the place needs it, and says which entries applied", () => {
    expect(replacePlaceholders(`/x?k=${R.placeholder}`, [R], encodeURIComponent)).toEqual({ text: "/x?k=v%20a%2Fl%26u%3De", applied: [R] });
    expect(replacePlaceholders(`{"k":"${R.placeholder}"}`, [R], (v) => JSON.stringify(v).slice(1, -1)).text).toBe('{"k":"v a/l&u=e"}');
    // A header entry's placeholder is never replaced in place: its value goes in its own header.
    expect(replacePlaceholders(`k=${A.placeholder}`, [A, R]).applied).toEqual([]);
  });

  test("judgeBodyPlaceholders: a placeholder in a body to another host, or in plain HTTP, is refused", () => {
    const body = Buffer.from(`{"key":"${R.placeholder.toUpperCase()}"}`);
    expect(judgeBodyPlaceholders(action("other.example", "https"), body, both)?.rule).toBe("cred.wrong-host");
    expect(judgeBodyPlaceholders(action("api.a.example", "http"), body, both)?.rule).toBe("cred.plaintext");
    expect(judgeBodyPlaceholders(action("api.a.example", "https"), body, both)).toBeNull();
    expect(judgeBodyPlaceholders(action("other.example", "https"), Buffer.from("no placeholder"), both)).toBeNull();
  });
});

describe("client_header: reject", () => {
  const strict = { ...entry("s", ["api.s.example"]), clientHeader: "reject" as const };
  const j = (headers: [string, string][]) => rule(judgeCredentials(action("api.s.example"), "/", headers, [strict]));

  test("the agent's own header of that name, under any spelling, is refused; the placeholder or nothing is fine", () => {
    expect(j([["Authorization", "Bearer my-own-key"]])).toBe("cred.client-header");
    expect(j([["authorization", "Basic dXNlcjpwYXNz"]])).toBe("cred.client-header");
    expect(j([["Authorization", `Bearer ${strict.placeholder}`]])).toBe("inject:s");
    expect(j([])).toBe("inject:s");
    expect(j([["X-Other", "x"]])).toBe("inject:s");
  });
});
