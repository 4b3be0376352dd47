/**
 * `bun run build` -> dist/sluice: one self-contained binary with the default policy and the
 * rule files embedded. Autoloading of bunfig.toml, .env, tsconfig.json and package.json is off,
 * so a stray file in the directory an agent runs from cannot change the binary's behaviour.
 */
import { $, type BunPlugin } from "bun";
import pkg from "./package.json" with { type: "json" };
import { watPlugin } from "./scripts/wat.ts";

/**
 * re2-wasm (custom DLP rules, src/scan/rules/custom.ts) reads its WebAssembly module with
 * fs.readFileSync(__dirname + "/re2.wasm"), and `bun build` freezes __dirname to the build
 * machine's absolute path, so a compiled binary would read node_modules at run time. Its
 * Emscripten loader has no hook reachable from outside the module, so this rewrites the one
 * statement that names the file: the .wasm becomes an embedded asset and the loader reads it
 * from there. Fails the build if re2-wasm's loader no longer has that statement.
 */
export const embedRe2Wasm: BunPlugin = {
  name: "embed-re2-wasm",
  setup(build) {
    build.onLoad({ filter: /[\\/]re2-wasm[\\/]build[\\/]wasm[\\/]re2\.js$/ }, async ({ path }) => {
      const source = await Bun.file(path).text();
      const locate = "var wasmBinaryFile = 're2.wasm';\nif (!isDataURI(wasmBinaryFile)) {\n  wasmBinaryFile = locateFile(wasmBinaryFile);\n}";
      if (source.split(locate).length !== 2) throw new Error(`embed-re2-wasm: ${path} does not locate re2.wasm as expected; update build.ts`);
      return { loader: "js", contents: source.replace(locate, () => `var wasmBinaryFile = require("./re2.wasm");`) };
    });
  },
};

if (import.meta.main) await build();

/**
 * Builds the binary. `auditOff` is for bench:audit only: a reference binary (never dist/sluice)
 * without the flight recorder, to measure what the recorder costs the proxy. It is a build-time
 * constant, so the shipped binary has no way at all to run without its signed log.
 */
export async function build(opts: { outfile?: string; auditOff?: boolean } = {}): Promise<void> {
  const outfile = opts.outfile ?? "dist/sluice";
  if (opts.auditOff && outfile === "dist/sluice") throw new Error("an audit-off build never goes to dist/sluice");
  // SLUICE_COMMIT: for builds without .git (the Dockerfile passes it as a build argument).
  const commit = (await $`git rev-parse --short=12 HEAD`.nothrow().quiet().text()).trim() || process.env.SLUICE_COMMIT || "unknown";
  const dirty = (await $`git status --porcelain --untracked-files=no`.nothrow().quiet().text()).trim() ? "-dirty" : "";

  // Rule files ride along as embedded assets (Bun.embeddedFiles), named by their repo path.
  const rules = [...new Bun.Glob("rules/**/*.yaml").scanSync(".")].sort();
  // So do the automata compiling them builds (src/scan/automata-store.ts): made here, once.
  const automata = await prebuildAutomata();
  // And the word model trained on the injection corpus (scripts/words-model.ts).
  const words = await wordModelAsset();

  const result = await Bun.build({
    // Worker threads are entry points of their own (src/audit/worker-url.ts finds them).
    entrypoints: ["src/main.ts", "src/audit/recorder-worker.ts", "src/audit/receipt-worker.ts", ...rules, automata, words],
    loader: { ".yaml": "file", ".wasm": "file", ".bin": "file" },
    plugins: [embedRe2Wasm, watPlugin],
    naming: { asset: "[dir]/[name].[ext]" },
    target: "bun",
    minify: { syntax: true, whitespace: true },
    sourcemap: "inline",
    // Precompiled bytecode: ~100 ms less to start (sluice jail starts one per jail).
    bytecode: true,
    format: "esm",
    define: { SLUICE_BUILD: JSON.stringify({ version: pkg.version, commit: commit + dirty }), SLUICE_BENCH_AUDIT_OFF: String(opts.auditOff === true) },
    compile: {
      outfile,
      autoloadBunfig: false,
      autoloadDotenv: false,
      autoloadTsconfig: false,
      autoloadPackageJson: false,
    },
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error(`bun build failed for ${outfile}`);
  }
  console.log(`built ${outfile} ${pkg.version} (${commit}${dirty}), ${rules.length} rule files embedded`);
}

/** The built-in word model (trained, or found in the cache) as dist/prebuilt/words.bin. */
async function wordModelAsset(): Promise<string> {
  const { wordModelFile } = await import("./scripts/words-model.ts");
  const file = "dist/prebuilt/words.bin";
  await Bun.write(file, (await wordModelFile()).bytes);
  return file;
}

/**
 * Compiles the built-in rule packs as sluice does at start, keeping every automaton built
 * (scan/automata-store.ts), and writes them to dist/prebuilt/automata.bin for the binary to
 * embed. Generated at each build from the rules being embedded, never committed.
 */
async function prebuildAutomata(): Promise<string> {
  const { collectAutomata } = await import("./src/scan/automata-store.ts");
  const load = await import("./src/config/load.ts");
  const finish = collectAutomata();
  await Promise.all([load.builtinRules(), load.builtinInjectionRules(), load.builtinMcpRules(), load.builtinArgRules()]);
  const file = "dist/prebuilt/automata.bin";
  await Bun.write(file, finish());
  return file;
}
