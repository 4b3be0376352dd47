/**
 * Rug-pull pinning: each server's tools as first seen, in a bun:sqlite store (SLUICE_HOME/
 * mcp-baselines.sqlite by default), keyed by the server's identity (its command line or --name).
 * A tool's pin is the SHA-256 of the RFC 8785 canonical JSON of its name, title, description,
 * inputSchema, outputSchema and annotations, so key order and spacing never look like drift. A
 * tool that changed, or is new when first contact requires approval, is withheld until approved
 * (`sluice mcp approve`); its definition waits in the store beside the pin, for `sluice mcp diff`.
 */
import { Database } from "bun:sqlite";
import { chmodSync, existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { canonicalJson } from "../audit/canonical-json.ts";

/** The parts of a tool definition that are pinned (MCP spec, "Tool"). */
const PINNED = ["name", "title", "description", "inputSchema", "outputSchema", "annotations"] as const;

/** What a record says of a definition that waits: digests and the names of what changed, never the text (the diff is the operator's). */
export interface PinDigests {
  /** SHA-256 (hex) of the approved definition; null when none was. */
  readonly approved: string | null;
  /** SHA-256 (hex) of the definition the server gives now (what `sluice mcp approve --digest` takes). */
  readonly listed: string;
  /** The fields that differ from the approved definition (description, inputSchema, ...). */
  readonly changed?: readonly string[];
}

/** Why a tool (or the server's instructions) is withheld until approved. */
export interface PinRefusal {
  readonly rule: "mcp.tool-changed" | "mcp.tool-unapproved";
  readonly detail: string;
  readonly diff?: string;
  /** Absent when there is no one definition to name (two tools of one name). */
  readonly digests?: PinDigests;
}

export interface ToolCheck {
  /** Tools to withhold now, with why: changed since the pin, or new and not yet approved. */
  readonly withheld: ReadonlyMap<string, PinRefusal>;
  /** Tools pinned by this list (first contact under trust). */
  readonly pinned: readonly string[];
  /** Pinned tools the list no longer has (only said of a complete, unpaginated list). */
  readonly removed: readonly string[];
}

export interface PinStore {
  checkTools(server: string, tools: readonly Record<string, unknown>[], complete: boolean): ToolCheck;
  /** Server instructions against their pin: null when they match (or were pinned now), else why. */
  checkInstructions(server: string, instructions: string): PinRefusal | null;
  /**
   * Approves what waits for `server` (one tool, or every waiting tool and the instructions); the
   * names approved. `digest`: approve only if what waits is still that definition (the one `diff`
   * showed), so a server cannot swap it between review and approval.
   */
  approve(server: string, tool?: string, digest?: string): string[];
  /** Where a tool stands: pinned (approved), waiting for approval, or never seen. */
  state(server: string, tool: string): "pinned" | "pending" | "none";
  /** The digests of a tool that waits for approval (what was approved, what waits); null when none waits. */
  waiting(server: string, tool: string): PinDigests | null;
  /** Whether any tool of `server` is pinned (first contact is over). */
  known(server: string): boolean;
  /** Servers, or one server's tools, with their pins and what waits. */
  list(server?: string): { server: string; tool: string; digest: string; pending: boolean; approved_at: string }[];
  /** A readable diff of what waits for `server` against its pins. */
  diff(server: string): string;
  close(): void;
}

export function toolDigest(tool: Record<string, unknown>): { digest: string; canonical: string } {
  const pinned: Record<string, unknown> = {};
  for (const k of PINNED) if (tool[k] !== undefined) pinned[k] = tool[k];
  const canonical = canonicalJson(pinned);
  return { digest: createHash("sha256").update(canonical).digest("hex"), canonical };
}

const INSTRUCTIONS = "\u0000instructions";

export function openPinStore(file: string, firstContact: "trust" | "require-approval", now: () => Date = () => new Date()): PinStore {
  const db = new Database(file, { create: true });
  db.exec("PRAGMA journal_mode = WAL");
  // What is pinned decides what an agent may call: readable and writable by the owner only.
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  db.exec(`CREATE TABLE IF NOT EXISTS pins (
    server TEXT NOT NULL, tool TEXT NOT NULL, digest TEXT NOT NULL, definition TEXT NOT NULL, approved_at TEXT NOT NULL,
    pending_digest TEXT, pending_definition TEXT,
    PRIMARY KEY (server, tool))`);
  const get = db.query<{ digest: string; definition: string; pending_digest: string | null; pending_definition: string | null }, [string, string]>("SELECT digest, definition, pending_digest, pending_definition FROM pins WHERE server = ? AND tool = ?");
  const pin = db.query("INSERT INTO pins (server, tool, digest, definition, approved_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (server, tool) DO UPDATE SET digest = excluded.digest, definition = excluded.definition, approved_at = excluded.approved_at, pending_digest = NULL, pending_definition = NULL");
  const wait = db.query("INSERT INTO pins (server, tool, digest, definition, approved_at, pending_digest, pending_definition) VALUES (?, ?, '', '', '', ?, ?) ON CONFLICT (server, tool) DO UPDATE SET pending_digest = excluded.pending_digest, pending_definition = excluded.pending_definition");

  /** Whether the server being checked had pins before this list (set by checkTools). */
  let serverKnown = false;
  const allOf = db.query<{ tool: string; digest: string; definition: string; pending_digest: string | null }, [string]>("SELECT tool, digest, definition, pending_digest FROM pins WHERE server = ?");

  /** `known`: the server's pins read at once (a list of 200 tools is one query, not 200). */
  function check(server: string, name: string, digest: string, canonical: string, known?: ReadonlyMap<string, { digest: string; definition: string }>): PinRefusal | "pinned" | null {
    const row = known ? (known.get(name) ?? null) : get.get(server, name);
    if (row !== null && row.digest === digest) return null;
    if (row === null || row.digest === "") {
      // First contact is the server's, not the tool's: a tool new to a server already pinned
      // (or renamed) waits for approval, whatever first_contact says.
      if (firstContact === "trust" && row === null && !serverKnown) {
        pin.run(server, name, digest, canonical, now().toISOString());
        return "pinned";
      }
      wait.run(server, name, digest, canonical);
      return { rule: "mcp.tool-unapproved", detail: `${label(name)} of ${server} is new and not approved (mcp.first_contact: require-approval); approve it with: sluice mcp approve ${JSON.stringify(server)} ${JSON.stringify(name)}`, digests: { approved: null, listed: digest } };
    }
    wait.run(server, name, digest, canonical);
    return {
      rule: "mcp.tool-changed",
      detail: `${label(name)} of ${server} changed since it was approved (a rug pull?); review with sluice mcp diff, approve with sluice mcp approve`,
      diff: diffOf(row.definition, canonical),
      digests: { approved: row.digest, listed: digest, changed: changedFields(row.definition, canonical) },
    };
  }

  return {
    checkTools(server, tools, complete) {
      const withheld = new Map<string, { rule: "mcp.tool-changed" | "mcp.tool-unapproved"; detail: string; diff?: string }>();
      const pinned: string[] = [];
      const seen = new Set<string>();
      const known = new Map(allOf.all(server).map((r) => [r.tool, r]));
      serverKnown = [...known.values()].some((r) => r.digest !== "" && r.tool !== INSTRUCTIONS);
      // Two tools of one name in a list: which one a client calls is anyone's guess; both wait.
      const counts = new Map<string, number>();
      for (const t of tools) counts.set(String(t.name), (counts.get(String(t.name)) ?? 0) + 1);
      db.transaction(() => {
        for (const t of tools) {
          const name = typeof t.name === "string" ? t.name : "";
          if ((counts.get(name) ?? 0) > 1) {
            withheld.set(name, { rule: "mcp.tool-unapproved", detail: `the server lists ${counts.get(name)} tools named ${JSON.stringify(name)}` });
            continue;
          }
          seen.add(name);
          const { digest, canonical } = toolDigest(t);
          const r = check(server, name, digest, canonical, known);
          if (r === "pinned") pinned.push(name);
          else if (r !== null) withheld.set(name, r);
        }
      })();
      const removed = complete ? [...known.values()].filter((r) => r.digest !== "" && r.tool !== INSTRUCTIONS && !seen.has(r.tool)).map((r) => r.tool) : [];
      return { withheld, pinned, removed };
    },
    checkInstructions(server, instructions) {
      serverKnown = allOf.all(server).some((r) => r.digest !== "" && r.tool !== INSTRUCTIONS);
      const canonical = canonicalJson({ instructions });
      const digest = createHash("sha256").update(canonical).digest("hex");
      const r = check(server, INSTRUCTIONS, digest, canonical);
      if (r === null || r === "pinned") return null;
      return { ...r, detail: r.rule === "mcp.tool-changed" ? "the server's instructions changed since they were approved; review with sluice mcp diff" : "the server's instructions are new and not approved" };
    },
    approve(server, tool, digest) {
      const rows = db.query<{ tool: string; pending_digest: string; pending_definition: string }, [string]>("SELECT tool, pending_digest, pending_definition FROM pins WHERE server = ? AND pending_digest IS NOT NULL").all(server);
      const approved: string[] = [];
      db.transaction(() => {
        for (const r of rows) {
          if (tool !== undefined && r.tool !== tool) continue;
          if (digest !== undefined && r.pending_digest !== digest) continue;
          pin.run(server, r.tool, r.pending_digest, r.pending_definition, now().toISOString());
          approved.push(r.tool === INSTRUCTIONS ? "(instructions)" : r.tool);
        }
      })();
      return approved;
    },
    state(server, tool) {
      const row = get.get(server, tool);
      if (row === null) return "none";
      return row.pending_digest !== null ? "pending" : row.digest !== "" ? "pinned" : "none";
    },
    waiting(server, tool) {
      const row = get.get(server, tool);
      if (row === null || row.pending_digest === null) return null;
      if (row.digest === "") return { approved: null, listed: row.pending_digest };
      return { approved: row.digest, listed: row.pending_digest, changed: changedFields(row.definition, row.pending_definition ?? "{}") };
    },
    known(server) {
      return allOf.all(server).some((r) => r.digest !== "" && r.tool !== INSTRUCTIONS);
    },
    list(server) {
      const rows = server === undefined
        ? db.query<{ server: string; tool: string; digest: string; pending_digest: string | null; approved_at: string }, []>("SELECT server, tool, digest, pending_digest, approved_at FROM pins ORDER BY server, tool").all()
        : db.query<{ server: string; tool: string; digest: string; pending_digest: string | null; approved_at: string }, [string]>("SELECT server, tool, digest, pending_digest, approved_at FROM pins WHERE server = ? ORDER BY tool").all(server);
      return rows.map((r) => ({ server: r.server, tool: r.tool === INSTRUCTIONS ? "(instructions)" : r.tool, digest: r.digest, pending: r.pending_digest !== null, approved_at: r.approved_at }));
    },
    diff(server) {
      const rows = db.query<{ tool: string; definition: string; pending_definition: string; pending_digest: string }, [string]>("SELECT tool, definition, pending_definition, pending_digest FROM pins WHERE server = ? AND pending_digest IS NOT NULL ORDER BY tool").all(server);
      return rows.map((r) => `${r.tool === INSTRUCTIONS ? "(instructions)" : `tool ${r.tool}`} (approve with --digest ${r.pending_digest}):\n${r.definition === "" ? "  (new)\n" : ""}${diffOf(r.definition || "{}", r.pending_definition)}`).join("\n");
    },
    close: () => db.close(),
  };
}

const label = (name: string) => (name === INSTRUCTIONS ? "the server's instructions" : `tool ${name}`);

/** The fields of two canonical definitions that differ (their names only). */
function changedFields(before: string, after: string): string[] {
  const a = JSON.parse(before) as Record<string, unknown>;
  const b = JSON.parse(after) as Record<string, unknown>;
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => canonicalJson(a[k] ?? null) !== canonicalJson(b[k] ?? null)).sort();
}

/** Field by field: what was pinned and what came, each cut to 400 characters. */
function diffOf(before: string, after: string): string {
  const a = JSON.parse(before) as Record<string, unknown>;
  const b = JSON.parse(after) as Record<string, unknown>;
  const cut = (v: unknown) => {
    const s = v === undefined ? "(absent)" : canonicalJson(v);
    return s.length > 400 ? `${s.slice(0, 400)}...` : s;
  };
  const lines: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (canonicalJson(a[k] ?? null) === canonicalJson(b[k] ?? null)) continue;
    lines.push(`  ${k}:\n    - ${cut(a[k])}\n    + ${cut(b[k])}`);
  }
  return `${lines.join("\n")}\n`;
}
