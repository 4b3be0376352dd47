/**
 * The README's configuration reference is a config file sluice accepts: the documentation
 * cannot drift into keys or values the schema refuses.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compilePolicy } from "../../src/config/compile.ts";
import { parseConfigText } from "../../src/config/parse.ts";
import { builtinRules } from "../../src/config/load.ts";

const BUILTIN = await builtinRules();

test("the README's configuration example parses and compiles", () => {
  const readme = readFileSync(join(import.meta.dir, "../../README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Configuration"));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  expect(yaml).toBeDefined();
  const config = parseConfigText(yaml!, "README.md");
  const policy = compilePolicy(config, { agentTokenDigests: new Map(), digest: "readme", systemNameservers: [], builtinRules: BUILTIN });
  expect(policy.mode).toBe("enforce");
  expect(policy.dns.upstreams.length).toBeGreaterThan(0);
});
