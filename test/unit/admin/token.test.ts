import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmod, chown, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AdminTokenError, loadOrCreateAdminToken } from "../../../src/admin/token.ts";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sluice-admin-token-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loadOrCreateAdminToken", () => {
  test("creates a private token under home, then reuses it", async () => {
    const home = join(dir, "state", "sluice");
    const first = await loadOrCreateAdminToken({ home });
    expect(first.created).toBe(true);
    expect(first.path).toBe(join(home, "admin.token"));
    // 32 random bytes, base64url without padding.
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await readFile(first.path, "utf8")).trim()).toBe(first.token);
    expect((await stat(first.path)).mode & 0o777).toBe(0o600);
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, "state"))).mode & 0o777).toBe(0o700);

    const second = await loadOrCreateAdminToken({ home });
    expect(second).toEqual({ token: first.token, path: first.path, created: false });
    // No temporary files left behind.
    expect(await readdir(home)).toEqual(["admin.token"]);
  });

  test("concurrent starts agree on one token", async () => {
    const home = join(dir, "race");
    const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateAdminToken({ home })));
    expect(new Set(results.map((r) => r.token)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect((await readFile(join(home, "admin.token"), "utf8")).trim()).toBe(results[0]?.token as string);
    expect(await readdir(home)).toEqual(["admin.token"]);
  });

  test("reads a given token file and trims it", async () => {
    const file = join(dir, "given.token");
    await writeFile(file, "  abcdefghijklmnopqrstuvwxyz\n", { mode: 0o600 });
    const result = await loadOrCreateAdminToken({ tokenFile: file, home: join(dir, "unused") });
    expect(result).toEqual({ token: "abcdefghijklmnopqrstuvwxyz", path: file, created: false });
  });

  test("accepts an owner-only 0400 file", async () => {
    const file = join(dir, "ro.token");
    await writeFile(file, "0123456789abcdef", { mode: 0o600 });
    await chmod(file, 0o400);
    expect((await loadOrCreateAdminToken({ tokenFile: file, home: dir })).token).toBe("0123456789abcdef");
  });

  for (const mode of [0o640, 0o604, 0o644, 0o660]) {
    test(`refuses a token file with mode ${mode.toString(8)}, naming the path and the fix`, async () => {
      const file = join(dir, "loose.token");
      await writeFile(file, "0123456789abcdef0123");
      await chmod(file, mode);
      // Root may let its group read a secret (core/secret-file.ts): a file someone else owns may not.
      if (process.getuid?.() === 0) await chown(file, 65534, 65534);
      const err = await loadOrCreateAdminToken({ tokenFile: file, home: dir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AdminTokenError);
      expect((err as AdminTokenError).message).toContain(file);
      expect((err as AdminTokenError).message).toContain("chmod 600");
      expect((err as AdminTokenError).message).not.toContain("0123456789abcdef0123");
    });
  }

  test("refuses a loose default token file too", async () => {
    await loadOrCreateAdminToken({ home: dir });
    await chmod(join(dir, "admin.token"), 0o644);
    await expect(loadOrCreateAdminToken({ home: dir })).rejects.toThrow(/chmod 600/);
  });

  test("refuses an empty or short token", async () => {
    const empty = join(dir, "empty.token");
    await writeFile(empty, " \n", { mode: 0o600 });
    await expect(loadOrCreateAdminToken({ tokenFile: empty, home: dir })).rejects.toThrow(/is empty/);
    const short = join(dir, "short.token");
    await writeFile(short, "abc123456789012\n", { mode: 0o600 }); // 15 characters
    await expect(loadOrCreateAdminToken({ tokenFile: short, home: dir })).rejects.toThrow(/too short/);
  });

  test("a missing token file is a clear error, not a new token", async () => {
    const file = join(dir, "nope.token");
    await expect(loadOrCreateAdminToken({ tokenFile: file, home: dir })).rejects.toThrow(`${file}: does not exist`);
    expect(await readdir(dir)).toEqual([]);
  });

  test("a directory is not a token file", async () => {
    await expect(loadOrCreateAdminToken({ tokenFile: dir, home: dir })).rejects.toThrow(/not a regular file/);
  });
});
