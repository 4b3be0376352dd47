/**
 * `bun run build` -> dist/sluice: one self-contained binary with the default policy and the
 * rule files embedded. Autoloading of bunfig.toml, .env, tsconfig.json and package.json is off,
 * so a stray file in the directory an agent runs from cannot change the binary's behaviour.
 */
import { $ } from "bun";
import pkg from "./package.json" with { type: "json" };

const commit = (await $`git rev-parse --short=12 HEAD`.nothrow().quiet().text()).trim() || "unknown";
const dirty = (await $`git status --porcelain --untracked-files=no`.nothrow().quiet().text()).trim() ? "-dirty" : "";

// Rule files ride along as embedded assets (Bun.embeddedFiles), named by their repo path.
const rules = [...new Bun.Glob("rules/**/*.yaml").scanSync(".")].sort();

const result = await Bun.build({
  entrypoints: ["src/main.ts", ...rules],
  loader: { ".yaml": "file" },
  naming: { asset: "[dir]/[name].[ext]" },
  target: "bun",
  minify: { syntax: true, whitespace: true },
  sourcemap: "inline",
  define: { SLUICE_BUILD: JSON.stringify({ version: pkg.version, commit: commit + dirty }) },
  compile: {
    outfile: "dist/sluice",
    autoloadBunfig: false,
    autoloadDotenv: false,
    autoloadTsconfig: false,
    autoloadPackageJson: false,
  },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built dist/sluice ${pkg.version} (${commit}${dirty}), ${rules.length} rule files embedded`);
