/**
 * `sluice audit rotate-key`: hands the log's signing over to a new key while sluice is stopped
 * (openRecorder takes the directory's LOCK, so a running sluice makes this fail). The log gets a
 * key_rotation record naming both keys, a tree head signed by the old key that covers it, and a
 * closing tree head signed by the new one (README "Flight recorder", Key rotation).
 *
 * Without a given new key, one is made beside the old one and swapped in: the old file is kept
 * as audit-signing-key.retired-<id>.pem (the operator destroys it). The log is written first: a
 * crash before the swap leaves a log that names the new key and a start that refuses the old one,
 * with the new key waiting in `<key>.next`.
 */
import { renameSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { AuditLogError, openRecorder } from "./recorder.ts";
import { generate, loadSigningKey, type SigningKey } from "./signing-key.ts";

export function rotateSigningKey(opts: { dir: string; home: string; old: SigningKey; next: SigningKey | null; segmentBytes: number }): { next: SigningKey; retired: string | null } {
  const { old } = opts;
  const made = opts.next === null ? `${old.path}.next` : null;
  if (made !== null) generate(dirname(made), made);
  try {
    const next = opts.next ?? loadSigningKey({ home: opts.home, file: made!, create: false });
    if (next.keyId === old.keyId) throw new AuditLogError(`the new key is the current signing key (${old.keyId})`);
    const recorder = openRecorder({ dir: opts.dir, key: old, segmentBytes: opts.segmentBytes, checkpointRecords: Number.MAX_SAFE_INTEGER, checkpointMs: 3_600_000, fsync: "always", tickMs: 3_600_000 });
    try {
      recorder.rotateKey(next);
    } finally {
      recorder.close();
    }
    const failed = recorder.failure();
    if (failed !== null) throw new AuditLogError(`the key rotation could not be written to ${opts.dir}: ${failed.error}`);
    if (made === null) return { next, retired: null };
    const retired = join(dirname(old.path), `audit-signing-key.retired-${old.keyId.slice(0, 12)}.pem`);
    renameSync(old.path, retired);
    renameSync(made, old.path);
    return { next: loadSigningKey({ home: opts.home, file: old.path, create: false }), retired };
  } catch (err) {
    // Not handed over: the key made for it goes (once handed over, the renames above keep it).
    if (made !== null) {
      try {
        unlinkSync(made);
      } catch {}
    }
    throw err;
  }
}
