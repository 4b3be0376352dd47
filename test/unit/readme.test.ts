/**
 * The README's configuration reference is a config file sluice accepts: the documentation
 * cannot drift into keys or values the schema refuses.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { compilePolicy } from "../../src/config/compile.ts";
import { parseConfigText } from "../../src/config/parse.ts";
import { builtinRules } from "../../src/config/load.ts";
import { configSchema } from "../../src/config/schema.ts";

const BUILTIN = await builtinRules();

/** The YAML of the README's configuration example (the first block of its Configuration section). */
function example(): string {
  const readme = readFileSync(join(import.meta.dir, "../../README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Configuration"));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  expect(yaml).toBeDefined();
  return yaml!;
}

test("the README's configuration example parses and compiles", () => {
  const config = parseConfigText(example(), "README.md");
  const policy = compilePolicy(config, { agentTokenDigests: new Map(), digest: "readme", systemNameservers: [], builtinRules: BUILTIN });
  expect(policy.mode).toBe("enforce");
  expect(policy.dns.upstreams.length).toBeGreaterThan(0);
});

test("the README's configuration example lists every key of mcp and of an mcp.servers entry", () => {
  const raw = parse(example()) as { mcp: Record<string, unknown> & { servers: Record<string, unknown>[] } };
  const mcp = configSchema.shape.mcp.unwrap();
  expect(Object.keys(mcp.shape).filter((k) => !(k in raw.mcp))).toEqual([]);
  const server = mcp.shape.servers.unwrap().element;
  expect(Object.keys(server.shape).filter((k) => !raw.mcp.servers.some((s) => k in s))).toEqual([]);
});
