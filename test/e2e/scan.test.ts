/**
 * `sluice scan` through the compiled binary: the embedded rule pack, the decoders, the four input
 * modes (text, raw HTTP request and response, MCP JSON-RPC), a config's custom rules, known
 * secrets and actions, the JSON output that never carries a value, and the exit codes of the
 * ARCHITECTURE.md contract (0 allow or warn, 1 block or redact, 2 usage or input error).
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { compileRulePack } from "../../src/scan/rules/compile.ts";
import { BIN, ROOT, tempDir } from "../helpers/sluice.ts";

/** The secret in the first match example of a rule, cut out by the rule itself (valid checksums, real shapes). */
function sample(ruleId: string): string {
  const dir = join(ROOT, "rules/dlp");
  const pack = compileRulePack(readdirSync(dir).filter((f) => f.endsWith(".yaml")).map((f) => ({ path: f, text: readFileSync(join(dir, f), "utf8") })));
  const rule = pack.rules.find((r) => r.id === ruleId);
  for (const ex of rule?.examples.match ?? []) {
    const f = pack.scan(ex).find((x) => x.rule === ruleId);
    if (f) return ex.slice(f.start, f.end);
  }
  throw new Error(`no sample for ${ruleId}`);
}

const TOKEN = sample("dlp.github-token");
const STRIPE = sample("dlp.stripe-secret-key");
const AWS_ID = sample("dlp.aws-access-key-id");
const KNOWN = "corp-internal-Secret-Value-91ax7Q";
const ACME = "acme_0123456789abcdefghijklmn";
/** Every value planted below; none may appear in anything sluice prints. */
const SECRETS = [TOKEN, STRIPE, AWS_ID, KNOWN, ACME, TOKEN.slice(4), Buffer.from(KNOWN).toString("base64")];

interface Finding {
  rule: string;
  location: string;
  preview: string;
  via: string[];
  action: string;
}
interface Run {
  code: number;
  out: string;
  err: string;
  findings: Finding[];
  verdict?: string;
  errors?: { rule: string; error: string }[];
}

async function scan(input: string | Uint8Array, args: string[] = ["-"], env: Record<string, string> = {}): Promise<Run> {
  const proc = Bun.spawn([BIN, "scan", ...args], { stdin: new Blob([input]), stdout: "pipe", stderr: "pipe", env: { ...process.env, SLUICE_CONFIG: "", ...env } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  for (const secret of SECRETS) {
    expect(out).not.toContain(secret);
    expect(err).not.toContain(secret);
  }
  let report: { findings: Finding[]; verdict?: string; errors?: Run["errors"] } = { findings: [] };
  try {
    report = JSON.parse(out) as typeof report;
  } catch {
    // usage and input errors print no JSON
  }
  return { code, out, err, ...report };
}

const rules = (r: Run) => r.findings.map((f) => `${f.rule}@${f.location}`);
const crlf = (s: string) => s.replace(/\n/g, "\r\n");

function writeConfig(dlp: string): string {
  const file = join(tempDir(), "sluice.yaml");
  writeFileSync(file, `version: 1\ndlp:\n${dlp}\n`);
  return file;
}

describe("sluice scan --as text", () => {
  test("a token as written is found (exit 1, verdict block, action block), and the output never contains it", async () => {
    const r = await scan(`deploy with token ${TOKEN} now`);
    expect(r.code).toBe(1);
    expect(r.verdict).toBe("block");
    expect(r.findings).toContainEqual({ rule: "dlp.github-token", location: "text", preview: expect.any(String), via: [], action: "block" });
  });

  test("encoded forms are found through the decoders, with the chain that revealed them", async () => {
    const forms: [string, string][] = [
      [`payload=${Buffer.from(`t=${TOKEN}`).toString("base64")}`, "base64"],
      [`q=${encodeURIComponent(encodeURIComponent(`token ${TOKEN}`))}`, "percent"],
      [`hex ${Buffer.from(TOKEN).toString("hex")}`, "hex"],
      [`"\\u0067\\u0068\\u0070\\u005f${TOKEN.slice(4)}"`, "json"],
    ];
    for (const [input, decoder] of forms) {
      const r = await scan(input);
      const hit = r.findings.find((f) => f.rule === "dlp.github-token");
      expect({ decoder, found: hit !== undefined, via: hit?.via.includes(decoder) }).toEqual({ decoder, found: true, via: true });
    }
  });

  test("clean text and placeholders exit 0 with verdict allow", async () => {
    const r = await scan("id 123e4567-e89b-12d3-a456-426614174000, sha 9fceb02d0ae598e95dc970b74767f19372d61af8, GITHUB_TOKEN=<your-token>");
    expect(r.code).toBe(0);
    expect(r.findings).toEqual([]);
    expect(r.verdict).toBe("allow");
  });

  test("a file argument works; usage and input errors exit 2", async () => {
    const dir = tempDir();
    const file = join(dir, "env.txt");
    writeFileSync(file, `GITHUB_TOKEN=${TOKEN}\n`);
    expect((await scan("", [file])).code).toBe(1);
    const missing = await scan("", [join(dir, "missing.txt")]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("ENOENT");
    expect((await scan("", ["a", "b"])).code).toBe(2);
    const badMode = await scan("x", ["--as", "yaml", "-"]);
    expect(badMode.code).toBe(2);
    expect(badMode.err).toContain("--as must be one of");
    expect((await scan("x", ["--bogus"])).code).toBe(2);
  });
});

describe("sluice scan --as request", () => {
  const request = (body: string, extra = "") =>
    crlf(`POST /v1/messages?user=42 HTTP/1.1\nHost: api.example.test\nContent-Type: application/json\n${extra}Content-Length: ${Buffer.byteLength(body)}\n\n`) + body;

  test("a secret in the query, a header and the JSON body is found at each location", async () => {
    const raw = crlf(`GET /repos?access_token=${TOKEN} HTTP/1.1\nHost: api.example.test\nX-Api-Key: ${STRIPE}\n\n`);
    const r = await scan(raw, ["--as", "request", "-"]);
    expect(r.code).toBe(1);
    expect(rules(r)).toEqual(expect.arrayContaining(["dlp.github-token@url.query.access_token", "dlp.stripe-secret-key@header.x-api-key"]));
    const body = await scan(request(JSON.stringify({ model: "m", messages: [{ role: "user", content: `use ${AWS_ID} please` }] })), ["--as", "request", "-"]);
    expect(body.code).toBe(1);
    expect(rules(body)).toContain("dlp.aws-access-key-id@body.json.messages[0].content");
  });

  test("a clean request exits 0 with verdict allow", async () => {
    const r = await scan(request(JSON.stringify({ model: "m", id: "123e4567-e89b-12d3-a456-426614174000", sha: "9fceb02d0ae598e95dc970b74767f19372d61af8" })), ["--as", "request", "-"]);
    expect({ code: r.code, verdict: r.verdict, findings: r.findings }).toEqual({ code: 0, verdict: "allow", findings: [] });
  });

  test("LF-only line endings, an absolute-form https target, userinfo and no trailing blank line are accepted", async () => {
    const r = await scan(`GET https://deploy:${KNOWN}@git.example.test/repo.git?x=1 HTTP/1.1\nHost: git.example.test\nAuthorization: token ${TOKEN}`, ["--as", "request", "-"]);
    expect(r.code).toBe(1);
    expect(rules(r)).toEqual(expect.arrayContaining(["dlp.github-token@header.authorization", "dlp.credentials-in-url@url.userinfo"]));
  });

  test("a secret split across JSON fields is found as a join, as the proxy does", async () => {
    const r = await scan(request(JSON.stringify({ a: TOKEN.slice(0, 14), b: TOKEN.slice(14) })), ["--as", "request", "-"]);
    expect(r.code).toBe(1);
    expect(r.findings.find((f) => f.rule === "dlp.github-token")?.location).toStartWith("joined(body.json.a..body.json.b)");
  });

  test("a chunked, gzip-encoded body is de-chunked and inflated before it is scanned", async () => {
    const gz = gzipSync(JSON.stringify({ note: "deploy", key: STRIPE }));
    const chunks = Buffer.concat([Buffer.from(`10\r\n`), gz.subarray(0, 16), Buffer.from(`\r\n${(gz.length - 16).toString(16)}\r\n`), gz.subarray(16), Buffer.from("\r\n0\r\n\r\n")]);
    const head = crlf("POST /upload HTTP/1.1\nHost: h.example.test\nContent-Type: application/json\nContent-Encoding: gzip\nTransfer-Encoding: chunked\n\n");
    const r = await scan(Buffer.concat([Buffer.from(head), chunks]), ["--as", "request", "-"]);
    expect(r.code).toBe(1);
    expect(rules(r)).toContain("dlp.stripe-secret-key@body.json.key");
  });

  test("a decompression bomb is an error entry with the proxy's rule, verdict block, exit 1", async () => {
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024));
    const head = crlf(`POST /u HTTP/1.1\nHost: h.example.test\nContent-Encoding: gzip\nContent-Length: ${bomb.length}\n\n`);
    const r = await scan(Buffer.concat([Buffer.from(head), bomb]), ["--as", "request", "-"]);
    expect(r.code).toBe(1);
    expect(r.verdict).toBe("block");
    expect(r.errors?.map((e) => e.rule)).toEqual(["dlp.body-decode-bomb"]);
    const corrupt = Buffer.from("not gzip at all");
    const bad = await scan(Buffer.concat([Buffer.from(crlf(`POST /u HTTP/1.1\nHost: h\nContent-Encoding: gzip\n\n`)), corrupt]), ["--as", "request", "-"]);
    expect(bad.errors?.map((e) => e.rule)).toEqual(["dlp.body-decode-error"]);
    expect(bad.code).toBe(1);
  });

  test("what is not an HTTP request is an input error (exit 2)", async () => {
    for (const input of ["just some text\n", "GET / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\nContent-Length: 3\n\nabc", crlf("POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\nzz\n")]) {
      const r = await scan(input, ["--as", "request", "-"]);
      expect({ input, code: r.code, json: r.out }).toEqual({ input, code: 2, json: "" });
      expect(r.err).toContain("sluice scan: -:");
    }
  });
});

describe("sluice scan --as response", () => {
  test("a secret echoed back in a response body (curl -i output, HTTP/2, 100 Continue first) is found", async () => {
    const body = JSON.stringify({ echo: { headers: { authorization: `Bearer ${TOKEN}` } } });
    const raw = `HTTP/1.1 100 Continue\n\nHTTP/2 200\ncontent-type: application/json\ncontent-length: ${body.length}\n\n${body}`;
    const r = await scan(raw, ["--as", "response", "-"]);
    expect(r.code).toBe(1);
    expect(rules(r)).toContain("dlp.github-token@body.json.echo.headers.authorization");
  });

  test("a brotli-encoded response and a secret in a response header are found; a clean response exits 0", async () => {
    const br = brotliCompressSync(`token: ${STRIPE}\n`);
    const head = crlf(`HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Encoding: br\nX-Debug-Key: ${AWS_ID}\nContent-Length: ${br.length}\n\n`);
    const r = await scan(Buffer.concat([Buffer.from(head), br]), ["--as", "response", "-"]);
    expect(rules(r)).toEqual(expect.arrayContaining(["dlp.stripe-secret-key@body.text", "dlp.aws-access-key-id@header.x-debug-key"]));
    expect(r.code).toBe(1);
    const clean = await scan(crlf('HTTP/1.1 200 OK\nContent-Type: application/json\n\n{"ok":true,"id":"123e4567-e89b-12d3-a456-426614174000"}'), ["--as", "response", "-"]);
    expect({ code: clean.code, verdict: clean.verdict }).toEqual({ code: 0, verdict: "allow" });
  });

  test("a request given as a response is an input error", async () => {
    expect((await scan(crlf("GET / HTTP/1.1\nHost: h\n\n"), ["--as", "response", "-"])).code).toBe(2);
  });
});

describe("sluice scan --as mcp", () => {
  const call = (id: number, args: unknown) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "search", arguments: args } });

  test("tool call arguments are scanned at mcp.<method>.arguments.<path>", async () => {
    const r = await scan(JSON.stringify(call(1, { query: "weather", options: { auth: TOKEN } })), ["--as", "mcp", "-"]);
    expect(r.code).toBe(1);
    expect(rules(r)).toEqual(["dlp.github-token@mcp.tools/call.arguments.options.auth"]);
  });

  test("a batch and NDJSON: each message indexed; results and tool descriptions under the method that asked", async () => {
    const list = { jsonrpc: "2.0", id: 7, method: "tools/list" };
    const result = { jsonrpc: "2.0", id: 7, result: { tools: [{ name: "t", description: `Always send ${STRIPE} along` }] } };
    const batch = await scan(JSON.stringify([call(1, { q: "x" }), list, result]), ["--as", "mcp", "-"]);
    // The description is also short enough to be joined with its sibling `name`, as the proxy joins values.
    expect(rules(batch)[0]).toBe("dlp.stripe-secret-key@mcp[2].tools/list.result.tools[0].description");
    expect(new Set(batch.findings.map((f) => f.rule))).toEqual(new Set(["dlp.stripe-secret-key"]));
    expect(batch.code).toBe(1);
    const ndjson = [call(1, { q: "fine" }), call(2, { q: AWS_ID })].map((m) => JSON.stringify(m)).join("\n");
    const r = await scan(`${ndjson}\n`, ["--as", "mcp", "-"]);
    expect(rules(r)).toEqual(["dlp.aws-access-key-id@mcp[1].tools/call.arguments.q"]);
  });

  test("clean messages exit 0", async () => {
    const r = await scan(JSON.stringify(call(1, { query: "weather in Paris", id: "123e4567-e89b-12d3-a456-426614174000" })), ["--as", "mcp", "-"]);
    expect({ code: r.code, verdict: r.verdict, findings: r.findings }).toEqual({ code: 0, verdict: "allow", findings: [] });
  });

  test("invalid JSON and JSON that is not JSON-RPC are input errors, and the error quotes nothing", async () => {
    const broken = await scan(`{"jsonrpc":"2.0","method":"tools/call","params":{"a":${TOKEN}}}`, ["--as", "mcp", "-"]);
    expect(broken.code).toBe(2);
    expect(broken.err).toContain("invalid JSON");
    expect((await scan("", ["--as", "mcp", "-"])).code).toBe(2);
    expect((await scan("[1, 2]", ["--as", "mcp", "-"])).code).toBe(2);
    const line = await scan(`${JSON.stringify(call(1, {}))}\nnot json\n`, ["--as", "mcp", "-"]);
    expect(line.code).toBe(2);
    expect(line.err).toContain("line 2");
  });
});

describe("sluice scan --config", () => {
  test("a custom rule with a warn action is listed with its action, and exits 0 (verdict warn)", async () => {
    const config = writeConfig(`  custom_rules:\n    - id: dlp.custom.acme-key\n      pattern: 'acme_(?P<secret>[a-z0-9]{24})'\n      keywords: [acme_]\n  actions: { dlp.custom.acme-key: warn }`);
    const r = await scan(`key=${ACME}`, ["--config", config, "-"]);
    expect(r.findings).toEqual([{ rule: "dlp.custom.acme-key", location: "text", preview: expect.any(String), via: [], action: "warn" }]);
    expect({ code: r.code, verdict: r.verdict }).toEqual({ code: 0, verdict: "warn" });
    // The same config still blocks a built-in finding: the verdict is the strictest action.
    const both = await scan(`key=${ACME} ${TOKEN}`, ["--config", config, "-"]);
    expect({ code: both.code, verdict: both.verdict }).toEqual({ code: 1, verdict: "block" });
    // Without the config the custom rule does not exist.
    expect((await scan(`key=${ACME}`)).findings).toEqual([]);
  });

  test("a known secret from the environment is found raw and base64-encoded; SLUICE_CONFIG works like --config", async () => {
    const config = writeConfig("  known_secrets: { env: [SLT_SCAN_SECRET] }");
    const env = { SLT_SCAN_SECRET: KNOWN };
    const raw = await scan(`password is ${KNOWN}`, ["--config", config, "-"], env);
    expect(rules(raw)).toEqual(["dlp.known-secret@text"]);
    expect(raw.code).toBe(1);
    const viaEnv = await scan(crlf(`POST /x HTTP/1.1\nHost: h\nContent-Type: application/json\n\n{"blob":"${Buffer.from(KNOWN).toString("base64")}"}`), ["--as", "request", "-"], { ...env, SLUICE_CONFIG: config });
    expect(rules(viaEnv)).toEqual(["dlp.known-secret@body.json.blob"]);
    // A config that names a variable that is not set is invalid: exit 2, naming the variable.
    const unset = await scan("x", ["--config", config, "-"]);
    expect(unset.code).toBe(2);
    expect(unset.err).toContain("SLT_SCAN_SECRET");
  });

  test("redact counts as stopping the input (exit 1); disabled rules are not run; dlp.enabled: false and bad configs exit 2", async () => {
    const redact = await scan(TOKEN, ["--config", writeConfig(`  actions: { "dlp.github-*": redact }`), "-"]);
    expect({ code: redact.code, verdict: redact.verdict, action: redact.findings[0]?.action }).toEqual({ code: 1, verdict: "redact", action: "redact" });
    const disabled = await scan(TOKEN, ["--config", writeConfig("  disable: [dlp.github-token]"), "-"]);
    expect({ code: disabled.code, findings: disabled.findings }).toEqual({ code: 0, findings: [] });
    const off = await scan(TOKEN, ["--config", writeConfig("  enabled: false"), "-"]);
    expect(off.code).toBe(2);
    expect(off.err).toContain("dlp.enabled: false");
    const invalid = await scan(TOKEN, ["--config", writeConfig("  actions: { dlp.no-such-rule: warn }"), "-"]);
    expect(invalid.code).toBe(2);
    expect(invalid.err).toContain("dlp.actions");
    expect((await scan(TOKEN, ["--config", join(tempDir(), "missing.yaml"), "-"])).code).toBe(2);
  });
});
