/**
 * Reads a config file (or the embedded default), validates and compiles it. The only part of
 * config/ that touches the filesystem. Relative paths inside the config resolve against the
 * config file's directory.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { ConfigError } from "../core/errors.ts";
import type { Policy } from "../policy/policy.ts";
import { compilePolicy } from "./compile.ts";
import defaultText from "./default.yaml" with { type: "text" };
import { parseConfigText } from "./parse.ts";
import { parseResolvConf } from "./resolv-conf.ts";
import type { Config } from "./schema.ts";

export const DEFAULT_CONFIG_TEXT: string = defaultText as string;

export interface Loaded {
  readonly config: Config;
  readonly policy: Policy;
  /** Absolute path, or null for the embedded default. */
  readonly path: string | null;
}

export async function loadConfig(path: string | null): Promise<Loaded> {
  const abs = path === null ? null : resolve(path);
  let text: string;
  if (abs === null) {
    text = DEFAULT_CONFIG_TEXT;
  } else {
    try {
      text = await readFile(abs, "utf8");
    } catch (err) {
      throw new ConfigError([{ path: "", message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }], abs);
    }
  }
  const source = abs ?? "embedded default";
  const config = parseConfigText(text, source);
  const digests = new Map<number, string>();
  const issues: { path: string; message: string }[] = [];
  for (const [i, agent] of config.agents.entries()) {
    if (!agent.token_file) continue;
    const file = resolve(abs ? dirname(abs) : process.cwd(), agent.token_file);
    try {
      digests.set(i, await readSecretDigest(file));
    } catch (err) {
      issues.push({ path: `agents.${i}.token_file`, message: err instanceof Error ? err.message : String(err) });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues, source);
  const digest = createHash("sha256").update(text).digest("hex").slice(0, 16);
  try {
    const systemNameservers = config.dns.upstreams ? [] : await readSystemNameservers();
    return { config, policy: compilePolicy(config, { agentTokenDigests: digests, digest, systemNameservers }), path: abs };
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.issues, source);
    throw err;
  }
}

/** The system's nameservers, the default upstreams; a missing resolv.conf means none. */
async function readSystemNameservers(): Promise<{ hostname: string; port: number }[]> {
  try {
    return parseResolvConf(await readFile(process.env.SLUICE_RESOLV_CONF ?? "/etc/resolv.conf", "utf8"));
  } catch {
    return [];
  }
}

/** A secret file must not be readable by group or others; only its digest is kept. */
async function readSecretDigest(file: string): Promise<string> {
  let mode: number;
  try {
    mode = (await stat(file)).mode;
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if ((mode & 0o077) !== 0) throw new Error(`${file} is readable by group or others; run: chmod 600 ${file}`);
  const token = (await readFile(file, "utf8")).trim();
  if (token.length < 16) throw new Error(`${file}: token must be at least 16 characters`);
  return createHash("sha256").update(token).digest("hex");
}
