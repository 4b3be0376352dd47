import { describe, expect, test } from "bun:test";
import type { AgentIdentity } from "../../../src/core/types.ts";
import { compileAgents, hashToken, tokenFromProxyAuthorization, type AgentSpec } from "../../../src/policy/agents.ts";

const basic = (userPass: string) => `Basic ${Buffer.from(userPass, "utf8").toString("base64")}`;

const ALICE = "alice-token-0123456789";
const BOB = "bob-token-abcdefghijkl";

const SPECS: AgentSpec[] = [
  { name: "alice", tokenSha256: hashToken(ALICE), sourceCidrs: [] },
  { name: "bob", tokenSha256: hashToken(BOB), sourceCidrs: [], egress: { allow: ["b.example"], deny: ["x.b.example"] } },
  { name: "ci", sourceCidrs: ["10.1.0.0/16", "fd00::/8"] },
  { name: "both", tokenSha256: hashToken("both-token-0123456789"), sourceCidrs: ["192.168.7.0/24"] },
];
const directory = compileAgents(SPECS);

describe("hashToken", () => {
  test("is hex SHA-256", () => {
    expect(hashToken("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

describe("tokenFromProxyAuthorization", () => {
  const rows: [value: string, token: string | null][] = [
    [basic(`user:${ALICE}`), ALICE],
    [basic(`:${ALICE}`), ALICE],
    [basic(ALICE), ALICE],
    [basic("user:pa:ss"), "pa:ss"],
    [basic("user:"), null],
    [`basic ${Buffer.from(`u:${ALICE}`).toString("base64")}`, ALICE],
    [`BASIC ${Buffer.from(`u:${ALICE}`).toString("base64")}`, ALICE],
    [`Bearer ${ALICE}`, ALICE],
    [`bearer ${ALICE}`, ALICE],
    [`Bearer   ${ALICE}  `, ALICE],
    ["Bearer ", null],
    ["Bearer", null],
    [ALICE, null],
    [`Digest username="x"`, null],
    [`Token ${ALICE}`, null],
    ["", null],
  ];
  test.each(rows)("%p -> %p", (value, token) => {
    expect(tokenFromProxyAuthorization(value)).toBe(token);
  });
});

describe("compileAgents: identify", () => {
  const rows: [desc: string, auth: string | undefined, source: string, name: string, via: AgentIdentity["via"]][] = [
    ["Basic with the token as password", basic(`anyuser:${ALICE}`), "127.0.0.1", "alice", "token"],
    ["Basic with an empty user name", basic(`:${ALICE}`), "127.0.0.1", "alice", "token"],
    ["Bearer", `Bearer ${ALICE}`, "127.0.0.1", "alice", "token"],
    ["the other agent's token", `Bearer ${BOB}`, "127.0.0.1", "bob", "token"],
    ["an unknown Bearer token", "Bearer not-a-known-token-xyz", "127.0.0.1", "invalid-credential", "invalid"],
    ["an unknown Basic password", basic("alice:wrong-password-0000"), "127.0.0.1", "invalid-credential", "invalid"],
    ["the token in the user name slot does not count", basic(`${ALICE}:x`), "127.0.0.1", "invalid-credential", "invalid"],
    ["the token's digest is not a token", `Bearer ${hashToken(ALICE)}`, "127.0.0.1", "invalid-credential", "invalid"],
    ["an unknown scheme", `Digest ${ALICE}`, "127.0.0.1", "invalid-credential", "invalid"],
    ["an empty header", "", "127.0.0.1", "invalid-credential", "invalid"],
    ["no credential, no matching source", undefined, "127.0.0.1", "anonymous", "anonymous"],
    ["source IPv4 CIDR", undefined, "10.1.2.3", "ci", "source"],
    ["source IPv6 CIDR", undefined, "fd00::1234", "ci", "source"],
    ["source just outside the CIDR", undefined, "10.2.0.1", "anonymous", "anonymous"],
    ["a source that is not an IP", undefined, "not-an-ip", "anonymous", "anonymous"],
    ["token wins over source", `Bearer ${ALICE}`, "10.1.2.3", "alice", "token"],
    ["a wrong token is invalid even from a known source", "Bearer wrong-token-000000000", "10.1.2.3", "invalid-credential", "invalid"],
    ["an agent with token and source, by source", undefined, "192.168.7.9", "both", "source"],
    ["an agent with token and source, by token", "Bearer both-token-0123456789", "8.8.8.8", "both", "token"],
  ];
  test.each(rows)("%s", (_desc, auth, source, name, via) => {
    expect(directory.identify(auth, source).agent).toEqual({ name, via });
  });

  test.each([
    ["Basic", basic(`x:${BOB}`)],
    ["Bearer", `Bearer ${BOB}`],
  ])("%s identifies the agent and carries its own lists", (_scheme, auth) => {
    const id = directory.identify(auth, "127.0.0.1");
    expect(id.agent.name).toBe("bob");
    expect(id.lists?.allow?.match("b.example", 443)).toBe("b.example");
    expect(id.lists?.deny?.match("x.b.example", 443)).toBe("x.b.example");
  });

  test("agents without their own lists, anonymous and invalid carry no lists", () => {
    expect(directory.identify(`Bearer ${ALICE}`, "127.0.0.1").lists).toBeNull();
    expect(directory.identify(undefined, "127.0.0.1").lists).toBeNull();
    expect(directory.identify("Bearer nope-nope-nope-nope", "127.0.0.1").lists).toBeNull();
  });

  test("size is the number of agents", () => {
    expect(directory.size).toBe(4);
    expect(compileAgents([]).size).toBe(0);
  });

  test("with no agents, a credential is still invalid and none is anonymous", () => {
    const empty = compileAgents([]);
    expect(empty.identify("Bearer whatever-whatever", "10.0.0.1").agent.via).toBe("invalid");
    expect(empty.identify(undefined, "10.0.0.1").agent.via).toBe("anonymous");
  });

  // A listener on "::" reports IPv4 clients as IPv4-mapped IPv6 (`::ffff:10.1.2.3`); the source
  // CIDRs are written in IPv4. Without unmapping, such an agent silently becomes anonymous.
  test("an IPv4-mapped IPv6 source address matches an IPv4 source CIDR", () => {
    expect(directory.identify(undefined, "::ffff:10.1.2.3").agent).toEqual({ name: "ci", via: "source" });
  });
});

describe("compileAgents: refused specs", () => {
  test("duplicate names", () => {
    expect(() =>
      compileAgents([
        { name: "a", sourceCidrs: ["10.0.0.0/8"] },
        { name: "a", sourceCidrs: ["10.1.0.0/16"] },
      ]),
    ).toThrow(/duplicate agent name a/);
  });

  test("two agents with one token", () => {
    expect(() =>
      compileAgents([
        { name: "a", tokenSha256: hashToken(ALICE), sourceCidrs: [] },
        { name: "b", tokenSha256: hashToken(ALICE), sourceCidrs: [] },
      ]),
    ).toThrow(/token shared/);
  });

  test("a bad source CIDR", () => {
    expect(() => compileAgents([{ name: "a", sourceCidrs: ["10.0.0.1/8"] }])).toThrow(/10\.0\.0\.1\/8/);
  });

  test("a bad egress pattern", () => {
    expect(() => compileAgents([{ name: "a", sourceCidrs: ["10.0.0.0/8"], egress: { allow: ["bad host"] } }])).toThrow(/bad host/);
  });
});
