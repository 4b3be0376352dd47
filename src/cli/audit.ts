/**
 * `sluice audit verify|pubkey|show|receipt|verify-proof|rotate-key`: offline checks of the flight recorder (src/audit/verify.ts), and
 * where `sluice run` finds its log directory and signing key (auditPaths, shared with run.ts so
 * both resolve the same config the same way).
 */
import type { KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { HEAD_FILE, publicKeyFromPem, segmentName, TREE_HEAD_KIND } from "../audit/log-format.ts";
import { OtlpStreamError, sealedLinesByInstance } from "../audit/otlp-stream.ts";
import { AuditLogError } from "../audit/recorder.ts";
import { rotateSigningKey } from "../audit/rotate-key.ts";
import { loadSigningKey, SigningKeyError } from "../audit/signing-key.ts";
import { UnreadableLogError, verifyLog } from "../audit/verify.ts";
import { loadConfig, type Loaded } from "../config/load.ts";
import { ConfigError } from "../core/errors.ts";
import { configPath, sluiceHome } from "./paths.ts";
import { EXIT, UsageError } from "./usage.ts";
import { receiptCommand, verifyProofCommand } from "./audit-receipt.ts";
import { SHOW_USAGE, showCommand } from "./audit-show.ts";

export const HELP = `Usage: sluice audit verify [DIR] [--pubkey FILE] [--config FILE] [--json]
       sluice audit verify --otlp FILE [--instance ID] --pubkey FILE [--json]
       sluice audit pubkey [--config FILE]
       ${SHOW_USAGE}
       sluice audit receipt SEQ|ID [DIR] [--config FILE]
       sluice audit verify-proof RECEIPT.json|- --pubkey FILE [--json]
       sluice audit rotate-key [--config FILE] [--new-key FILE]

verify   checks the signed decision log in DIR (default: audit.dir of the config, else
         SLUICE_HOME/audit): the hash chain across segments, the Merkle root of every signed
         tree head, every Ed25519 signature, and that head.json's tree head is still in the log.
         Reports the first problem: its kind (modified, deleted, inserted, reordered,
         truncated, bad_signature, unknown_key), seq, segment and line.
         --pubkey FILE: the trusted public key (PEM, as \`sluice audit pubkey\` prints it).
         Without it, the key is read from the signing key on this host (audit.signing_key_file,
         else SLUICE_HOME/audit-signing-key.pem): only --pubkey with a key kept elsewhere makes
         the check independent of this host.
         --otlp FILE: checks instead the lines a log pipeline collected from audit.export.stdout
         (OTLP/JSON, one request per line; - reads stdin): every record and tree head of one
         replica (--instance, its service.instance.id; needed when FILE holds several), checked
         as the log is; other lines (sluice's own log) are skipped. The last tree head collected
         stands for head.json, so a tail cut from the collection after it does not show.
pubkey   prints the public key of the signing key (SPKI PEM), and its key id on stderr.
show     prints the records of the log (DIR as for verify) as a table, or with --json the
         lines as logged; it reads, it does not verify. Tree heads only with --tree-heads.
         --since/--until TIME: ISO 8601 (UTC when no zone is given) or a duration ago (30m,
         2h, 7d); since is inclusive, until exclusive. --verdict allow|block|redact|warn,
         --agent NAME, --rule ID (the record's rule or a finding's; 'dlp.*' for a family).
         In the table, a verdict marked * would have blocked (audit mode).
receipt  prints a JSON receipt for the record SEQ (or receipt id ID, as in x-sluice-receipt): the record, an RFC 6962 inclusion proof and
         the latest signed tree head that covers it (exit 1 when no tree head covers it yet).
verify-proof  checks one receipt alone against --pubkey: the record's hash, the audit path to
         the tree head's root, the signature. RECEIPT - reads stdin.
rotate-key  hands signing over to a new key, with sluice stopped: a key_rotation record naming
         both keys, signed over by the old key. Without --new-key a new key replaces the one in
         SLUICE_HOME (the old kept as audit-signing-key.retired-<id>.pem); with --new-key FILE
         (needed when audit.signing_key_file is set) that key, which the config must then name.
         verify trusts the keys a trusted key hands over to, and those handed over to it.

Exit status (verify): 0 the log is intact, 1 tampered, 2 unreadable or usage error.
Exit status (pubkey): 0 ok, 1 no key yet (start \`sluice run\` first), 2 usage error.
Exit status (show): 0 ok (also when nothing matches), 2 unreadable log or usage error.
Exit status (rotate-key): 0 rotated, 1 not (sluice running, a key problem), 2 usage.
Exit status (receipt): 0 ok, 1 no such record or not signed yet or log not intact, 2 unreadable or usage.
Exit status (verify-proof): 0 the receipt verifies, 1 it does not, 2 unreadable or usage error.`;

/** The signed log's directory and the signing key file, as `sluice run` uses them. */
export function auditPaths(loaded: Loaded | null, home: string): { dir: string; keyFile?: string } {
  const a = loaded?.config.audit;
  // Relative paths are the config file's neighbours, as tls.ca's are.
  const base = loaded?.path ? dirname(loaded.path) : process.cwd();
  return {
    dir: a?.dir !== undefined ? resolve(base, a.dir) : join(home, "audit"),
    ...(a?.signing_key_file !== undefined ? { keyFile: resolve(base, a.signing_key_file) } : {}),
  };
}

async function loadIfNamed(flag: string | undefined, err: (s: string) => void): Promise<Loaded | null | "invalid"> {
  const path = configPath(flag);
  if (path === null) return null;
  try {
    return await loadConfig(path);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(`sluice audit: invalid config ${path}:\n${e.issues.map((i) => `  ${i.path || "(root)"}: ${i.message}`).join("\n")}\n`);
    return "invalid";
  }
}

export async function auditCommand(args: string[], out: (s: string) => void, err: (s: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "verify") return verifyCommand(rest, out, err, env);
  if (sub === "pubkey") return pubkeyCommand(rest, out, err, env);
  // show and receipt read DIR, else the config's audit.dir, else SLUICE_HOME/audit, as verify does.
  const resolveDir = async (dir: string | undefined, config: string | undefined): Promise<string | null> => {
    if (dir !== undefined) return resolve(dir);
    const loaded = await loadIfNamed(config, err);
    return loaded === "invalid" ? null : auditPaths(loaded, sluiceHome(env)).dir;
  };
  if (sub === "show") return showCommand(rest, out, err, resolveDir);
  if (sub === "receipt") return receiptCommand(rest, out, err, resolveDir);
  if (sub === "verify-proof") return verifyProofCommand(rest, out, err);
  if (sub === "rotate-key") return rotateKeyCommand(rest, out, err, env);
  throw new UsageError(sub === undefined ? "audit needs a subcommand: verify, pubkey, show, receipt, verify-proof or rotate-key" : `unknown audit subcommand '${sub}'`);
}

/**
 * `sluice audit rotate-key [--config FILE] [--new-key FILE]`: hands signing over to a new key,
 * with sluice stopped (the log's LOCK). The log gets a key_rotation record naming both keys and a
 * tree head signed by the old key covering it. Without --new-key, a new key is made at the
 * signing key's own path in SLUICE_HOME and the old one kept beside it as
 * audit-signing-key.retired-<id>.pem (0600: destroy it once nothing needs it); with --new-key
 * (required when audit.signing_key_file names the key), that file is the new key, and the
 * config must name it before the next start.
 */
async function rotateKeyCommand(args: string[], out: (s: string) => void, err: (s: string) => void, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: "string", short: "c" }, "new-key": { type: "string" } }, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`audit rotate-key takes no arguments (got ${positionals.join(" ")})`);
  const loaded = await loadIfNamed(values.config, err);
  if (loaded === "invalid") return EXIT.usage;
  const home = sluiceHome(env);
  const paths = auditPaths(loaded, home);
  if (paths.keyFile !== undefined && values["new-key"] === undefined) {
    throw new UsageError(`the signing key is audit.signing_key_file (${paths.keyFile}): make the new key yourself and pass it with --new-key FILE`);
  }
  try {
    const old = loadSigningKey({ home, ...(paths.keyFile !== undefined ? { file: paths.keyFile } : {}), create: false });
    const next = values["new-key"] !== undefined ? loadSigningKey({ home, file: resolve(values["new-key"]), create: false }) : null;
    const result = rotateSigningKey({ dir: paths.dir, home, old, next, segmentBytes: loaded?.config.audit.segment_size ?? 64 * 1024 * 1024 });
    out(`rotated:    ${old.keyId} -> ${result.next.keyId}\nnew key:    ${result.next.path}\n`);
    if (result.retired) out(`retired:    ${result.retired} (the old private key: destroy it once nothing needs it)\n`);
    if (values["new-key"] !== undefined && paths.keyFile !== undefined) out(`next:       set audit.signing_key_file to ${result.next.path} before starting sluice\n`);
    return EXIT.ok;
  } catch (e) {
    if (!(e instanceof AuditLogError || e instanceof SigningKeyError)) throw e;
    err(`sluice audit rotate-key: ${e.message}\n`);
    return EXIT.failure;
  }
}

async function pubkeyCommand(args: string[], out: (s: string) => void, err: (s: string) => void, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: "string", short: "c" } }, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`audit pubkey takes no arguments (got ${positionals[0]})`);
  const loaded = await loadIfNamed(values.config, err);
  if (loaded === "invalid") return EXIT.failure;
  const home = sluiceHome(env);
  try {
    const key = loadSigningKey({ home, ...(auditPaths(loaded, home).keyFile !== undefined ? { file: auditPaths(loaded, home).keyFile } : {}), create: false });
    out(key.publicKey.export({ format: "pem", type: "spki" }) as string);
    err(`key id ${key.keyId} (${key.path})\n`);
    return EXIT.ok;
  } catch (e) {
    if (!(e instanceof SigningKeyError)) throw e;
    err(`sluice audit pubkey: ${e.message}\n`);
    return EXIT.failure;
  }
}

async function verifyCommand(args: string[], out: (s: string) => void, err: (s: string) => void, env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: "string", short: "c" }, pubkey: { type: "string" }, json: { type: "boolean", default: false }, otlp: { type: "string" }, instance: { type: "string" } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 1) throw new UsageError(`audit verify takes at most one DIR (got ${positionals.join(" ")})`);
  if (values.otlp !== undefined) {
    if (positionals.length > 0) throw new UsageError("audit verify --otlp takes no DIR");
    if (values.pubkey === undefined) throw new UsageError("audit verify --otlp needs --pubkey FILE (the replicas' public key)");
  } else if (values.instance !== undefined) throw new UsageError("--instance is for --otlp");
  const loaded = await loadIfNamed(values.config, err);
  // An unusable config is as good as an unreadable log: nothing was checked.
  if (loaded === "invalid") return EXIT.usage;
  const home = sluiceHome(env);
  const paths = auditPaths(loaded, home);
  const dir = positionals[0] !== undefined ? resolve(positionals[0]) : paths.dir;

  let publicKey: KeyObject;
  let keySource: string;
  try {
    if (values.pubkey !== undefined) {
      publicKey = publicKeyFromPem(readFileSync(values.pubkey, "utf8"));
      keySource = values.pubkey;
    } else {
      const key = loadSigningKey({ home, ...(paths.keyFile !== undefined ? { file: paths.keyFile } : {}), create: false });
      publicKey = key.publicKey;
      keySource = `${key.path} (this host's signing key; pass --pubkey for an independent check)`;
    }
  } catch (e) {
    err(`sluice audit verify: cannot load the trusted public key: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.usage;
  }

  let report: ReturnType<typeof verifyLog>;
  let shown = dir;
  let scratch: string | null = null;
  try {
    if (values.otlp !== undefined) {
      // The collected lines become a log directory of one segment, its last tree head head.json.
      const source = values.otlp === "-" ? "stdin" : values.otlp;
      const text = values.otlp === "-" ? await Bun.stdin.text() : readFileSync(values.otlp, "utf8");
      const { byInstance, skipped } = sealedLinesByInstance(text, source);
      if (skipped > 0) err(`sluice audit verify: skipped ${skipped} line(s) of ${source} that are not OTLP/JSON log requests (sluice's own log, say)\n`);
      const instances = [...byInstance.keys()];
      const instance = values.instance ?? (instances.length === 1 ? instances[0]! : undefined);
      if (instance === undefined) throw new UnreadableLogError(instances.length === 0 ? `${source} holds no records` : `${source} holds several replicas' records: pick one with --instance (${instances.map((i) => i || '""').join(", ")})`);
      let lines = byInstance.get(instance);
      if (lines === undefined) throw new UnreadableLogError(`${source} holds no records of instance ${instance} (it has ${instances.map((i) => i || '""').join(", ")})`);
      // A collection whose start was not kept (retention, a pod's restarted output) is checked
      // from its first signed tree head on: that head vouches for everything before it.
      const firstSeq = (() => {
        try {
          return (JSON.parse(lines[0]!) as { seq?: unknown }).seq;
        } catch {
          return undefined;
        }
      })();
      const resume = typeof firstSeq === "number" && firstSeq > 0;
      if (resume) {
        const head = lines.findIndex((l) => l.includes(`"kind":"${TREE_HEAD_KIND}"`));
        if (head < 0) throw new UnreadableLogError(`${source} does not begin at the log's first record and holds no tree head to begin from`);
        lines = lines.slice(head);
      }
      scratch = mkdtempSync(join(tmpdir(), "sluice-verify-otlp-"));
      writeFileSync(join(scratch, segmentName(1)), `${lines.join("\n")}\n`);
      const lastHead = lines.findLast((l) => l.includes(`"kind":"${TREE_HEAD_KIND}"`));
      if (lastHead !== undefined) writeFileSync(join(scratch, HEAD_FILE), `${lastHead}\n`);
      shown = `${source}${instance ? ` (instance ${instance})` : ""}`;
      report = verifyLog({ dir: scratch, publicKey, fromTreeHead: resume });
    } else report = verifyLog({ dir, publicKey });
  } catch (e) {
    // Whatever stopped the walk, nothing was shown tampered: unreadable (2), never 1.
    err(`sluice audit verify: ${e instanceof UnreadableLogError || e instanceof OtlpStreamError ? e.message : `cannot read the log: ${String(e)}`}\n`);
    return EXIT.usage;
  } finally {
    if (scratch !== null) rmSync(scratch, { recursive: true, force: true });
  }
  // What a pipeline collected is only as good as the signatures in it: with none, nothing is
  // vouched for by the key (anyone can chain records from genesis), so that is a failure.
  const unsigned = values.otlp !== undefined && report.problem === null && report.treeHeads === 0 && report.records > 0;
  if (unsigned) report = { ...report, problem: { kind: "bad_signature", seq: 0, segment: shown, detail: "no signed tree head in the collection: nothing in it is vouched for by the key" } };
  if (values.json) {
    out(`${JSON.stringify({ dir: shown, ok: report.problem === null, ...report })}\n`);
  } else {
    out(`${values.otlp !== undefined ? "collected:" : "dir:      "}  ${shown}\nkey:        ${report.keyId} from ${keySource}\n`);
    if (report.keys.length > 1) out(`keys:       ${report.keys.join(" -> ")} (handed over by key_rotation records)\n`);
    if (report.from > 0) out(`from:       seq ${report.from}, the first tree head collected (what came before it is not checked)\n`);
    out(`records:    ${report.records} in ${report.segments} segment(s), ${report.treeHeads} signed tree head(s)\n`);
    if (report.lastSigned) out(`last head:  size ${report.lastSigned.treeSize}, root ${report.lastSigned.root}, ${report.lastSigned.time}\n`);
    if (report.problem === null) {
      if (report.unsignedTail > 0) out(`note:       ${report.unsignedTail} chained record(s) after the last signed tree head (a running sluice, or a crash) are not vouched for by the key: a cut there, or records made up there, would not show\n`);
      out("result:     ok\n");
    } else {
      const p = report.problem;
      out(`result:     TAMPERED: ${p.kind} at seq ${p.seq} (${p.segment}${p.line !== undefined ? ` line ${p.line}` : ""})\ndetail:     ${p.detail}\n`);
    }
  }
  return report.problem === null ? EXIT.ok : EXIT.failure;
}
