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
import { loadRuleFiles } from "./rule-files.ts";
import { compileRulePack, type CompiledRules } from "../scan/rules/compile.ts";
import type { KnownSecret } from "../scan/known-secrets.ts";
import type { Config } from "./schema.ts";
import { compileInjectionPack } from "../scan/injection/pack.ts";
import { compileArgRules, type ArgRules } from "../scan/arg-rules.ts";
import { secretFileModeProblem } from "../core/secret-file.ts";
import { registerAutomata } from "../scan/automata-store.ts";
import { builtinWordModel, registerWordModel, wordModelFromBytes } from "../scan/injection/words.ts";

export const DEFAULT_CONFIG_TEXT: string = defaultText as string;

export interface Loaded {
  readonly config: Config;
  readonly policy: Policy;
  /** Absolute path, or null for the embedded default. */
  readonly path: string | null;
}

/**
 * The config's settings alone: read and checked against the schema, nothing compiled (no rule
 * packs, no files it names read). For commands that only need to know where sluice listens.
 */
export async function readConfig(path: string | null): Promise<Config> {
  const abs = path === null ? null : resolve(path);
  return abs === null ? parseConfigText(DEFAULT_CONFIG_TEXT, "embedded default") : parseConfigText(await readText(abs), abs);
}

async function readText(abs: string): Promise<string> {
  try {
    return await readFile(abs, "utf8");
  } catch (err) {
    throw new ConfigError([{ path: "", message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }], abs);
  }
}

/**
 * Reads, validates and compiles a config. `mcpTools`: also compile the MCP tool-poisoning pack
 * (policy.mcpToolInjection), which only `sluice mcp` judges with; everyone else is spared the
 * ~200 ms it takes (it is the whole injection pack again, plus rules/mcp).
 */
export async function loadConfig(path: string | null, overlay?: Record<string, unknown>, opts: { mcpTools?: boolean } = {}): Promise<Loaded> {
  const abs = path === null ? null : resolve(path);
  const text = abs === null ? DEFAULT_CONFIG_TEXT : await readText(abs);
  const source = abs ?? "embedded default";
  const config = parseConfigText(text, source, overlay);
  const digests = new Map<number, string>();
  const issues: { path: string; message: string }[] = [];
  // Files named in the config are relative to it.
  const base = abs ? dirname(abs) : process.cwd();
  for (const [i, agent] of config.agents.entries()) {
    if (!agent.token_file) continue;
    const file = resolve(base, agent.token_file);
    try {
      digests.set(i, await readSecretDigest(file));
    } catch (err) {
      issues.push({ path: `agents.${i}.token_file`, message: err instanceof Error ? err.message : String(err) });
    }
  }
  const credentialValues = await readCredentialValues(config.credentials, base, issues);
  // A real credential the agent somehow sends is caught like any known secret.
  const knownSecrets = [
    ...(await readKnownSecrets(config.dlp.known_secrets, base, issues)),
    ...[...credentialValues].map(([name, value]) => ({ name: `credential:${name}`, value })),
  ];
  const extraCa: string[] = [];
  for (const [i, f] of config.tls.extra_ca_files.entries()) {
    const file = resolve(base, f);
    try {
      const pem = await readFile(file, "utf8");
      if (!pem.includes("-----BEGIN CERTIFICATE-----")) issues.push({ path: `tls.extra_ca_files.${i}`, message: `${file} holds no PEM certificate` });
      else extraCa.push(pem);
    } catch (err) {
      issues.push({ path: `tls.extra_ca_files.${i}`, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
    }
  }
  const digest = createHash("sha256").update(overlay ? `${text}\n${JSON.stringify(overlay)}` : text).digest("hex").slice(0, 16);
  // Compiled even when files could not be read, so one run reports every problem.
  let policy: Policy | null = null;
  try {
    const systemNameservers = config.dns.upstreams ? [] : await readSystemNameservers();
    policy = compilePolicy(config, { agentTokenDigests: digests, digest, systemNameservers, builtinRules: await builtinRules(), injectionRules: await builtinInjectionRules(), ...(opts.mcpTools === true ? { mcpRules: await builtinMcpRules() } : {}), argRules: await builtinArgRules(), knownSecrets, extraCa, credentialValues });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues.push(...err.issues);
  }
  if (issues.length > 0 || policy === null) throw new ConfigError(issues, source);
  return { config, policy, path: abs };
}

let builtin: Promise<CompiledRules> | null = null;
let builtinInjection: Promise<CompiledRules> | null = null;
let builtinMcp: Promise<CompiledRules> | null = null;
let builtinArgs: Promise<ArgRules> | null = null;

let prebuilt: Promise<void> | null = null;

/**
 * Registers the automata build.ts prebuilt and the word model it trained, which dist/sluice
 * embeds (from source, scripts/preload.ts registers the model and there are no automata).
 */
function prebuiltAutomata(): Promise<void> {
  prebuilt ??= (async () => {
    const model = Bun.embeddedFiles.find((f) => (f as Blob & { name?: string }).name?.endsWith("words.bin"));
    // Part of the detection, not a cache: a binary (it embeds files) without its model, or whose
    // model cannot be read, does not start.
    if (model !== undefined) registerWordModel(wordModelFromBytes(new Uint8Array(await model.arrayBuffer())));
    else if (Bun.embeddedFiles.length > 0) throw new Error("this binary embeds no word model (dist/prebuilt/words.bin); rebuild it with `bun run build`");
    const file = Bun.embeddedFiles.find((f) => (f as Blob & { name?: string }).name?.endsWith("automata.bin"));
    if (file === undefined) return;
    try {
      registerAutomata(new Uint8Array(await file.arrayBuffer()));
    } catch (err) {
      // A cache, nothing more: without it the same automata are built, a little slower.
      process.stderr.write(`sluice: the embedded prebuilt automata are unreadable (${err instanceof Error ? err.message : String(err)}); building them instead\n`);
    }
  })();
  return prebuilt;
}

/** The rule files under `prefix`, once the prebuilt automata are known. */
const ruleFiles = (prefix: string) => prebuiltAutomata().then(() => loadRuleFiles(prefix));

/** The embedded rule pack, compiled once per process (reloads reuse it). */
export function builtinRules(): Promise<CompiledRules> {
  builtin ??= ruleFiles("rules/dlp/").then((files) => compileRulePack(files));
  return builtin;
}

/** The injection pack with the MCP tool-poisoning rules (rules/mcp): what judges tool definitions. */
export function builtinMcpRules(): Promise<CompiledRules> {
  builtinMcp ??= Promise.all([ruleFiles("rules/injection/"), ruleFiles("rules/mcp/")]).then(([a, b]) => compileInjectionPack([...a, ...b]));
  return builtinMcp;
}

/** The MCP argument rules (rules/mcp-args), judged over tools/call arguments after shell de-obfuscation. */
export function builtinArgRules(): Promise<ArgRules> {
  builtinArgs ??= ruleFiles("rules/mcp-args/").then((files) => compileArgRules(files));
  return builtinArgs;
}

/** The embedded prompt-injection rule pack (rules/injection), compiled once per process. */
export function builtinInjectionRules(): Promise<CompiledRules> {
  builtinInjection ??= ruleFiles("rules/injection/").then((files) => ({ ...compileInjectionPack(files), words: builtinWordModel() }));
  return builtinInjection;
}

/**
 * The values of dlp.known_secrets: environment variables by name, files by path. A name that is
 * missing or empty is an error (a deployment that forgot a secret should not start half-blind);
 * messages name the variable or file, never the value.
 */
async function readKnownSecrets(spec: Config["dlp"]["known_secrets"], base: string, issues: { path: string; message: string }[]): Promise<KnownSecret[]> {
  const out: KnownSecret[] = [];
  spec.env.forEach((name, i) => {
    const value = process.env[name];
    if (value === undefined || value.trim() === "") issues.push({ path: `dlp.known_secrets.env.${i}`, message: `environment variable ${name} is not set or empty` });
    else out.push({ name: `env:${name}`, value });
  });
  for (const [i, f] of spec.files.entries()) {
    const file = resolve(base, f);
    try {
      const value = (await readFile(file, "utf8")).replace(/\r?\n$/, "");
      if (value.trim() === "") issues.push({ path: `dlp.known_secrets.files.${i}`, message: `${file} is empty` });
      else out.push({ name: `file:${file}`, value });
    } catch (err) {
      issues.push({ path: `dlp.known_secrets.files.${i}`, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
    }
  }
  return out;
}

/** The system's nameservers, the default upstreams; a missing resolv.conf means none. */
async function readSystemNameservers(): Promise<{ hostname: string; port: number }[]> {
  try {
    return parseResolvConf(await readFile(process.env.SLUICE_RESOLV_CONF ?? "/etc/resolv.conf", "utf8"));
  } catch {
    return [];
  }
}

/** A secret file's text; it must not be open to others (core/secret-file.ts). Errors name the file only. */
async function readSecretFile(file: string): Promise<string> {
  let st: { mode: number; uid: number; gid: number };
  try {
    st = await stat(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const tooOpen = secretFileModeProblem(st, file);
  if (tooOpen !== null) throw new Error(tooOpen);
  return readFile(file, "utf8");
}

/**
 * The real values of `credentials`, by entry name: from the environment or a 0600 file (one
 * trailing line break dropped). A missing or empty value stops the load; messages never hold it.
 */
async function readCredentialValues(entries: Config["credentials"], base: string, issues: { path: string; message: string }[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [i, e] of entries.entries()) {
    let value: string | undefined;
    if ("env" in e.source) {
      value = process.env[e.source.env];
      if (value === undefined || value.trim() === "") issues.push({ path: `credentials.${i}.source.env`, message: `environment variable ${e.source.env} is not set or empty` });
    } else {
      const file = resolve(base, e.source.file);
      try {
        value = (await readSecretFile(file)).replace(/\r?\n$/, "");
        if (value.trim() === "") issues.push({ path: `credentials.${i}.source.file`, message: `${file} is empty` });
      } catch (err) {
        issues.push({ path: `credentials.${i}.source.file`, message: err instanceof Error ? err.message : String(err) });
      }
    }
    if (value !== undefined && value.trim() !== "") out.set(e.name, value);
  }
  return out;
}

/** A secret file must not be readable by group or others; only its digest is kept. */
async function readSecretDigest(file: string): Promise<string> {
  const token = (await readSecretFile(file)).trim();
  if (token.length < 16) throw new Error(`${file}: token must be at least 16 characters`);
  return createHash("sha256").update(token).digest("hex");
}
