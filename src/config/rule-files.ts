/**
 * The rule files: embedded in dist/sluice by build.ts (Bun.embeddedFiles, named by their repo
 * path), read from the repository's rules/ when running from source.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";

export async function loadRuleFiles(prefix = "rules/"): Promise<{ path: string; text: string }[]> {
  const embedded = Bun.embeddedFiles.filter((f) => (f as Blob & { name?: string }).name?.startsWith(prefix));
  if (embedded.length > 0) {
    return Promise.all(embedded.map(async (f) => ({ path: (f as Blob & { name: string }).name, text: await f.text() })));
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
  return files.sort((a, b) => a.path.localeCompare(b.path));
}
