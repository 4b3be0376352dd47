/**
 * The rule files: embedded in dist/sluice by build.ts (Bun.embeddedFiles, named by their repo
 * path), read from the repository's rules/ when running from source.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";

export async function loadRuleFiles(prefix = "rules/"): Promise<{ path: string; text: string }[]> {
  // One order, embedded or not (by code unit): what is compiled from them, and the keys of their
  // prebuilt automata (scan/automata-store.ts), are the same either way.
  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  const embedded = Bun.embeddedFiles.filter((f) => (f as Blob & { name?: string }).name?.startsWith(prefix));
  if (embedded.length > 0) {
    return (await Promise.all(embedded.map(async (f) => ({ path: (f as Blob & { name: string }).name, text: await f.text() })))).sort(byPath);
  }
  const root = resolve(import.meta.dir, "../..");
  const dir = join(root, prefix);
  const files: { path: string; text: string }[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith(".yaml")) files.push({ path: relative(root, p), text: readFileSync(p, "utf8") });
    }
  };
  // A family with no rule files yet is an empty pack, not an error.
  if (existsSync(dir)) walk(dir);
  return files.sort(byPath);
}
