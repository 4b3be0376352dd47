/**
 * `sluice ca export [--env]`, and the CA files `sluice run` writes into SLUICE_HOME for the
 * agents' trust stores: `ca.pem` (the interception CA's certificate) and `ca-bundle.pem` (the
 * system's roots plus that certificate, for tools that take one bundle instead of adding to it).
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { parseArgs } from "node:util";
import { sluiceHome } from "./paths.ts";
import { EXIT, UsageError } from "./usage.ts";

export const CA_FILE = "ca.pem";
export const CA_BUNDLE_FILE = "ca-bundle.pem";

export const HELP = `Usage: sluice ca export [--env]

Prints the certificate of the CA that sluice intercepts TLS with (PEM), as the running sluice
wrote it to SLUICE_HOME/${CA_FILE}. With --env, prints shell lines that point the common trust
settings at it instead (source them, or eval them, before starting the agent):

  SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO
                   SLUICE_HOME/${CA_BUNDLE_FILE}: the system's roots plus the sluice CA
  NODE_EXTRA_CA_CERTS, DENO_CERT
                   SLUICE_HOME/${CA_FILE}: added to the runtime's own roots

The CA changes on every start unless tls.ca names a persistent one.

Exit status: 0 ok, 1 no CA written yet (start sluice run first), 2 usage error.`;

/** Where the system keeps its roots (Debian, Fedora/RHEL, Alpine and macOS-style layouts). */
const SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/** Writes ca.pem and ca-bundle.pem into `home` (atomically: a tool never reads half a file). */
export async function writeCaFiles(home: string, certPem: string): Promise<{ caFile: string; bundleFile: string }> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const system = SYSTEM_BUNDLES.find((f) => existsSync(f));
  const roots = system !== undefined ? await readFile(system, "utf8") : `${rootCertificates.join("\n")}\n`;
  const caFile = join(home, CA_FILE);
  const bundleFile = join(home, CA_BUNDLE_FILE);
  await publish(caFile, certPem);
  await publish(bundleFile, `${roots.trimEnd()}\n\n# sluice interception CA\n${certPem}`);
  return { caFile, bundleFile };
}

async function publish(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, path);
}

/** A path as one shell word. */
const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

export async function caCommand(args: string[], out: (s: string) => void, err: (s: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== "export") throw new UsageError(sub === undefined ? "ca needs a subcommand: export" : `unknown ca subcommand '${sub}'`);
  const { values, positionals } = parseArgs({ args: rest, options: { env: { type: "boolean", default: false } }, allowPositionals: true, strict: true });
  if (positionals.length > 0) throw new UsageError(`ca export takes no arguments (got ${positionals.join(" ")})`);
  const home = sluiceHome(env);
  const caFile = join(home, CA_FILE);
  const bundleFile = join(home, CA_BUNDLE_FILE);
  let pem: string;
  try {
    pem = await readFile(caFile, "utf8");
  } catch {
    err(`sluice ca export: no CA at ${caFile} yet: start \`sluice run\` (with the same SLUICE_HOME) first; it writes the CA there\n`);
    return EXIT.failure;
  }
  if (!values.env) {
    out(pem);
    return EXIT.ok;
  }
  const lines = [
    ["SSL_CERT_FILE", bundleFile],
    ["REQUESTS_CA_BUNDLE", bundleFile],
    ["CURL_CA_BUNDLE", bundleFile],
    ["GIT_SSL_CAINFO", bundleFile],
    ["NODE_EXTRA_CA_CERTS", caFile],
    ["DENO_CERT", caFile],
  ];
  out(`${lines.map(([k, v]) => `export ${k}=${shellQuote(v!)}`).join("\n")}\n`);
  return EXIT.ok;
}
