/**
 * The flight recorder: the AuditSink behind `sluice run`. Every record gets `seq`, `prev` (the
 * hash of the record before it, across segments) and `hash`, and is written as one canonical
 * JSON line (log-format.ts) into size-rotated segments in `dir`. Record hashes are the leaves of
 * an RFC 6962 Merkle tree; a signed tree head (Ed25519) goes into the log as a record of its
 * own every `checkpointRecords` records or `checkpointMs`, at rotation and at close, and is
 * copied to head.json. README "Flight recorder" documents the format.
 *
 * Writes are batched like sink.ts (one write per 64 KiB or per tick); `fsync: interval` syncs
 * every tick (~100 ms), `always` writes and syncs each record before record() returns.
 *
 * A write or sync that fails (disk full, EIO, a file-size limit) never throws into the caller:
 * the unwritten lines stay in memory (bounded), `failure()` says why until a later tick writes
 * and syncs them, and the caller decides what that means (audit.on_failure in cli/run.ts).
 */
import { sign } from "node:crypto";
import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { AuditSink } from "../core/types.ts";
import { GENESIS_PREV, HEAD_FILE, hashOfLine, isHex64, KEY_ROTATION_KIND, LOCK_FILE, rawPublicKey, sealRecord, segmentIndex, segmentName, TREE_HEAD_KIND, treeHeadStatement } from "./log-format.ts";
import { createMerkleFrontier, type MerkleFrontier } from "./merkle.ts";
import type { SigningKey } from "./signing-key.ts";
import { writeBatch } from "./sink.ts";

const BATCH_BYTES = 64 * 1024;

export interface RecorderOptions {
  readonly dir: string;
  readonly key: SigningKey;
  /** A segment is closed (with a tree head) once it holds this many bytes. */
  readonly segmentBytes: number;
  /** A segment is also closed once its first record is this old (checked every tick); unset: by size only. */
  readonly segmentMs?: number;
  readonly checkpointRecords: number;
  readonly checkpointMs: number;
  readonly fsync: "always" | "interval";
  /** Flush (and, with fsync interval, sync) period. */
  readonly tickMs?: number;
  /** Wall clock, epoch ms (passed in for tests). */
  readonly now?: () => number;
  readonly onError?: (err: unknown) => void;
  /** Called after each tick's flush or sync (recorder-worker.ts publishes failure() from it). */
  readonly afterTick?: () => void;
  /**
   * Whole lines (records and tree heads, each ending in a newline) once they are written to the
   * segment, in the log's order: what recorder-worker.ts exports, so an export never holds a line
   * the log does not (a crash before the write loses it from both).
   */
  readonly onWritten?: (lines: string) => void;
}

export interface Recorder extends AuditSink {
  /** Appends a record and returns its line (for copies: audit.file, the admin ring). */
  append(record: object): string;
  /** Writes a signed tree head now. */
  checkpoint(trigger: string): void;
  /**
   * Hands signing over to `next`: a key_rotation record naming both keys, then a tree head
   * signed by the current key that covers it (README "Flight recorder", Key rotation); every
   * later tree head is signed by `next`.
   */
  rotateKey(next: SigningKey): void;
  close(): void;
  /**
   * Why the log cannot be written right now (the first error since it last could), or null when
   * every record appended so far has been written and synced.
   */
  failure(): { readonly error: string; readonly since: string } | null;
  /** What start found: a resumed chain, a repaired torn line. */
  readonly opened: { readonly resumedAt: number; readonly segment: string; readonly repaired: string | null };
}

export class AuditLogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditLogError";
  }
}

/** The directory is being written by another live process (its LOCK names it). */
export class AuditLockedError extends AuditLogError {
  constructor(message: string) {
    super(message);
    this.name = "AuditLockedError";
  }
}

interface ChainState {
  seq: number;
  prev: string;
  tree: MerkleFrontier;
  segment: number;
  /** The key that signs from here: the last tree head's, or the one its key rotation named. */
  lastTreeHeadKey: string | null;
  rotatedTo: string | null;
}

export function openRecorder(opts: RecorderOptions): Recorder {
  const now = opts.now ?? Date.now;
  const tickMs = opts.tickMs ?? 100;
  try {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new AuditLogError(`cannot create the audit directory ${opts.dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const lockPath = takeLock(opts.dir);
  let state: ChainState;
  let repaired: string | null;
  try {
    ({ state, repaired } = resume(opts.dir));
    if (state.lastTreeHeadKey !== null && state.lastTreeHeadKey !== opts.key.keyId) {
      const rotated = state.rotatedTo !== null ? ` (its last key rotation handed signing to ${state.rotatedTo})` : "";
      throw new AuditLogError(
        `the audit log in ${opts.dir} is signed with key ${state.lastTreeHeadKey}${rotated}, but the signing key (${opts.key.path}) is ${opts.key.keyId}; ` +
          "use that key (audit.signing_key_file), hand over to a new one with `sluice audit rotate-key`, or move the directory aside to start a new log",
      );
    }
  } catch (err) {
    releaseLock(lockPath);
    throw err;
  }
  const resumedAt = state.seq;

  let key = opts.key;
  const segmentPath = () => join(opts.dir, segmentName(state.segment));
  let fd = openSegment(segmentPath());
  let segmentSize = statSync(segmentPath()).size;
  // When the open segment's first record was written (its age, for segmentMs), across restarts.
  let segmentStarted = firstRecordTime(segmentPath()) ?? now();
  let batch = "";
  let dirty = false;
  let closed = false;
  let sinceCheckpoint = 0;
  let lastCheckpointAt = now();
  let failed: { error: string; since: string } | null = null;
  const fail = (err: unknown) => {
    failed ??= { error: describeError(err), since: new Date(now()).toISOString() };
    opts.onError?.(err);
  };

  const flush = () => {
    if (batch.length === 0) return;
    // A failure is reported through failure(); the lines not written go first next time (past
    // writeBatch's bound the oldest are dropped, and verify says so: deleted).
    let error = false;
    batch = writeBatch(
      fd,
      batch,
      (err) => {
        error = true;
        fail(err);
      },
      opts.onWritten && written,
    );
    if (!error) dirty = true;
  };
  // A write cut short mid-line (a full disk) leaves the line's start here until its end is written.
  let partial = "";
  const written = (text: string) => {
    const all = partial + text;
    const end = all.lastIndexOf("\n") + 1;
    partial = all.slice(end);
    if (end > 0) opts.onWritten!(all.slice(0, end));
  };
  /** Writes and syncs everything appended so far; healthy again only once that worked. */
  const sync = () => {
    flush();
    if (batch.length > 0) return;
    if (dirty) {
      try {
        fdatasyncSync(fd);
        dirty = false;
      } catch (err) {
        fail(err);
        return;
      }
    }
    failed = null;
  };

  /** Seals and queues one record; with `chained`, its seq and prev are the chain's (a decision record). */
  const write = (body: Record<string, unknown>, chained = false): string => {
    const { line, hash, digest } = chained ? sealRecord(body, { seq: state.seq, prev: state.prev }) : sealRecord(body);
    state.tree.append(digest);
    state.prev = hash;
    state.seq++;
    batch += `${line}\n`;
    segmentSize += Buffer.byteLength(line) + 1;
    if (opts.fsync === "always") sync();
    else if (batch.length >= BATCH_BYTES) flush();
    return line;
  };

  const checkpoint = (trigger: string, nextKeyId?: string) => {
    const time = new Date(now()).toISOString();
    const head = { key_id: key.keyId, root: state.tree.root().toString("hex"), time, tree_size: state.seq };
    const sig = sign(null, Buffer.from(treeHeadStatement(head), "utf8"), key.privateKey).toString("base64");
    const line = write({
      kind: TREE_HEAD_KIND,
      seq: state.seq,
      prev: state.prev,
      ...head,
      sig,
      frontier: state.tree.frontier().map((h) => h.toString("hex")),
      // Informational (the key_rotation record before it is what verify trusts): where a restart resumes.
      next_key_id: nextKeyId,
      trigger,
    });
    sync();
    // head.json lets verify notice a cut tail: it names a tree head the log must still contain.
    const tmp = join(opts.dir, `${HEAD_FILE}.tmp`);
    try {
      writeFileSync(tmp, `${line}\n`, { mode: 0o600 });
      renameSync(tmp, join(opts.dir, HEAD_FILE));
    } catch (err) {
      fail(err);
    }
    sinceCheckpoint = 0;
    lastCheckpointAt = now();
  };

  const rotate = (why: "size" | "age" = "size") => {
    checkpoint(why === "size" ? "rotate" : "rotate-age");
    // Lines not yet on disk belong to this segment: switch only once they are written.
    if (failed !== null) return;
    let next: number;
    try {
      next = openSegment(join(opts.dir, segmentName(state.segment + 1)));
    } catch (err) {
      fail(err);
      return;
    }
    closeSync(fd);
    fd = next;
    state.segment++;
    segmentSize = 0;
    segmentStarted = now();
  };

  const append = (record: object): string => {
    if (closed) throw new AuditLogError("the audit log is closed");
    // The chain fields are ours; a record can never bring its own.
    const line = write(record as Record<string, unknown>, true);
    if (++sinceCheckpoint >= opts.checkpointRecords) checkpoint("records");
    // Not while failing: each attempt would add a tree head; the next append after recovery rotates.
    if (segmentSize >= opts.segmentBytes && failed === null) rotate();
    return line;
  };

  const timer = setInterval(() => {
    if (closed) return;
    if (opts.segmentMs !== undefined && segmentSize > 0 && failed === null && now() - segmentStarted >= opts.segmentMs) rotate("age");
    else if (sinceCheckpoint > 0 && now() - lastCheckpointAt >= opts.checkpointMs) checkpoint("interval");
    // While failing, every tick retries (and clears the failure once all is on disk).
    else if (opts.fsync === "interval" || failed !== null) sync();
    else flush();
    opts.afterTick?.();
  }, tickMs);
  timer.unref();

  if (repaired !== null) append({ time: new Date(now()).toISOString(), kind: "recovered", agent: "sluice", verdict: "allow", rule: "audit.recovered", reason: "allowed", detail: repaired });

  const rotateKey = (next: SigningKey) => {
    if (closed) throw new AuditLogError("the audit log is closed");
    if (next.keyId === key.keyId) throw new AuditLogError(`the new signing key is the current one (${key.keyId})`);
    append({
      time: new Date(now()).toISOString(),
      kind: KEY_ROTATION_KIND,
      agent: "sluice",
      verdict: "allow",
      rule: "audit.key-rotation",
      reason: "allowed",
      detail: `signing key ${key.keyId} hands over to ${next.keyId}`,
      old_key_id: key.keyId,
      old_public_key: rawPublicKey(key.publicKey).toString("base64"),
      new_key_id: next.keyId,
      new_public_key: rawPublicKey(next.publicKey).toString("base64"),
    });
    // Signed by the old key: the record naming the new one is under its signature.
    checkpoint("key_rotation", next.keyId);
    key = next;
  };

  return {
    append,
    rotateKey,
    record: (r) => void append(r),
    checkpoint: (trigger) => {
      if (!closed) checkpoint(trigger);
    },
    failure: () => failed,
    close() {
      if (closed) return;
      clearInterval(timer);
      checkpoint("close");
      closed = true;
      closeSync(fd);
      releaseLock(lockPath);
    },
    opened: { resumedAt, segment: segmentName(state.segment), repaired },
  };
}

/** The time of a segment's first record, or null (empty, unreadable, or no time in it). */
function firstRecordTime(path: string): number | null {
  try {
    // A record line is small: the first 64 KiB hold it.
    const fd = openSync(path, "r");
    const buf = Buffer.alloc(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, 0);
    closeSync(fd);
    const text = buf.subarray(0, n).toString("utf8");
    const nl = text.indexOf("\n");
    if (nl < 0) return null;
    const t = Date.parse(String((JSON.parse(text.slice(0, nl)) as { time?: unknown }).time));
    return Number.isNaN(t) ? null : t;
  } catch {
    return null;
  }
}

/** The errno code and message of a failed write, never more (no record content in it). */
export function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message}` : String(err);
}

function openSegment(path: string): number {
  try {
    return openSync(path, "a", 0o600);
  } catch (err) {
    throw new AuditLogError(`cannot open the audit segment ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** One writer per directory: two chains interleaved in one file would verify as tampered. */
function takeLock(dir: string): string {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return path;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw new AuditLogError(`cannot lock the audit directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      const pid = Number.parseInt(readFileSync(path, "utf8"), 10);
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new AuditLockedError(`another process (pid ${pid}) is writing the audit log in ${dir} (${LOCK_FILE}); each sluice needs its own audit.dir`);
      // Left by a process that is gone (kill -9): take it over.
      unlinkSync(path);
    }
  }
  throw new AuditLogError(`cannot lock the audit directory ${dir}`);
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function releaseLock(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone: nothing to release.
  }
}

/**
 * Where the chain stands: from the last tree head (its frontier) plus the records after it, each
 * re-checked; a chain that does not continue cleanly stops the start (fail closed: appending to
 * a broken log would bury the break). A torn last line (a crash mid-write) is cut off and said.
 */
function resume(dir: string): { state: ChainState; repaired: string | null } {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new AuditLogError(`cannot read the audit directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const indexes = names.map(segmentIndex).filter((i): i is number => i !== null).sort((a, b) => a - b);
  if (indexes.length === 0) return { state: { seq: 0, prev: GENESIS_PREV, tree: createMerkleFrontier(), segment: 1, lastTreeHeadKey: null, rotatedTo: null }, repaired: null };

  const last = indexes[indexes.length - 1]!;
  const lastPath = join(dir, segmentName(last));
  let repaired: string | null = null;
  const text = readFileSync(lastPath, "utf8");
  if (text.length > 0 && !text.endsWith("\n")) {
    const keep = text.slice(0, text.lastIndexOf("\n") + 1);
    const cut = Buffer.byteLength(text) - Buffer.byteLength(keep);
    truncateSync(lastPath, Buffer.byteLength(keep));
    const fd = openSync(lastPath, "r+");
    fsyncSync(fd);
    closeSync(fd);
    repaired = `cut a torn last line (${cut} bytes, never chained) from ${segmentName(last)}`;
  }
  const linesOf = (i: number) => {
    const t = i === last ? (repaired === null ? text : readFileSync(lastPath, "utf8")) : readFileSync(join(dir, segmentName(i)), "utf8");
    return t.split("\n").slice(0, -1);
  };

  // The last tree head, searching segments backwards.
  let from: { seg: number; line: number } | null = null;
  const cache = new Map<number, string[]>();
  for (let k = indexes.length - 1; k >= 0 && from === null; k--) {
    const lines = linesOf(indexes[k]!);
    cache.set(indexes[k]!, lines);
    for (let j = lines.length - 1; j >= 0; j--) {
      if (lines[j]!.includes(`"kind":"${TREE_HEAD_KIND}"`)) {
        from = { seg: k, line: j };
        break;
      }
    }
  }
  let state: ChainState = { seq: 0, prev: GENESIS_PREV, tree: createMerkleFrontier(), segment: last, lastTreeHeadKey: null, rotatedTo: null };
  const fail = (seg: number, line: number, why: string): never => {
    throw new AuditLogError(`the audit log in ${dir} does not continue cleanly at ${segmentName(seg)} line ${line + 1}: ${why}; run \`sluice audit verify ${dir}\`, and move the directory aside to start a new log`);
  };
  for (let k = from?.seg ?? 0; k < indexes.length; k++) {
    const lines = cache.get(indexes[k]!) ?? linesOf(indexes[k]!);
    for (let j = k === from?.seg ? from.line : 0; j < lines.length; j++) {
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(lines[j]!) as Record<string, unknown>;
      } catch {
        return fail(indexes[k]!, j, "not a JSON record");
      }
      if (!isHex64(r.hash) || hashOfLine(lines[j]!, r.hash) !== r.hash) fail(indexes[k]!, j, "the record does not match its hash");
      if (k === from?.seg && j === from.line) {
        // Resume the tree as the tree head saw it, before its own leaf.
        if (r.kind !== TREE_HEAD_KIND || !Array.isArray(r.frontier) || !r.frontier.every(isHex64) || r.tree_size !== r.seq || !isHex64(r.prev)) fail(indexes[k]!, j, "not a well-formed tree head");
        try {
          state.tree = createMerkleFrontier({ size: r.tree_size as number, frontier: (r.frontier as string[]).map((h) => Buffer.from(h, "hex")) });
        } catch (err) {
          fail(indexes[k]!, j, String(err));
        }
        state.seq = r.seq as number;
        state.prev = r.prev as string;
      }
      if (r.seq !== state.seq || r.prev !== state.prev) fail(indexes[k]!, j, `expected seq ${state.seq} chained to ${state.prev.slice(0, 12)}…`);
      if (r.kind === TREE_HEAD_KIND && typeof r.key_id === "string") {
        // After a key rotation's tree head (signed by the old key), the new key signs.
        state.rotatedTo = typeof r.next_key_id === "string" ? r.next_key_id : null;
        state.lastTreeHeadKey = state.rotatedTo ?? r.key_id;
      }
      state.tree.append(Buffer.from(r.hash as string, "hex"));
      state.prev = r.hash as string;
      state.seq++;
    }
  }
  state = { ...state, segment: last };
  return { state, repaired };
}
