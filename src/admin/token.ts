/**
 * The bearer token that guards the admin API's `/v1/` routes.
 *
 * Either the operator names a file (kept by a secret manager, say), or sluice keeps one in its
 * state directory and creates it on first start. A token anyone else on the machine can read is
 * no token, so a group/world-readable file is refused rather than silently used.
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { secretFileModeProblem } from "../core/secret-file.ts";

export interface AdminToken {
  readonly token: string;
  readonly path: string;
  /** True when this call generated the token (worth telling the operator where it is). */
  readonly created: boolean;
}

/** A token file that cannot be used as is. Startup should stop and print the message. */
export class AdminTokenError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = "AdminTokenError";
  }
}

export const ADMIN_TOKEN_FILE_NAME = "admin.token";
/** Below this a token is guessable enough to matter on a shared host. */
export const MIN_TOKEN_LENGTH = 16;
/** 256 bits of randomness, base64url so it pastes into a header or a shell unquoted. */
const GENERATED_TOKEN_BYTES = 32;

export async function loadOrCreateAdminToken(options: {
  tokenFile?: string;
  home: string;
}): Promise<AdminToken> {
  if (options.tokenFile !== undefined) {
    return { token: await readTokenFile(options.tokenFile), path: options.tokenFile, created: false };
  }
  const path = join(options.home, ADMIN_TOKEN_FILE_NAME);
  // mkdir's mode applies only to directories it creates; an existing home keeps its own mode.
  await mkdir(options.home, { recursive: true, mode: 0o700 });
  if (await exists(path)) return { token: await readTokenFile(path), path, created: false };

  const token = randomBytes(GENERATED_TOKEN_BYTES).toString("base64url");
  if (await publishExclusively(path, `${token}\n`)) return { token, path, created: true };
  // Another sluice started at the same moment and won; use its token so both agree.
  return { token: await readTokenFile(path), path, created: false };
}

async function readTokenFile(path: string): Promise<string> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new AdminTokenError(path, `admin token file ${path}: ${describeFsError(err)}`);
  }
  if (!info.isFile()) throw new AdminTokenError(path, `admin token file ${path} is not a regular file`);
  const tooOpen = secretFileModeProblem(info, `admin token file ${path}`);
  if (tooOpen !== null) throw new AdminTokenError(path, tooOpen);
  const token = (await readFile(path, "utf8")).trim();
  if (token.length === 0) throw new AdminTokenError(path, `admin token file ${path} is empty`);
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new AdminTokenError(
      path,
      `admin token in ${path} is too short (${token.length} characters, need at least ${MIN_TOKEN_LENGTH})`,
    );
  }
  return token;
}

/**
 * Writes `content` to `path` only if nothing is there, never leaving a partly written file visible:
 * the token goes to a private temporary file first, then link(2) publishes it, which fails with
 * EEXIST atomically if another process got there first. A plain O_EXCL open would let the loser
 * read the winner's file before its token was written.
 */
async function publishExclusively(path: string, content: string): Promise<boolean> {
  const temp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(content, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temp, path);
    return true;
  } catch (err) {
    if (errorCode(err) === "EEXIST") return false;
    throw err;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (errorCode(err) === "ENOENT") return false;
    throw err;
  }
}

function errorCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "string") return err.code;
  return undefined;
}

function describeFsError(err: unknown): string {
  const code = errorCode(err);
  if (code === "ENOENT") return "does not exist";
  if (code === "EACCES") return "permission denied";
  return err instanceof Error ? err.message : String(err);
}
