/**
 * `sluice mcp proxy` when its log cannot be written, through dist/sluice: run under a file-size
 * limit (`ulimit -f`, SIGXFSZ ignored: a write past it fails with EFBIG, as on a full disk), the
 * SDK client's calls pass while the log takes records; then, with audit.on_failure: block (the
 * default), each new call is refused with JSON-RPC -32001 `audit.unavailable` and never reaches
 * the server.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { refusal } from "../helpers/mcp.ts";
import { BIN, ROOT, tempDir } from "../helpers/sluice.ts";

const T = 120_000;
const dir = tempDir("sluice-mcp-full-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("sluice mcp proxy with a log it cannot write", () => {
  test(
    "calls pass until the log is full, then each new call is refused with audit.unavailable and not sent on",
    async () => {
      const config = join(dir, "sluice.yaml");
      writeFileSync(config, `version: 1\naudit: { dir: ./log, file: "off", fsync: always }\n`);
      const log = join(dir, "calls.jsonl");
      const transport = new StdioClientTransport({
        command: "bash",
        // 120 KiB per file: a few hundred records, then EFBIG.
        args: ["-c", `trap '' XFSZ; ulimit -f 120; exec "$0" "$@"`, BIN, "mcp", "proxy", "--config", config, "--pass-env", "MCP_FIXTURE_LOG", "--", process.execPath, join(ROOT, "test/fixtures/mcp/server.ts")],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, SLUICE_HOME: join(dir, "home"), MCP_FIXTURE_LOG: log },
        stderr: "pipe",
        cwd: ROOT,
      });
      const stderr: string[] = [];
      transport.stderr?.on("data", (d: Buffer) => stderr.push(d.toString()));
      const client = new Client({ name: "sluice-test-client", version: "1.0.0" });
      await client.connect(transport);
      try {
        let passed = 0;
        let refused: Awaited<ReturnType<typeof refusal>> | null = null;
        for (let i = 0; i < 3000 && refused === null; i++) {
          try {
            await client.callTool({ name: "echo", arguments: { text: `call ${i}` } });
            passed++;
          } catch {
            refused = await refusal(client.callTool({ name: "echo", arguments: { text: `refused ${i}` } }));
          }
        }
        expect(passed).toBeGreaterThan(50);
        expect(refused).toMatchObject({ code: -32001, sluice: { rule: "audit.unavailable", reason: "audit_unavailable" } });
        const served = existsSync(log) ? readFileSync(log, "utf8") : "";
        expect(served).not.toContain("refused ");
        expect(stderr.join("")).toContain("cannot write decision records");
      } finally {
        await client.close().catch(() => {});
      }
    },
    T,
  );
});
