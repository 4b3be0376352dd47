/**
 * The `mcp` config options the MCP proxy reads: mcp.answer_timeout (a duration, default 5m, not
 * below 100ms) and mcp.servers[].credentials (names of credentials that exist).
 */
import { describe, expect, test } from "bun:test";
import { compilePolicy } from "../../../src/config/compile.ts";
import { builtinInjectionRules, builtinRules } from "../../../src/config/load.ts";
import { parseConfigText } from "../../../src/config/parse.ts";
import { ConfigError } from "../../../src/core/errors.ts";

const compile = async (yaml: string) =>
  compilePolicy(parseConfigText(yaml, "t.yaml"), {
    agentTokenDigests: new Map(),
    digest: "t",
    systemNameservers: [{ hostname: "127.0.0.1", port: 53 }],
    builtinRules: await builtinRules(),
    injectionRules: await builtinInjectionRules(),
    credentialValues: new Map([["api", "an-api-key-value-0123456789"]]),
  });
const issues = async (yaml: string) => {
  try {
    await compile(yaml);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
  return [];
};

describe("mcp config", () => {
  test("answer_timeout: 5m unless set, a duration, not below 100ms", () => {
    expect(parseConfigText("version: 1\n", "t.yaml").mcp.answer_timeout).toBe(300_000);
    expect(parseConfigText("version: 1\nmcp: { answer_timeout: 30s }\n", "t.yaml").mcp.answer_timeout).toBe(30_000);
    expect(() => parseConfigText("version: 1\nmcp: { answer_timeout: 10ms }\n", "t.yaml")).toThrow(ConfigError);
    expect(() => parseConfigText("version: 1\nmcp: { answer_timeout: soon }\n", "t.yaml")).toThrow(ConfigError);
  });

  test("servers[].credentials must name credentials", async () => {
    const credentials = `tls: { intercept: true }\ncredentials:\n  - { name: api, hosts: ["api.example.com:443"], source: { env: API_KEY }, header: { name: Authorization, value: "Bearer {secret}" } }\n`;
    expect(await issues(`version: 1\n${credentials}mcp: { servers: [{ name: files, credentials: [api] }] }\n`)).toEqual([]);
    expect(await issues(`version: 1\n${credentials}mcp: { servers: [{ name: files, credentials: [apj] }] }\n`)).toEqual(["mcp.servers.0.credentials: no credential named apj"]);
  });
});
