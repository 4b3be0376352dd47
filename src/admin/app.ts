/**
 * The admin HTTP API. Health, metrics and the interception CA's certificate are open (probes,
 * scrapers and trust stores carry no secrets); everything else under `/v1/` changes or reveals
 * state and needs the admin bearer token (RFC 6750).
 *
 * The app knows nothing of the proxy or the resolver: main.ts passes in what it may read and
 * do, as plain functions.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ReceiptAnswer } from "../audit/receipt-lookup.ts";
import { RECEIPT_ID } from "../audit/receipt-id.ts";
import type { RecentDecisions } from "./recent.ts";
import { METRICS_CONTENT_TYPE, type Metrics } from "./metrics.ts";

export interface KillSwitch {
  get(): boolean;
  /** `by` says who flipped it, for the audit log. */
  set(on: boolean, by: string): void;
}

export interface AdminAppDeps {
  readonly token: string;
  readonly metrics: Pick<Metrics, "render">;
  readonly recent: Pick<RecentDecisions, "list">;
  /** Reloads the configuration; the caller counts it in metrics, whichever way it was triggered. */
  readonly reload: () => Promise<{ ok: boolean; errors: string[] }>;
  readonly killswitch: KillSwitch;
  readonly health: () => Record<string, unknown>;
  /** The TLS interception CA's certificate (PEM): public, served without the token. */
  readonly caPem?: () => string;
  /** Credential entries as the agents need them (placeholders, never values); behind the token. */
  readonly credentials?: () => readonly CredentialListing[];
  /** MCP tool pins (the store of sluice mcp proxy, mcp.baselines_file): read and approved; behind the token. */
  readonly mcpPins?: {
    list(server?: string): readonly Record<string, unknown>[];
    diff(server: string): string;
    approve(server: string, tool?: string, digest?: string): string[];
  };
  /** The receipt of a decision by its id (audit/receipt-lookup.ts); behind the token. */
  readonly receipt?: (id: string) => Promise<ReceiptAnswer>;
  /** Told about unexpected errors; the client only ever sees a generic 500. */
  readonly onError?: (err: unknown) => void;
}

export interface CredentialListing {
  readonly name: string;
  readonly hosts: readonly string[];
  readonly header: string | null;
  readonly placeholder: string;
  readonly allow_plaintext: boolean;
}

export const DEFAULT_DECISIONS_LIMIT = 100;
export const MAX_DECISIONS_LIMIT = 1000;
/** The `by` passed to killswitch.set for changes made through this API. */
export const KILLSWITCH_ACTOR = "admin-api";
// The largest legitimate body is `{"enabled": false}`; anything far bigger is not a client of ours.
const MAX_BODY_BYTES = 4096;

export function createAdminApp(deps: AdminAppDeps): Hono {
  if (deps.token.length === 0) throw new Error("admin API token must not be empty");
  // Hashing both sides gives equal-length inputs for timingSafeEqual, so neither the content nor
  // the length of the real token leaks through response timing.
  const expectedDigest = sha256(deps.token);

  const app = new Hono();

  // `status` from health() overrides "ok"; "failing" (sluice refuses all traffic) is a 503 so
  // that a load balancer or readiness probe takes this instance out.
  app.get("/healthz", (c) => {
    const body = { status: "ok", ...deps.health() };
    return c.json(body, body.status === "failing" ? 503 : 200);
  });

  app.get("/metrics", (c) => c.body(deps.metrics.render(), 200, { "content-type": METRICS_CONTENT_TYPE }));

  // A CA certificate is public (agents need it to trust the interception): no token.
  app.get("/v1/ca.pem", (c) => (deps.caPem ? c.body(deps.caPem(), 200, { "content-type": "application/x-pem-file" }) : c.json({ error: "no CA" }, 404)));

  app.use("/v1/*", async (c, next) => {
    if (!isAuthorized(c.req.header("authorization"), expectedDigest)) {
      // Never echo what was presented: it may be a real secret sent to the wrong place.
      return c.json({ error: "missing or invalid bearer token" }, 401, { "www-authenticate": "Bearer" });
    }
    await next();
    // Decisions and switch state are live data; no intermediary should keep a copy.
    c.header("cache-control", "no-store");
  });

  app.get("/v1/decisions", (c) => {
    const limit = parseLimit(c.req.query("limit"));
    if (typeof limit === "string") return c.json({ error: limit }, 400);
    return c.json({ decisions: deps.recent.list(limit) });
  });

  app.get("/v1/receipts/:id", async (c) => {
    const id = c.req.param("id");
    if (!RECEIPT_ID.test(id)) return c.json({ error: "not a receipt id (as in a response's x-sluice-receipt)" }, 400);
    if (!deps.receipt) return c.json({ error: "this sluice keeps no flight recorder" }, 404);
    const answer = await deps.receipt(id);
    if (answer.ok) return c.json(answer.receipt);
    // Not found; not signed yet even after asking for a tree head (retry); or a log that is not intact.
    if (answer.code === "not_found") return c.json({ error: answer.error }, 404);
    if (answer.code === "unsigned") return c.json({ error: answer.error }, 503, { "retry-after": "1" });
    return c.json({ error: answer.error }, 500);
  });

  app.get("/v1/credentials", (c) => c.json({ credentials: deps.credentials?.() ?? [] }));

  app.post("/v1/reload", async (c) => {
    const result = await deps.reload();
    if (result.ok) return c.json({ ok: true });
    return c.json({ ok: false, errors: result.errors }, 422);
  });

  app.get("/v1/killswitch", (c) => c.json({ enabled: deps.killswitch.get() }));

  app.get("/v1/mcp/baselines", (c) => {
    if (!deps.mcpPins) return c.json({ error: "not found" }, 404);
    const server = c.req.query("server");
    return c.json({ baselines: deps.mcpPins.list(server === undefined || server === "" ? undefined : server) });
  });

  app.get("/v1/mcp/diff", (c) => {
    const server = c.req.query("server");
    if (!deps.mcpPins) return c.json({ error: "not found" }, 404);
    if (server === undefined || server === "") return c.json({ error: "give ?server=NAME" }, 400);
    return c.json({ server, diff: deps.mcpPins.diff(server) });
  });

  app.post(
    "/v1/mcp/approve",
    bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => c.json({ error: "request body too large" }, 413) }),
    async (c) => {
      if (!deps.mcpPins) return c.json({ error: "not found" }, 404);
      let body: unknown;
      try {
        body = JSON.parse(await c.req.text());
      } catch {
        return c.json({ error: "the body must be JSON: {\"server\": NAME, \"tool\"?: TOOL}" }, 400);
      }
      const b = body as { server?: unknown; tool?: unknown; digest?: unknown } | null;
      if (b === null || typeof b !== "object" || typeof b.server !== "string" || b.server === "" || (b.tool !== undefined && typeof b.tool !== "string") || (b.digest !== undefined && typeof b.digest !== "string")) {
        return c.json({ error: "the body must be {\"server\": NAME, \"tool\"?: TOOL, \"digest\"?: HEX}" }, 400);
      }
      const approved = deps.mcpPins.approve(b.server, b.tool as string | undefined, b.digest as string | undefined);
      if (approved.length === 0) return c.json({ error: "nothing waits for approval there", approved }, 404);
      return c.json({ approved });
    },
  );

  app.post(
    "/v1/killswitch",
    bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => c.json({ error: "request body too large" }, 413) }),
    async (c) => {
      const enabled = parseKillSwitchBody(await c.req.text());
      if (typeof enabled === "string") return c.json({ error: enabled }, 400);
      deps.killswitch.set(enabled, KILLSWITCH_ACTOR);
      return c.json({ enabled: deps.killswitch.get() });
    },
  );

  app.notFound((c) => c.json({ error: "not found" }, 404));

  app.onError((err, c) => {
    if (err instanceof HTTPException && err.status < 500) return c.json({ error: err.message || "bad request" }, err.status);
    deps.onError?.(err);
    return internalError(c);
  });

  return app;
}

function internalError(c: Context): Response {
  return c.json({ error: "internal error" }, 500);
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

function isAuthorized(header: string | undefined, expectedDigest: Buffer): boolean {
  if (header === undefined) return false;
  // RFC 7235 section 2.1: the auth-scheme is case-insensitive; RFC 6750 section 2.1: one space, then the token.
  const match = /^bearer +(\S+) *$/i.exec(header);
  const presented = match?.[1];
  if (presented === undefined) return false;
  return timingSafeEqual(sha256(presented), expectedDigest);
}

/** The limit, or an error message for the client. */
function parseLimit(raw: string | undefined): number | string {
  if (raw === undefined) return DEFAULT_DECISIONS_LIMIT;
  const error = `limit must be an integer from 1 to ${MAX_DECISIONS_LIMIT}`;
  if (!/^[0-9]{1,7}$/.test(raw)) return error;
  const limit = Number(raw);
  if (limit < 1 || limit > MAX_DECISIONS_LIMIT) return error;
  return limit;
}

/** The requested state, or an error message for the client. */
function parseKillSwitchBody(text: string): boolean | string {
  const expected = 'body must be JSON {"enabled": true} or {"enabled": false}';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `invalid JSON; ${expected}`;
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return expected;
  const keys = Object.keys(body);
  // Unknown keys are refused, as in the config: a typo must not read as "no change requested".
  if (keys.length !== 1 || keys[0] !== "enabled") return expected;
  if (!("enabled" in body) || typeof body.enabled !== "boolean") return expected;
  return body.enabled;
}
