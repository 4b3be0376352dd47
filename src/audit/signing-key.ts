/**
 * The flight recorder's Ed25519 signing key: a PKCS#8 PEM file, owner-only (0600). Generated on
 * first use into SLUICE_HOME unless the operator names one (audit.signing_key_file), which must
 * then exist: a typo must not silently start a new key that no verifier trusts.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { keyIdOf } from "./log-format.ts";
import { secretFileModeProblem } from "../core/secret-file.ts";

export const DEFAULT_KEY_FILE = "audit-signing-key.pem";

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly keyId: string;
  readonly path: string;
  readonly created: boolean;
}

export class SigningKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SigningKeyError";
  }
}

/** The key at `file`, or SLUICE_HOME's (made now if missing, only when `create`). */
export function loadSigningKey(opts: { home: string; file?: string; create: boolean }): SigningKey {
  const path = opts.file ?? join(opts.home, DEFAULT_KEY_FILE);
  let fd: number;
  let created = false;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") throw new SigningKeyError(`cannot read the audit signing key ${path}: ${code ?? String(err)}`);
    if (opts.file !== undefined) throw new SigningKeyError(`audit.signing_key_file ${path} does not exist (it is never generated; leave the key unset to have one made in SLUICE_HOME)`);
    if (!opts.create) throw new SigningKeyError(`no audit signing key at ${path} yet: start \`sluice run\` (with the same SLUICE_HOME) first, or pass --pubkey`);
    generate(opts.home, path);
    created = true;
    fd = openSync(path, "r");
  }
  try {
    // Like ssh: a private key others can read is not a key that proves anything.
    const tooOpen = secretFileModeProblem(fstatSync(fd), `the audit signing key ${path}`);
    if (tooOpen !== null) throw new SigningKeyError(tooOpen);
    const pem = readFileSync(fd, "utf8");
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(pem);
    } catch (err) {
      throw new SigningKeyError(`the audit signing key ${path} is not a PEM private key: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (privateKey.asymmetricKeyType !== "ed25519") throw new SigningKeyError(`the audit signing key ${path} is ${privateKey.asymmetricKeyType}, not Ed25519`);
    const publicKey = createPublicKey(privateKey);
    return { privateKey, publicKey, keyId: keyIdOf(publicKey), path, created };
  } finally {
    closeSync(fd);
  }
}

/** Writes a new Ed25519 key to `path` (0600), unless a file is there already (then that one stays). */
export function generate(home: string, path: string): void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync("ed25519");
  const pem = privateKey.export({ format: "pem", type: "pkcs8" });
  let fd: number;
  try {
    // O_EXCL: two processes starting at once keep the first one's key.
    fd = openSync(path, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
    throw new SigningKeyError(`cannot create the audit signing key ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    writeSync(fd, pem);
  } finally {
    closeSync(fd);
  }
}
