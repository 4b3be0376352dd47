/**
 * judgeHeldBody: the verdict on a whole held request, decompression limits, and redaction that
 * is carried out only when it can be verified.
 */
import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { compilePolicy } from "../../../src/config/compile.ts";
import { builtinRules } from "../../../src/config/load.ts";
import { parseConfigText } from "../../../src/config/parse.ts";
import { judgeHeldBody } from "../../../src/proxy/request-scan.ts";
import { httpRequest } from "../../helpers/actions.ts";
import { sampleSecret } from "../../helpers/dlp-samples.ts";

const BUILTIN = await builtinRules();
const dlpOf = (yaml: string) =>
  compilePolicy(parseConfigText(`version: 1\ndlp:\n${yaml}\n`, "t.yaml"), { agentTokenDigests: new Map(), digest: "t", systemNameservers: [{ hostname: "127.0.0.1", port: 53 }], builtinRules: BUILTIN }).dlp!;
const GITHUB = sampleSecret("dlp.github-token");
const json = (headers: [string, string][] = []) => httpRequest({ headers: [["Content-Type", "application/json"], ...headers] });

describe("judgeHeldBody", () => {
  const redact = dlpOf(`  actions: { "dlp.github-*": redact }`);

  test("a clean body passes as it was", () => {
    const body = Buffer.from(JSON.stringify({ q: "hello" }));
    const out = judgeHeldBody(redact, json(), body);
    expect(out).toEqual({ ok: true, verdict: null, body });
  });

  test("redact: the token is cut out of the bytes, and the result scanned again", () => {
    const body = Buffer.from(JSON.stringify({ cfg: `token=${GITHUB}` }));
    const out = judgeHeldBody(redact, json(), body);
    if (!out.ok) throw new Error("expected ok");
    expect(out.verdict?.decision.verdict).toBe("redact");
    expect(Buffer.from(out.body).toString()).toBe(JSON.stringify({ cfg: "token=[REDACTED:dlp.github-token]" }));
  });

  test("redact in a compressed body, or of a secret written differently in the bytes, blocks", () => {
    const gz = gzipSync(JSON.stringify({ cfg: GITHUB }));
    const compressed = judgeHeldBody(redact, json([["Content-Encoding", "gzip"]]), gz);
    expect(compressed.ok && compressed.verdict?.decision.verdict).toBe("block");
    expect(compressed.ok && compressed.verdict?.decision.reasons[0]!.detail).toContain("compressed");
    // JSON-escaped in the bytes (\u0067 for g): found in the parsed value, absent from the raw text.
    const escaped = Buffer.from(`{"cfg":"\\u0067${GITHUB.slice(1)}"}`);
    const out = judgeHeldBody(redact, json(), escaped);
    expect(out.ok && out.verdict?.decision.verdict).toBe("block");
  });

  test("a decompression bomb and an unknown coding are refused with their own rules", () => {
    const limits = dlpOf("  body: { max_decompressed: 64KiB, max_ratio: 10 }");
    const bomb = judgeHeldBody(limits, json([["Content-Encoding", "gzip"]]), gzipSync(Buffer.alloc(1024 * 1024)));
    expect(bomb).toMatchObject({ ok: false, rule: "dlp.body-decode-bomb", code: "body_undecodable" });
    const unknown = judgeHeldBody(limits, json([["Content-Encoding", "compress"]]), Buffer.from("x"));
    expect(unknown).toMatchObject({ ok: false, rule: "dlp.body-unsupported-encoding" });
  });
});
