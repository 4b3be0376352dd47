/**
 * `sluice scan [--as request|response|text|mcp] [--config FILE] [FILE|-]`: the proxy's DLP engine
 * offline, e.g. as a pre-commit hook or in CI, or to check what sluice would do with a request.
 * Prints JSON findings (rule, location, preview, decoders, action; never the value). Exit 0 when
 * the verdict lets the input through, 1 when it blocks, 2 on a usage or input error
 * (ARCHITECTURE.md contracts). No network, no state: only the input and the config are read.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import * as zlib from "node:zlib";
import { loadConfig, type Loaded } from "../config/load.ts";
import { ConfigError } from "../core/errors.ts";
import type { Fragment } from "../core/types.ts";
import { decideFindings } from "../inspect/content.ts";
import { bodyFragments, joinedFragments } from "../inspect/fragments.ts";
import type { DlpSettings, InjectionSettings, Policy } from "../policy/policy.ts";
import { headerValue, isEncoded } from "../proxy/request-scan.ts";
import { judgeHeldResponse } from "../proxy/response-scan.ts";
import type { DlpAction, DlpHit } from "../scan/dlp.ts";
import { decodeContentEncoding } from "../scan/decode/content-encoding.ts";
import { configPath } from "./paths.ts";
import { parseHttpRequest, parseHttpResponse, parseMcp, type HttpMessage } from "./scan-input.ts";
import { EXIT, UsageError } from "./usage.ts";

export const HELP = `Usage: sluice scan [--as text|request|response|mcp] [--config FILE] [FILE|-]

Scans a file (or standard input, the default) offline with the DLP engine of the proxy: the
built-in rules through their decoders (percent, base64, base32, hex, entities, escapes, Unicode
tricks), the config's custom rules and known secrets, split secrets rebuilt from sibling values.

  --as text       the input is one text (the default); location "text"
  --as request    a raw HTTP/1.1 request (request line, headers, blank line, body; LF-only lines
                  are fine): the URL, every header and the body by its Content-Type, chunked
                  and gzip/deflate/br undone, exactly as the proxy scans a request it holds
  --as response   a raw HTTP response (e.g. from curl -i): headers and body, the same way, and
                  the body for prompt injection as the proxy judges responses (inj.* findings:
                  action block, redact when injection.action is strip, warn under the threshold)
  --as mcp        MCP JSON-RPC: one message, a batch (array) or one per line (NDJSON); params
                  at mcp.<method>.<path> (mcp.tools/call.arguments.query), results and errors
                  at mcp[.<method>].result.<path>; mcp[<i>] when there are several
  --config FILE   use the dlp section of this config: custom rules, known secrets (read from
                  the environment and files it names), per-rule actions, disabled rules.
                  Default: SLUICE_CONFIG, else the embedded default policy (every rule blocks)

Output (JSON, never a value; previews show only the ends of a secret):
  {"findings": [{"rule", "location", "preview", "via", "action"}, ...],
   "verdict": "allow" | "warn" | "redact" | "block",
   "errors": [{"rule", "error"}]}   (only when a body could not be decoded)
A body the proxy could not decode within dlp.body limits (a decompression bomb, corrupt or
unsupported Content-Encoding) is blocked by the proxy, so it is an entry in "errors" (rule
dlp.body-decode-bomb, dlp.body-decode-error, dlp.body-unsupported-encoding) and the verdict is
block. Framing that was repaired (a Content-Length that does not match) is noted on stderr.

Exit status: 0 verdict allow or warn (warn-only findings are listed, nothing would be stopped);
1 verdict block or redact (offline there is nothing to forward a redacted copy to, so a finding
that would be redacted counts as one that stops the input); 2 usage or input error (unreadable
file, input over 64 MiB, not an HTTP message, invalid JSON for --as mcp, invalid config, or
dlp.enabled: false in the config).`;

/** Inputs larger than this are refused rather than scanned partially. */
const MAX_INPUT_BYTES = 64 * 1024 * 1024;

const MODES = ["text", "request", "response", "mcp"] as const;
type Mode = (typeof MODES)[number];

interface ScanError {
  readonly rule: string;
  readonly error: string;
}

interface Result {
  readonly hits: DlpHit[];
  readonly errors: ScanError[];
  /** A redaction could not be carried out by the proxy (the body is compressed): it blocks. */
  readonly redactBlocks: boolean;
}

type Io = (s: string) => void;

export async function scanCommand(args: string[], out: Io, err: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { as: { type: "string", default: "text" }, config: { type: "string", short: "c" } },
    strict: true,
    allowPositionals: true,
  });
  const mode = values.as as Mode;
  if (!MODES.includes(mode)) throw new UsageError(`--as must be one of ${MODES.join(", ")} (got ${values.as})`);
  if (positionals.length > 1) throw new UsageError("scan takes one FILE (or - for standard input)");

  const policy = await loadPolicy(configPath(values.config), err);
  if (policy === null) return EXIT.usage;
  const dlp = policy.dlp;

  const source = positionals[0] ?? "-";
  let input: Buffer;
  try {
    input = source === "-" ? Buffer.from(await Bun.stdin.arrayBuffer()) : await readFile(source);
  } catch (e) {
    err(`sluice scan: cannot read ${source}: ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`);
    return EXIT.usage;
  }
  if (input.length > MAX_INPUT_BYTES) {
    err(`sluice scan: ${source} is larger than ${MAX_INPUT_BYTES} bytes\n`);
    return EXIT.usage;
  }

  const result = scanInput(mode, input, dlp, policy.injection, err);
  if ("error" in result) {
    err(`sluice scan: ${source}: ${result.error}\n`);
    return EXIT.usage;
  }
  const verdict = verdictOf(result);
  const findings = result.hits.map((h) => ({ rule: h.finding.rule, location: h.finding.location, preview: h.finding.preview, via: h.finding.via, action: h.action }));
  const report = result.errors.length > 0 ? { findings, verdict, errors: result.errors } : { findings, verdict };
  out(`${JSON.stringify(report, null, 2)}\n`);
  return verdict === "block" || verdict === "redact" ? EXIT.failure : EXIT.ok;
}

/** The config's policy with DLP on; null (after saying why) when the config is invalid or DLP is off. */
async function loadPolicy(path: string | null, err: Io): Promise<(Policy & { readonly dlp: DlpSettings }) | null> {
  let loaded: Loaded;
  try {
    loaded = await loadConfig(path);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(`sluice scan: invalid config ${path ?? "(embedded default)"}:\n${e.issues.map((i) => `  ${i.path || "(root)"}: ${i.message}\n`).join("")}`);
    return null;
  }
  const policy = loaded.policy;
  if (policy.dlp === null) {
    err(`sluice scan: ${path ?? "the config"} has dlp.enabled: false; there is nothing to scan with\n`);
    return null;
  }
  return policy as Policy & { readonly dlp: DlpSettings };
}

function scanInput(mode: Mode, input: Buffer, dlp: DlpSettings, inj: InjectionSettings | null, err: Io): Result | { error: string } {
  switch (mode) {
    case "text":
      return { hits: dlp.engine.scan([{ location: "text", text: input.toString("utf8") }]), errors: [], redactBlocks: false };
    case "mcp": {
      const parsed = parseMcp(input.toString("utf8"));
      if ("error" in parsed) return parsed;
      return { hits: dlp.engine.scan(parsed.fragments), errors: [], redactBlocks: false };
    }
    case "request":
    case "response": {
      const parsed = mode === "request" ? parseHttpRequest(input) : parseHttpResponse(input);
      if ("error" in parsed) return parsed;
      for (const note of parsed.notes) err(`sluice scan: note: ${note}\n`);
      return scanHttp(mode, parsed, dlp, inj);
    }
  }
}

/**
 * As the proxy judges a held body (proxy/request-scan.ts judgeHeldBody): the head's fragments,
 * then the body with its Content-Encoding undone within dlp.body limits and parsed by type.
 */
function scanHttp(mode: "request" | "response", message: HttpMessage, dlp: DlpSettings, inj: InjectionSettings | null): Result {
  const hits = dlp.engine.scan(message.headFragments);
  const errors: ScanError[] = [];
  const encoding = headerValue(message.headers, "content-encoding");
  let plain: Uint8Array | null = message.body;
  if (message.body.length > 0 && isEncoded(encoding)) {
    const inflated = decodeContentEncoding(message.body, encoding, dlp.inflate, zlib);
    if (inflated.ok) plain = inflated.bytes;
    else {
      errors.push({ rule: `dlp.body-${inflated.code.replace("_", "-")}`, error: `${mode} body: ${inflated.detail}` });
      plain = null;
    }
  }
  if (plain !== null && plain.length > 0) {
    const parsed = bodyFragments(headerValue(message.headers, "content-type"), plain);
    hits.push(...dlp.engine.scan([...parsed.fragments, ...joinedFragments(parsed.fragments)]));
  }
  if (message.extra.length > 0) hits.push(...dlp.engine.scan([{ location: "body.extra", text: message.extra } satisfies Fragment]));
  // A response is also what the agent reads: prompt injection, as the proxy judges it.
  if (mode === "response" && inj !== null && plain !== null && plain.length > 0) {
    const j = judgeHeldResponse(inj, false, headerValue(message.headers, "content-type"), undefined, plain);
    const action: DlpAction = j.kind === "block" ? "block" : j.stripped ? "redact" : "warn";
    for (const finding of j.decision?.findings ?? []) hits.push({ finding, action, literal: null });
  }
  return { hits, errors, redactBlocks: plain !== message.body };
}

/** The proxy's verdict: block over redact over warn (inspect/content.ts decideFindings). */
function verdictOf(result: Result): "allow" | "warn" | "redact" | "block" {
  if (result.errors.length > 0) return "block";
  const verdict = decideFindings(result.hits)?.decision.verdict ?? "allow";
  return verdict === "redact" && result.redactBlocks ? "block" : verdict;
}
