/**
 * One MCP session relayed message by message, sans-IO: lines from the client and from the
 * server in, lines to send and decision records out (the stdio transport, cli/mcp.ts, moves the
 * bytes). Every message is parsed and judged before it is passed on; nothing unparsed or
 * unjudged goes through:
 *
 * - client requests and notifications: DLP over their params (a secret in tool arguments is
 *   refused with JSON-RPC error -32001 and never reaches the server); a call to a withheld tool
 *   is refused;
 * - server responses: matched to the client's request by id (an unmatched one is dropped), then
 *   prompt injection and DLP over the result or error: a hit answers the client with -32001
 *   instead. A `tools/list` is judged tool by tool: a poisoned tool is withheld from the list and
 *   its calls are refused, the others pass;
 * - server requests and notifications (sampling, elicitation, logging, progress): judged like
 *   results; a refused request is answered to the server with -32001, a notification dropped.
 */
import type { ReasonCode } from "../core/reasons.ts";
import type { Decision, Finding } from "../core/types.ts";
import { argumentsDecision, contentDecision, dlpOver, judgeFromServer, mcpRoot, propertySegments, strictest } from "../inspect/mcp.ts";
import type { ArgRules } from "../scan/arg-rules.ts";
import type { DlpSettings, InjectionSettings } from "../policy/policy.ts";
import { jsonShape } from "../inspect/body-fragments.ts";
import { escapedStrings } from "../inspect/response.ts";
import type { PinDigests, PinStore } from "./baselines.ts";
import { createReceiptIds } from "../audit/receipt-id.ts";

/** JSON-RPC error code for a message sluice refused (ARCHITECTURE.md contracts). */
export const SLUICE_ERROR = -32001;

export interface McpJudges {
  readonly dlp: DlpSettings | null;
  readonly injection: InjectionSettings | null;
  readonly audit: boolean;
  /** Rug-pull pins for this server (baselines.ts); null: tools are not pinned. */
  readonly pins?: { readonly store: PinStore; readonly server: string } | null;
  /** mcp.servers allow_tools / deny_tools for this server: why a tool is refused, or null. */
  readonly toolPolicy?: (tool: string) => string | null;
  /** Injection settings whose engine also runs rules/mcp: for tool definitions and instructions (else `injection`). */
  readonly toolInjection?: InjectionSettings | null;
  /** rules/mcp-args over tools/call arguments (mcp.arguments); null: not judged. */
  readonly args?: { readonly rules: ArgRules; readonly action: "block" | "warn" } | null;
  /** Credential placeholders this server may not be sent (credentials not bound to it in mcp.servers). */
  readonly placeholders?: readonly { readonly credential: string; readonly placeholder: string }[];
  /** Why the decision log cannot be written, while audit.on_failure is block: new client messages are refused. */
  readonly auditFailure?: () => string | null;
}

/** What a record says of one judged message (cli/mcp.ts turns it into an AuditRecord). */
export interface McpVerdict {
  readonly direction: "client" | "server";
  readonly method: string;
  readonly tool?: string;
  readonly verdict: Decision["verdict"];
  readonly rule: string;
  readonly reason: ReasonCode;
  readonly detail?: string;
  readonly wouldBlock?: boolean;
  readonly findings?: readonly Finding[];
  /** A tool (or instructions) that waits for approval: the digests of what was approved and what came, never the text. */
  readonly pin?: PinDigests;
  /** The decision's receipt id (audit/receipt-id.ts), also in the JSON-RPC error sluice answered with. */
  readonly receipt?: string;
}

export interface McpOut {
  readonly toServer: string[];
  readonly toClient: string[];
  readonly records: McpVerdict[];
}

type Json = Record<string, unknown>;
type Id = string | number | null;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const validId = (v: unknown): v is string | number => typeof v === "string" || (typeof v === "number" && Number.isFinite(v));

/** The most requests awaiting an answer either way; more are refused (no side can grow the tables without bound). */
const MAX_PENDING = 4096;
/** Longest id kept (as JSON): ids are table keys. */
const MAX_ID = 256;
/** Deepest nesting of a message: MCP messages are shallow; a deep one is refused before any walk. */
const MAX_DEPTH = 64;
/** JSON-RPC 2.0 §4, §5: a message has these members and no others. */
const MEMBERS = new Set(["jsonrpc", "id", "method", "params", "result", "error"]);

/**
 * Why a message's shape is not one JSON-RPC 2.0 message, or null: unknown members, or a mix of
 * request and response members (a receiver that reads the part sluice did not judge must not get it).
 */
function shapeProblem(m: Json): string | null {
  for (const k of Object.keys(m)) if (!MEMBERS.has(k)) return `an unknown member ${JSON.stringify(k.slice(0, 32))}`;
  const response = "result" in m || "error" in m;
  if ("result" in m && "error" in m) return "both result and error";
  if (response && ("method" in m || "params" in m)) return "response and request members together";
  if ("id" in m && !validId(m.id) && !(response && m.id === null)) return "an id that is not a string or a number";
  if ("id" in m && validId(m.id) && JSON.stringify(m.id).length > MAX_ID) return `an id longer than ${MAX_ID} characters`;
  return null;
}

/** Why requests were answered by sluice: the server did not answer within `ms` (mcp.answer_timeout). */
export function answerTimeout(ms: number): Decision {
  return refusal("mcp.answer-timeout", "timeout", `no answer from the MCP server within ${ms} ms (mcp.answer_timeout)`);
}

export class McpSession {
  /** Client requests awaiting the server's answer: id (as JSON) -> method, tool, whether it asked for a page, when it was sent. */
  readonly #pending = new Map<string, { method: string; tool?: string; paged?: boolean; at: number }>();
  /** Server requests awaiting the client's answer: id (as JSON) -> method. */
  readonly #serverPending = new Map<string, string>();
  /** Tools withheld from the client (a poisoned description, a change since approval): their calls are refused (audit mode: passed, recorded as would-block). */
  readonly #withheld = new Map<string, { decision: Decision; diff?: string; pin?: PinDigests }>();

  /** `now`: a clock in milliseconds, read when a request is sent and when overdue ones are looked for (expire). */
  constructor(
    private readonly judges: () => McpJudges,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** One line from the client. */
  fromClient(line: string): McpOut {
    const out: McpOut = { toServer: [], toClient: [], records: [] };
    let sent: string | null | undefined;
    try {
      sent = this.#relay(line, (m) => this.#clientMessage(m, out));
    } catch (err) {
      // A scanner that throws is a refusal, never a pass (fail closed).
      const d = refusal("mcp.scan-failed", "internal_error", `the message could not be judged: ${err instanceof Error ? err.name : "error"}`);
      return { toServer: [], toClient: [errorLine(null, SLUICE_ERROR, "blocked by sluice", d)], records: [record("client", "(none)", null, d)] };
    }
    if (sent === undefined) {
      const d = refusal("mcp.bad-message", "malformed_request", "a line from the client is not JSON");
      out.toClient.push(errorLine(null, -32700, "parse error: not JSON", d));
      out.records.push(record("client", "(none)", null, d));
    } else if (sent !== null) out.toServer.push(sent);
    return out;
  }

  /** One line from the server. */
  fromServer(line: string): McpOut {
    const out: McpOut = { toServer: [], toClient: [], records: [] };
    let sent: string | null | undefined;
    try {
      // Strings the line writes with escaped letters: judged as obfuscated in the parsed message.
      const escaped = escapedStrings(line);
      sent = this.#relay(line, (m) => this.#serverMessage(m, out, escaped));
    } catch (err) {
      const d = refusal("mcp.scan-failed", "internal_error", `the message could not be judged: ${err instanceof Error ? err.name : "error"}; dropped`);
      return { toServer: [], toClient: [], records: [record("server", "(none)", null, d)] };
    }
    if (sent === undefined) out.records.push(record("server", "(none)", null, refusal("mcp.bad-message", "upstream_error", "a line from the server is not JSON; dropped")));
    else if (sent !== null) out.toClient.push(sent);
    return out;
  }

  /**
   * One line judged message by message: the line to pass on (as received when nothing in it
   * changed), null when nothing passes, undefined when it is not JSON. A batch (JSON-RPC 2.0 §6)
   * has each element judged; what passes goes on as one batch.
   */
  #relay(line: string, judge: (m: unknown) => unknown): string | null | undefined {
    // Too deep to walk safely: refused as not JSON (before any recursion, JSON.parse included).
    if (jsonShape(line).depth > MAX_DEPTH) return undefined;
    const parsed = parse(line);
    if (parsed === null) return undefined;
    // What passes is sent as it was judged, serialised again: a duplicate key, or a number past
    // 2^53, cannot reach the receiver in a form sluice did not read.
    if (!Array.isArray(parsed)) {
      const one = judge(parsed);
      return one === null ? null : JSON.stringify(one);
    }
    const passed = parsed.map(judge).filter((m) => m !== null);
    return passed.length > 0 ? JSON.stringify(passed) : null;
  }

  /** The server is gone (exited, crashed, closed its output): every request it owed an answer is answered with an error. */
  serverGone(why: string): McpOut {
    const out: McpOut = { toServer: [], toClient: [], records: [] };
    const d = refusal("mcp.server-exited", "upstream_error", why);
    for (const [key, { method, tool }] of this.#pending) {
      out.toClient.push(errorLine(JSON.parse(key) as Id, SLUICE_ERROR, `the MCP server ended before answering: ${why}`, d));
      out.records.push(record("server", method, tool ?? null, d));
    }
    this.#pending.clear();
    return out;
  }

  /**
   * The server's answer to these requests will not come (the transport failed, sluice's own
   * forward proxy refused the exchange, or mcp.answer_timeout passed): each still pending is
   * answered with -32001 `why`; on a timeout the server is also told to stop (a cancellation).
   */
  abandon(ids: readonly unknown[], why: Decision): McpOut {
    const out: McpOut = { toServer: [], toClient: [], records: [] };
    for (const id of ids) {
      if (!validId(id)) continue;
      const asked = this.#pending.get(JSON.stringify(id));
      if (asked === undefined) continue;
      this.#pending.delete(JSON.stringify(id));
      const timedOut = why.reasons[0]?.code === "timeout";
      out.toClient.push(errorLine(id, SLUICE_ERROR, timedOut ? "the MCP server did not answer in time" : "blocked by sluice", why));
      out.records.push(record("server", asked.method, asked.tool ?? null, why));
      // The server may still be at work on it: told to stop, as the MCP spec asks of a sender
      // that gives up on a request ("Cancellation"; never an initialize).
      if (timedOut && asked.method !== "initialize") {
        out.toServer.push(JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: id, reason: "no answer in time (sluice mcp.answer_timeout)" } }));
      }
    }
    return out;
  }

  /** Requests sent `ms` or longer ago and still unanswered: each answered with -32001 mcp.answer-timeout (and cancelled). */
  expire(ms: number): McpOut {
    const due = this.now() - ms;
    const overdue = [...this.#pending].filter(([, p]) => p.at <= due).map(([key]) => JSON.parse(key) as unknown);
    return this.abandon(overdue, answerTimeout(ms));
  }

  /** Requests the server still owes an answer. */
  get pending(): number {
    return this.#pending.size;
  }

  /** A client message: what to send on (the message itself), or null after answering or dropping it. */
  #clientMessage(m: unknown, out: McpOut): unknown {
    const j = this.judges();
    if (!isObject(m) || m.jsonrpc !== "2.0" || shapeProblem(m) !== null) {
      const bad = !isObject(m) || m.jsonrpc !== "2.0" ? "not a JSON-RPC 2.0 message" : shapeProblem(m)!;
      const d = refusal("mcp.bad-message", "malformed_request", bad);
      out.toClient.push(errorLine(isObject(m) && validId(m.id) && JSON.stringify(m.id).length <= MAX_ID ? m.id : null, -32600, "invalid request", d));
      out.records.push(record("client", "(none)", null, d));
      return null;
    }
    if (typeof m.method === "string") {
      const method = m.method;
      const isRequest = "id" in m;
      if (isRequest && !validId(m.id)) {
        const d = refusal("mcp.bad-message", "malformed_request", "a request id must be a string or a number");
        out.toClient.push(errorLine(null, -32600, "invalid request", d));
        out.records.push(record("client", method, null, d));
        return null;
      }
      if (method === "tools/call" && !(isObject(m.params) && typeof m.params.name === "string")) {
        // Every tool check keys on the name: a call without a string one is not passed on.
        const d = refusal("mcp.bad-message", "malformed_request", "a tools/call without a string params.name");
        if (isRequest) out.toClient.push(errorLine(m.id as Id, -32602, "invalid params: params.name must be a string", d));
        out.records.push(record("client", method, null, d));
        return null;
      }
      const tool = method === "tools/call" ? ((m.params as Json).name as string) : undefined;
      // Fail closed while nothing can be recorded (audit.on_failure: block), in audit mode too;
      // answers to requests already under way still go through.
      const unwritable = j.auditFailure?.() ?? null;
      if (unwritable !== null) {
        const refused = refusal("audit.unavailable", "audit_unavailable", `the decision log cannot be written (${unwritable}): refusing until it can`);
        if (isRequest) out.toClient.push(errorLine(m.id as Id, SLUICE_ERROR, "blocked by sluice", refused));
        out.records.push(record("client", method, tool ?? null, refused));
        return null;
      }
      let withheld = tool !== undefined ? this.#withheld.get(tool) : undefined;
      // A call before (or without) a tools/list in this session, or in audit mode (which
      // withholds nothing): the pins still say whether the tool waits for approval, or is new to
      // a server already pinned.
      if (withheld === undefined && tool !== undefined && j.pins) {
        const state = j.pins.store.state(j.pins.server, tool);
        const pin = state === "pending" ? j.pins.store.waiting(j.pins.server, tool) : null;
        if (state === "pending") withheld = { decision: refusal("mcp.tool-changed", "injection_detected", `tool ${tool} waits for approval (sluice mcp diff, sluice mcp approve)`), ...(pin !== null ? { pin } : {}) };
        else if (state === "none" && j.pins.store.known(j.pins.server)) withheld = { decision: refusal("mcp.tool-unapproved", "injection_detected", `tool ${tool} was never listed and approved for this server`) };
      }
      const why = withheld?.decision.reasons[0];
      const denied = tool !== undefined ? (j.toolPolicy?.(tool) ?? null) : null;
      // Audit mode passes the call, recorded as would-block with why (a poisoned tool: the rule ids found in its definition).
      let d: Decision | null =
        denied !== null
          ? auditable(refusal("mcp.tool-denied", "deny_listed", denied), j.audit)
          : withheld !== undefined
            ? auditable(refusal(why?.rule.startsWith("mcp.tool-") ? why.rule : "mcp.tool-withheld", why?.code ?? "injection_detected", `tool ${tool} ${j.audit ? "would be" : "was"} withheld from the client: ${why?.detail ?? ""}`), j.audit)
            : null;
      const pin = denied === null ? withheld?.pin : undefined;
      if (d === null || d.verdict !== "block") d = strictest(d, auditable(placeholderIn(m, j), j.audit));
      // The method and id are the client's too: scanned with the params.
      if ((d === null || d.verdict !== "block") && j.dlp) d = strictest(d, contentDecision(dlpOver(mcpRoot(method), m.params, j.dlp, { method, ...("id" in m ? { id: String(m.id) } : {}) }), j.audit));
      // What a tool is asked to run: destructive commands, reverse shells, credential files, ...
      if ((d === null || d.verdict !== "block") && tool !== undefined && j.args && isObject(m.params)) d = strictest(d, argumentsDecision(mcpRoot(method), m.params.arguments, j.args.rules, j.args.action, j.audit));
      if (d !== null && d.verdict === "block") {
        if (isRequest) out.toClient.push(errorLine(m.id as Id, SLUICE_ERROR, "blocked by sluice", d));
        out.records.push(record("client", method, tool ?? null, d, pin));
        return null;
      }
      if (isRequest) {
        const key = JSON.stringify(m.id);
        if (this.#pending.has(key) || this.#pending.size >= MAX_PENDING) {
          const why = this.#pending.has(key) ? `id ${key} is already awaiting an answer` : `over ${MAX_PENDING} requests are awaiting answers`;
          const refused = refusal("mcp.bad-message", "malformed_request", why);
          out.toClient.push(errorLine(m.id as Id, -32600, `invalid request: ${why}`, refused));
          out.records.push(record("client", method, tool ?? null, refused));
          return null;
        }
        const paged = method === "tools/list" && isObject(m.params) && m.params.cursor !== undefined;
        this.#pending.set(key, { method, ...(tool !== undefined ? { tool } : {}), ...(paged ? { paged } : {}), at: this.now() });
      }
      // A cancelled request gets no answer (MCP "Cancellation"): it is no longer awaited.
      if (method === "notifications/cancelled" && isObject(m.params) && validId(m.params.requestId)) this.#pending.delete(JSON.stringify(m.params.requestId));
      // Requests are recorded with their answer; a notification now.
      if (!isRequest) out.records.push(record("client", method, null, d));
      else if (d !== null) out.records.push(record("client", method, tool ?? null, d, pin));
      return m;
    }
    // A response to a server request (sampling, elicitation, roots): what the client hands the server.
    if ("result" in m || "error" in m) {
      const key = JSON.stringify(m.id);
      const method = this.#serverPending.get(key);
      if (method === undefined) {
        out.records.push(record("client", "(response)", null, refusal("mcp.unmatched-response", "malformed_request", `a response with id ${key.slice(0, 64)} answers no request of the server; dropped`)));
        return null;
      }
      this.#serverPending.delete(key);
      const d = strictest(auditable(placeholderIn(m, j), j.audit), j.dlp ? contentDecision(dlpOver(`${mcpRoot(method)}.response`, "result" in m ? m.result : m.error, j.dlp), j.audit) : null);
      if (d !== null && d.verdict === "block") {
        out.toServer.push(errorLine(m.id as Id, SLUICE_ERROR, "blocked by sluice", d));
        out.records.push(record("client", method, null, d));
        return null;
      }
      out.records.push(record("client", method, null, d));
      return m;
    }
    const d = refusal("mcp.bad-message", "malformed_request", "neither a request, a notification nor a response");
    out.toClient.push(errorLine(validId(m.id) ? m.id : null, -32600, "invalid request", d));
    out.records.push(record("client", "(none)", null, d));
    return null;
  }

  /** A server message: what to send on (maybe with tools withheld), or null after answering or dropping it. */
  #serverMessage(m: unknown, out: McpOut, escaped: ReadonlyMap<string, number>): unknown {
    const j = this.judges();
    if (!isObject(m) || m.jsonrpc !== "2.0" || shapeProblem(m) !== null) {
      const bad = !isObject(m) || m.jsonrpc !== "2.0" ? "not a JSON-RPC 2.0 message" : shapeProblem(m)!;
      const d = refusal("mcp.bad-message", "upstream_error", `${bad}; dropped`);
      // A request of the client's that this was to answer is answered with the refusal, not left hanging.
      const id = isObject(m) && validId(m.id) ? m.id : null;
      const asked = id !== null ? this.#pending.get(JSON.stringify(id)) : undefined;
      if (asked !== undefined) {
        this.#pending.delete(JSON.stringify(id));
        out.toClient.push(errorLine(id, SLUICE_ERROR, "blocked by sluice", d));
      }
      out.records.push(record("server", asked?.method ?? "(none)", asked?.tool ?? null, d));
      return null;
    }
    if ("result" in m || "error" in m) {
      const key = JSON.stringify(m.id);
      const asked = this.#pending.get(key);
      if (asked === undefined) {
        out.records.push(record("server", "(response)", null, refusal("mcp.unmatched-response", "upstream_error", `a response with id ${key.slice(0, 64)} answers no request of the client; dropped`)));
        return null;
      }
      this.#pending.delete(key);
      const root = `${mcpRoot(asked.method)}.${"result" in m ? "result" : "error"}`;
      if (asked.method === "tools/list" && "result" in m && isObject(m.result) && Array.isArray(m.result.tools)) {
        return this.#toolList(m, m.result, asked.method, j, out, asked.paged !== true && m.result.nextCursor === undefined, escaped);
      }
      let sent: Json = m;
      if (asked.method === "initialize" && "result" in m && isObject(m.result) && typeof m.result.instructions === "string" && j.pins) {
        // Instructions the server changed since they were approved are not passed on (the rest of
        // initialize is); audit mode passes them and records that it would not have.
        const changed = j.pins.store.checkInstructions(j.pins.server, m.result.instructions);
        if (changed !== null) {
          const d = auditable(refusal("mcp.instructions-changed", "injection_detected", `${changed.detail}; ${j.audit ? "passed (audit mode)" : "withheld from the client"}`), j.audit);
          out.records.push(record("server", asked.method, null, d, changed.digests));
          if (!j.audit) {
            const { instructions: _dropped, ...rest } = m.result;
            sent = { ...m, result: rest };
          }
        }
      }
      // initialize carries the server's instructions: judged as tool definitions are.
      const inj = asked.method === "initialize" ? (j.toolInjection ?? j.injection) : j.injection;
      const d = judgeFromServer(root, "result" in sent ? sent.result : sent.error, j.dlp, inj, j.audit, [], escaped);
      out.records.push(record("server", asked.method, asked.tool ?? null, d));
      if (d !== null && d.verdict === "block") return JSON.parse(errorLine(m.id as Id, SLUICE_ERROR, "blocked by sluice", d));
      return sent;
    }
    if (typeof m.method === "string") {
      const method = m.method;
      const d = judgeFromServer(mcpRoot(method), m.params, j.dlp, j.injection, j.audit, [], escaped);
      const isRequest = "id" in m && validId(m.id);
      if (d !== null && d.verdict === "block") {
        if (isRequest) out.toServer.push(errorLine(m.id as Id, SLUICE_ERROR, "blocked by sluice", d));
        out.records.push(record("server", method, null, d));
        return null;
      }
      if (isRequest && this.#serverPending.size >= MAX_PENDING) {
        const refused = refusal("mcp.bad-message", "upstream_error", `over ${MAX_PENDING} requests of the server are awaiting answers`);
        out.toServer.push(errorLine(m.id as Id, -32600, "invalid request: too many requests awaiting answers", refused));
        out.records.push(record("server", method, null, refused));
        return null;
      }
      if (isRequest) this.#serverPending.set(JSON.stringify(m.id), method);
      if (method === "notifications/cancelled" && isObject(m.params) && validId(m.params.requestId)) this.#serverPending.delete(JSON.stringify(m.params.requestId));
      if (isRequest || d !== null) out.records.push(record("server", method, null, d));
      return m;
    }
    out.records.push(record("server", "(none)", null, refusal("mcp.bad-message", "upstream_error", "neither a request, a notification nor a response; dropped")));
    return null;
  }

  /**
   * A tools/list result judged tool by tool: poisoned tools are withheld (and their calls refused
   * later), and so are tools that changed since their pin or wait for approval. `complete`: an
   * unpaginated list, from which a pinned tool's absence means it was removed. `escaped`: the
   * strings the line wrote with escaped letters (response.ts escapedStrings).
   */
  #toolList(m: Json, result: Json, method: string, j: McpJudges, out: McpOut, complete: boolean, escaped: ReadonlyMap<string, number>): unknown {
    const tools = result.tools as unknown[];
    const kept: unknown[] = [];
    let all: Decision | null = null;
    const clean: Json[] = [];
    // DLP once over the whole list (one scan, not one per tool), its findings given to their tools.
    const secrets = j.dlp ? contentDecision(dlpOver(`${mcpRoot(method)}.result.tools`, tools, j.dlp), j.audit) : null;
    // Each finding belongs to the one tool its location names (a join inside one tool included).
    // One no single tool holds (a secret joined across tools, text past the fragment cap), and
    // not found whole in a tool too, refuses the whole list: it cannot be withheld tool by tool.
    const toolOf = (location: string): number | null => {
      const indices = new Set([...location.matchAll(/\.result\.tools\[(\d+)\]/g)].map((x) => Number(x[1])));
      return indices.size === 1 ? [...indices][0]! : null;
    };
    const found = secrets?.findings ?? [];
    const held = new Set(found.filter((f) => toolOf(f.location) !== null).map((f) => `${f.rule}\u0000${f.preview}`));
    if (secrets !== null && secrets.verdict === "block" && found.some((f) => toolOf(f.location) === null && !held.has(`${f.rule}\u0000${f.preview}`))) {
      out.records.push(record("server", method, null, secrets));
      return JSON.parse(errorLine(m.id as Id, SLUICE_ERROR, "blocked by sluice", secrets));
    }
    const secretsOf = (i: number): Decision | null => {
      const mine = found.filter((f) => toolOf(f.location) === i);
      if (secrets === null || mine.length === 0) return null;
      const rules = new Set(mine.map((f) => f.rule));
      return { ...secrets, reasons: secrets.reasons.filter((r) => rules.has(r.rule)).slice(0, 8), findings: mine };
    };
    for (const [i, tool] of tools.entries()) {
      const name = isObject(tool) && typeof tool.name === "string" ? tool.name : `#${i}`;
      // What this list says of a tool replaces what an earlier one said (a later list may have fixed it).
      this.#withheld.delete(name);
      // A tool the operator does not allow is not offered (its calls are refused too); audit mode offers it, recorded as would-block.
      const denied = j.toolPolicy?.(name) ?? null;
      if (denied !== null) {
        out.records.push(record("server", method, name, auditable(refusal("mcp.tool-denied", "deny_listed", `${denied}; ${j.audit ? "passed (audit mode)" : "withheld from the list"}`), j.audit)));
        if (!j.audit) continue;
      }
      const root = `${mcpRoot(method)}.result.tools[${i}]`;
      const d = strictest(judgeFromServer(root, tool, null, j.toolInjection ?? j.injection, j.audit, propertySegments(root, tool), escaped), secretsOf(i));
      all = strictest(all, d);
      // A poisoned tool is withheld; in audit mode it is passed, and its calls are recorded as would-block.
      if (d !== null && (d.verdict === "block" || d.wouldBlock === true)) this.#withheld.set(name, { decision: d });
      if (d !== null && d.verdict === "block") {
        out.records.push(record("server", method, name, { ...d, reasons: [{ ...d.reasons[0]!, detail: `tool ${name} withheld: ${d.reasons[0]!.detail}` }, ...d.reasons.slice(1)] }));
        continue;
      }
      if (isObject(tool)) clean.push(tool);
    }
    // Pins: what changed since approval, or waits for it, is withheld too.
    const check = j.pins ? j.pins.store.checkTools(j.pins.server, clean, complete) : null;
    for (const tool of clean) {
      const name = tool.name as string;
      const pinned = check?.withheld.get(name);
      if (pinned !== undefined) {
        // Recorded with the digests of what was approved and what came (audit mode: passed, as would-block).
        const d = refusal(pinned.rule, "injection_detected", pinned.detail);
        out.records.push(record("server", method, name, auditable(d, j.audit), pinned.digests));
        if (!j.audit) {
          this.#withheld.set(name, { decision: d, ...(pinned.diff !== undefined ? { diff: pinned.diff } : {}), ...(pinned.digests !== undefined ? { pin: pinned.digests } : {}) });
          continue;
        }
      }
      kept.push(tool);
    }
    if (check !== null && check.pinned.length > 0) out.records.push(record("server", method, null, { verdict: "allow", reasons: [{ rule: "mcp.tools-pinned", code: "allowed", detail: `pinned on first contact: ${check.pinned.join(", ")}` }] }));
    if (check !== null && check.removed.length > 0) out.records.push(record("server", method, null, { verdict: "warn", reasons: [{ rule: "mcp.tools-removed", code: "allowed", detail: `pinned tools no longer listed: ${check.removed.join(", ")}` }] }));
    // The rest of the result (pagination cursor, _meta) is judged too.
    const { tools: _tools, ...rest } = result;
    const restD = judgeFromServer(`${mcpRoot(method)}.result`, rest, j.dlp, j.injection, j.audit, [], escaped);
    if (restD !== null && restD.verdict === "block") {
      out.records.push(record("server", method, null, restD));
      return JSON.parse(errorLine(m.id as Id, SLUICE_ERROR, "blocked by sluice", restD));
    }
    out.records.push(record("server", method, null, strictest(all !== null && all.verdict === "block" ? null : all, restD)));
    return kept.length === tools.length ? m : { ...m, result: { ...result, tools: kept } };
  }
}

function parse(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return null;
  }
}

function refusal(rule: string, reason: ReasonCode, detail: string): Decision {
  return { verdict: "block", reasons: [{ rule, code: reason, detail }] };
}

/** A refusal as audit mode enacts it: passed, recorded as would-block. */
function auditable<D extends Decision | null>(d: D, audit: boolean): D {
  return audit && d !== null ? { ...d, verdict: "allow", wouldBlock: true } : d;
}

/** Every credential placeholder starts so: one cheap test before looking for any entry's. */
const PLACEHOLDER_MARK = "sluice-cred-";

/**
 * A credential placeholder in a client's message to a server it is not bound to (mcp.servers
 * credentials): refused, as the forward proxy refuses one sent to a host that is not its
 * credential's (cred.wrong-host). The server has no use for it but to carry it somewhere;
 * the record tells the operator an agent tried. Read as sluice serialises the message (escapes
 * undone), in any case; an encoded placeholder is not looked for.
 */
function placeholderIn(m: Json, j: McpJudges): Decision | null {
  if (!j.placeholders || j.placeholders.length === 0) return null;
  const text = JSON.stringify(m).toLowerCase();
  if (!text.includes(PLACEHOLDER_MARK)) return null;
  const hit = j.placeholders.find((p) => text.includes(p.placeholder.toLowerCase()));
  return hit === undefined ? null : refusal("cred.wrong-server", "credential_misuse", `the placeholder of credential ${hit.credential} was sent to an MCP server it is not bound to (mcp.servers credentials)`);
}

/** A JSON-RPC error response; sluice's own refusals carry `data.sluice = { rule, reason }` (ARCHITECTURE.md), and a diff when a tool changed. */
/** One receipt id per decision: the error line sluice answers with and the record made of it say the same. */
const nextReceipt = createReceiptIds();
const receipts = new WeakMap<Decision, string>();
function receiptOf(d: Decision): string {
  let id = receipts.get(d);
  if (id === undefined) receipts.set(d, (id = nextReceipt()));
  return id;
}

function errorLine(id: Id, code: number, message: string, d: Decision, diff?: string): string {
  const r = d.reasons[0];
  return JSON.stringify({ jsonrpc: "2.0", id, error: { code, message, data: { sluice: { rule: r?.rule ?? "none", reason: r?.code ?? "allowed", detail: r?.detail, receipt: receiptOf(d), ...(diff !== undefined ? { diff } : {}) } } } });
}

/** Names as records show them: cut short; a name DLP found something in is not shown at all. */
function shown(name: string, d: Decision | null, where: RegExp): string {
  if (d?.findings?.some((f) => where.test(f.location))) return "(redacted)";
  return name.length > 64 ? `${name.slice(0, 64)}...` : name;
}

function record(direction: "client" | "server", method: string, tool: string | null, d: Decision | null, pin?: PinDigests): McpVerdict {
  const r = d?.reasons[0];
  return {
    direction,
    method: shown(method, d, /^mcp\.method$/),
    ...(tool !== null ? { tool: shown(tool, d, /\.name$/) } : {}),
    verdict: d?.verdict ?? "allow",
    rule: r?.rule ?? "none",
    reason: r?.code ?? "allowed",
    ...(r && d && (d.verdict !== "allow" || d.wouldBlock) ? { detail: r.detail } : {}),
    ...(d?.wouldBlock ? { wouldBlock: true } : {}),
    ...(d?.findings && d.findings.length > 0 ? { findings: d.findings } : {}),
    ...(pin !== undefined ? { pin } : {}),
    receipt: d ? receiptOf(d) : nextReceipt(),
  };
}
