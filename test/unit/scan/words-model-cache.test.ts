/**
 * The word model's cache (scripts/words-model.ts): a model is written per state of the source,
 * so old ones are pruned, all but the few used last.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KEEP_MODELS, markUsed, pruneModelCache } from "../../../scripts/words-model.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sluice-words-cache-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const NOW = Date.UTC(2026, 10, 29, 12);
/** Writes `name` into the cache directory, last modified `ageMs` before NOW. */
function file(name: string, ageMs: number): void {
  const path = join(dir, name);
  writeFileSync(path, "x");
  const at = new Date(NOW - ageMs);
  utimesSync(path, at, at);
}
const digest = (i: number) => i.toString(16).padStart(32, "0");

describe("pruneModelCache", () => {
  test("keeps the models used last and removes the rest", () => {
    for (let i = 0; i < 7; i++) file(`words-${digest(i)}.bin`, i * 60_000);
    const removed = pruneModelCache(dir, 3, NOW);
    expect(removed.sort()).toEqual([3, 4, 5, 6].map((i) => `words-${digest(i)}.bin`));
    expect(readdirSync(dir).sort()).toEqual([0, 1, 2].map((i) => `words-${digest(i)}.bin`));
  });

  test("removes a half-written model only once it is stale, and leaves other files alone", () => {
    file(`words-${digest(1)}.bin.123.tmp`, 2 * 60 * 60 * 1000);
    file(`words-${digest(2)}.bin.456.tmp`, 60_000);
    file("notes.txt", 10 * 24 * 60 * 60 * 1000);
    file(`words-${digest(3)}.bin.bak`, 10 * 24 * 60 * 60 * 1000);
    file(`words-${digest(4)}.bin`, 10 * 24 * 60 * 60 * 1000);
    expect(pruneModelCache(dir, 1, NOW)).toEqual([`words-${digest(1)}.bin.123.tmp`]);
    expect(readdirSync(dir).sort()).toEqual(["notes.txt", `words-${digest(2)}.bin.456.tmp`, `words-${digest(3)}.bin.bak`, `words-${digest(4)}.bin`].sort());
  });

  test("a model found is marked used; one that cannot be marked is still used (no throw)", () => {
    const name = `words-${digest(9)}.bin`;
    const YEAR = 365 * 24 * 60 * 60 * 1000;
    file(name, 20 * YEAR);
    markUsed(join(dir, name));
    // Marked now (by the clock, not NOW): well after it was written.
    expect(statSync(join(dir, name)).mtimeMs).toBeGreaterThan(NOW - 10 * YEAR);
    // A jailed command run as nobody may read the cache but not touch it: the model is not
    // taken for damaged (which would train it again, and try to remove the file).
    expect(() => markUsed(join(dir, "missing", name))).not.toThrow();
  });

  test("a directory that does not exist is nothing to prune", () => {
    expect(pruneModelCache(join(dir, "missing"), KEEP_MODELS, NOW)).toEqual([]);
  });
});
