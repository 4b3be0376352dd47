/**
 * Holds src/ to ARCHITECTURE.md's import table ("Layout", "Import direction, outside in only").
 * Imports are read with Bun.Transpiler#scanImports, so type-only imports (erased at build time)
 * do not count; everything that is loaded at run time does, dynamic import() and require()
 * included. Each failure names the importing file and the import.
 */
import { describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import ts from "typescript";

const ROOT = resolve(import.meta.dir, "..");
const SRC = join(ROOT, "src");

/** One import as found in a file: the raw specifier, and for relative ones the src-relative target. */
interface Edge {
  readonly from: string;
  readonly spec: string;
  /** `core/types.ts`-style path inside src/, or `../x` when it leaves src/, or null for a package. */
  readonly target: string | null;
}

const LISTENERS = ["dns", "proxy", "mcp", "admin"] as const;
const PURE_LAYERS = ["net", "policy", "scan", "inspect", "config"] as const;
/** config/ files that touch the filesystem (config, token and rule files); the rest of config/ is pure (schema, parse, compile, units). */
const IMPURE_CONFIG = new Set(["config/load.ts", "config/watch.ts", "config/rule-files.ts"]);
/**
 * Packages pure modules may load, exactly what they use today, each for a computation only:
 * hashing (policy/agents), UTS #46 host mapping (net/host), public suffixes (net/host-pattern),
 * YAML and schema validation (config). No sockets, files, processes or clocks among them.
 */
/**
 * Packages that only compute. re2-wasm (user-supplied DLP patterns, scan/rules/custom.ts) reads
 * its wasm once, from inside the compiled binary (build.ts embeds it), when the first custom rule
 * is compiled, never at import.
 */
const PURE_PACKAGES = new Set(["node:crypto", "node:url", "re2-wasm", "tldts", "yaml", "zod"]);
/** Called out by name in ARCHITECTURE.md; listed so a violation says what it is. */
const IO_PACKAGES = ["node:net", "node:dgram", "node:child_process", "node:fs", "node:fs/promises", "node:dns", "node:tls", "node:http", "node:https", "node:os", "bun", "bun:ffi"];

function layerOf(path: string): string {
  if (path === "main.ts") return "main";
  const slash = path.indexOf("/");
  return slash < 0 ? path : path.slice(0, slash);
}

function isPure(path: string): boolean {
  return (PURE_LAYERS as readonly string[]).includes(layerOf(path)) && !IMPURE_CONFIG.has(path);
}

/** The violations of the import table among `edges`, one human-readable line each. */
function violations(edges: readonly Edge[]): string[] {
  const out: string[] = [];
  const bad = (e: Edge, why: string) => out.push(`src/${e.from} imports "${e.spec}": ${why}`);
  for (const e of edges) {
    const fromLayer = layerOf(e.from);
    const toLayer = e.target !== null && !e.target.startsWith("..") ? layerOf(e.target) : null;

    if (e.target === "main.ts") bad(e, "nothing imports src/main.ts, the composition root");
    if (toLayer === "cli" && fromLayer !== "cli" && fromLayer !== "main") bad(e, "only src/main.ts and src/cli/ may import src/cli/");

    if (fromLayer === "core") {
      if (toLayer !== "core") bad(e, "core imports nothing but core (shared types only)");
      continue;
    }

    if (isPure(e.from)) {
      if (e.target === null) {
        if (IO_PACKAGES.includes(e.spec)) bad(e, `pure modules do no I/O (${e.spec} opens sockets, files or processes)`);
        else if (!PURE_PACKAGES.has(e.spec)) bad(e, `pure modules may load only ${[...PURE_PACKAGES].join(", ")}`);
      } else if (toLayer === null) {
        bad(e, "pure modules do not import files outside src/");
      } else if (toLayer !== "core" && !isPure(e.target)) {
        bad(e, `pure modules import only core and other pure modules (${PURE_LAYERS.join(", ")}; not config/load.ts or config/watch.ts), not ${toLayer}/`);
      }
      continue;
    }

    if ((LISTENERS as readonly string[]).includes(fromLayer)) {
      if (toLayer !== null && toLayer !== fromLayer && (LISTENERS as readonly string[]).includes(toLayer)) {
        bad(e, `listeners (${LISTENERS.join(", ")}) do not import each other; main.ts passes one to another as an interface`);
      }
      if (toLayer === "jail") bad(e, "listeners do not import jail/");
      continue;
    }

    if (fromLayer === "audit" && toLayer !== null && ((LISTENERS as readonly string[]).includes(toLayer) || toLayer === "jail")) {
      bad(e, "audit never imports a listener or jail/");
    }
  }
  return out;
}

// ---- reading src/ --------------------------------------------------------------------------

const transpiler = new Bun.Transpiler({ loader: "ts" });

function srcFiles(): string[] {
  return [...new Glob("**/*.ts").scanSync(SRC)].map((p) => p.split(sep).join("/")).sort();
}

function readEdges(files: readonly string[]): Edge[] {
  const edges: Edge[] = [];
  for (const from of files) {
    const code = readFileSync(join(SRC, from), "utf8");
    for (const imp of transpiler.scanImports(code)) {
      const spec = imp.path;
      let target: string | null = null;
      if (spec.startsWith(".")) {
        target = relative(SRC, resolve(SRC, dirname(from), spec)).split(sep).join("/");
      }
      edges.push({ from, spec, target });
    }
  }
  return edges;
}

const FILES = srcFiles();
const EDGES = readEdges(FILES);

describe("architecture: the import table", () => {
  test("src/ was read and imports were found", () => {
    expect(FILES).toContain("main.ts");
    expect(FILES).toContain("core/types.ts");
    // A known edge, so that a scanner that silently finds nothing fails here.
    expect(EDGES).toContainEqual({ from: "cli/run.ts", spec: "../proxy/forward.ts", target: "proxy/forward.ts" });
  });

  test("src/ has only the directories ARCHITECTURE.md's layout names", () => {
    const layout = ["cli", "core", "config", "net", "policy", "scan", "inspect", "dns", "proxy", "mcp", "audit", "admin", "jail", "deploy"];
    const dirs = [...new Set(FILES.filter((f) => f.includes("/")).map(layerOf))];
    expect(dirs.filter((d) => !layout.includes(d))).toEqual([]);
    expect(FILES.filter((f) => !f.includes("/"))).toEqual(["main.ts"]);
  });

  test("every relative import points at a file that exists", () => {
    const missing = EDGES.filter((e) => e.target !== null && !existsSync(join(SRC, e.target))).map((e) => `src/${e.from} imports "${e.spec}", which does not exist`);
    expect(missing).toEqual([]);
  });

  test("no file breaks the import table", () => {
    expect(violations(EDGES)).toEqual([]);
  });

  test("the pure modules' packages are exactly the allowed ones (keeps the list honest)", () => {
    const used = new Set(EDGES.filter((e) => isPure(e.from) && e.target === null).map((e) => e.spec));
    const unused = [...PURE_PACKAGES].filter((p) => !used.has(p));
    expect(unused).toEqual([]);
  });
});

describe("architecture: the rules catch what they should", () => {
  const rows: [from: string, spec: string, target: string | null, fragment: string][] = [
    ["core/types.ts", "../net/ip.ts", "net/ip.ts", "core imports nothing"],
    ["core/types.ts", "zod", null, "core imports nothing"],
    ["policy/egress.ts", "../proxy/forward.ts", "proxy/forward.ts", "not proxy/"],
    ["net/host.ts", "node:net", null, "do no I/O"],
    ["net/host.ts", "node:dgram", null, "do no I/O"],
    ["scan/dlp.ts", "node:child_process", null, "do no I/O"],
    ["inspect/inspect.ts", "node:fs", null, "do no I/O"],
    ["inspect/inspect.ts", "bun", null, "do no I/O"],
    ["config/schema.ts", "hono", null, "may load only"],
    ["config/compile.ts", "./load.ts", "config/load.ts", "not config/"],
    ["config/parse.ts", "../dns/resolver.ts", "dns/resolver.ts", "not dns/"],
    ["inspect/stages.ts", "../mcp/session.ts", "mcp/session.ts", "not mcp/"],
    ["policy/agents.ts", "../admin/app.ts", "admin/app.ts", "not admin/"],
    ["net/ip.ts", "../jail/netns.ts", "jail/netns.ts", "not jail/"],
    ["net/ip.ts", "../../package.json", "../package.json", "outside src/"],
    ["proxy/forward.ts", "../dns/server.ts", "dns/server.ts", "do not import each other"],
    ["dns/server.ts", "../admin/app.ts", "admin/app.ts", "do not import each other"],
    ["admin/app.ts", "../mcp/http.ts", "mcp/http.ts", "do not import each other"],
    ["proxy/forward.ts", "../cli/run.ts", "cli/run.ts", "only src/main.ts and src/cli/"],
    ["audit/sink.ts", "../proxy/forward.ts", "proxy/forward.ts", "audit never imports"],
    ["cli/run.ts", "../main.ts", "main.ts", "nothing imports src/main.ts"],
  ];
  test.each(rows)("src/%s importing %p is refused", (from, spec, target, fragment) => {
    const found = violations([{ from, spec, target }]);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(`src/${from}`);
    expect(found[0]).toContain(`"${spec}"`);
    expect(found[0]).toContain(fragment);
  });

  const allowed: [from: string, spec: string, target: string | null][] = [
    ["config/load.ts", "node:fs/promises", null],
    ["config/watch.ts", "node:fs", null],
    ["config/compile.ts", "../policy/egress.ts", "policy/egress.ts"],
    ["inspect/stages.ts", "../policy/egress.ts", "policy/egress.ts"],
    ["policy/egress.ts", "../net/host-pattern.ts", "net/host-pattern.ts"],
    ["policy/agents.ts", "node:crypto", null],
    ["proxy/forward.ts", "../inspect/inspect.ts", "inspect/inspect.ts"],
    ["proxy/forward.ts", "./chunked.ts", "proxy/chunked.ts"],
    ["proxy/forward.ts", "bun", null],
    ["cli/run.ts", "../proxy/forward.ts", "proxy/forward.ts"],
    ["cli/run.ts", "../admin/app.ts", "admin/app.ts"],
    ["main.ts", "./cli/run.ts", "cli/run.ts"],
    ["cli/build-info.ts", "../../package.json", "../package.json"],
  ];
  test.each(allowed)("src/%s importing %p is fine", (from, spec, target) => {
    expect(violations([{ from, spec, target }])).toEqual([]);
  });
});

// ---- source hygiene: parsed with the TypeScript compiler so comments and strings never count ----

interface Hit {
  readonly file: string;
  readonly line: number;
  readonly text: string;
}

function scanSource(visit: (node: ts.Node, sf: ts.SourceFile, hit: (node: ts.Node) => void) => void): Hit[] {
  const hits: Hit[] = [];
  for (const file of FILES) {
    const sf = ts.createSourceFile(file, readFileSync(join(SRC, file), "utf8"), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    const hit = (node: ts.Node) => {
      const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
      hits.push({ file: `src/${file}`, line: line + 1, text: node.parent ? node.parent.getText(sf).slice(0, 80) : node.getText(sf) });
    };
    const walk = (node: ts.Node): void => {
      visit(node, sf, hit);
      ts.forEachChild(node, walk);
    };
    walk(sf);
  }
  return hits;
}

const format = (hits: readonly Hit[]) => hits.map((h) => `${h.file}:${h.line}: ${h.text}`);

describe("architecture: source hygiene", () => {
  test("no console.log in src/ (one structured logger)", () => {
    const hits = scanSource((node, sf, hit) => {
      if (ts.isPropertyAccessExpression(node) && node.expression.getText(sf) === "console" && node.name.text === "log") hit(node);
      if (ts.isElementAccessExpression(node) && node.expression.getText(sf) === "console" && ts.isStringLiteral(node.argumentExpression) && node.argumentExpression.text === "log") hit(node);
    });
    expect(format(hits)).toEqual([]);
  });

  test("no `any` type in src/ (`: any`, `as any`, `<any>`, `any[]`)", () => {
    const hits = scanSource((node, _sf, hit) => {
      if (node.kind === ts.SyntaxKind.AnyKeyword) hit(node);
    });
    expect(format(hits)).toEqual([]);
  });

  test("the scanners find what they look for", () => {
    const sf = ts.createSourceFile("x.ts", "const a: any = 1; const b = a as any; console.log(b); // console.log any", ts.ScriptTarget.Latest, true);
    let anys = 0;
    let logs = 0;
    const walk = (node: ts.Node): void => {
      if (node.kind === ts.SyntaxKind.AnyKeyword) anys++;
      if (ts.isPropertyAccessExpression(node) && node.expression.getText(sf) === "console" && node.name.text === "log") logs++;
      ts.forEachChild(node, walk);
    };
    walk(sf);
    expect({ anys, logs }).toEqual({ anys: 2, logs: 1 });
  });
});
