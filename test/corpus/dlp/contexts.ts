/**
 * Request-like texts a value is carried in. `raw` says the value is already safe to place as
 * written (an encoded blob); otherwise each context escapes it the way a client would.
 */
import type { Rng } from "./rng.ts";
import { HEX } from "./rng.ts";

export const CONTEXTS = ["json-api", "form-post", "env-dump", "git-diff", "log-line", "curl", "yaml-config"] as const;
export type Context = (typeof CONTEXTS)[number];

const HOSTS = ["api.acme-internal.dev", "hooks.example.org", "collector.telemetry.test", "paste.sample.net", "upload.storage.test"];
const FIELDS = ["payload", "data", "note", "content", "blob", "attachment", "message", "value"];

function indent(text: string, pad: string): string {
  return text.split("\n").map((l) => pad + l).join("\n");
}

export function wrap(context: Context, value: string, raw: boolean, rng: Rng): string {
  const host = rng.pick(HOSTS);
  const field = rng.pick(FIELDS);
  const reqId = rng.chars(HEX, 16);
  switch (context) {
    case "json-api": {
      const v = raw ? `"${value}"` : JSON.stringify(value);
      return `POST /v1/events HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nX-Request-Id: ${reqId}\r\n\r\n{"event":"sync","id":"${reqId}","${field}":${v},"ts":${1760000000 + rng.int(9999999)}}`;
    }
    case "form-post":
      return `POST /submit HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nuser=agent&${field}=${encodeURIComponent(value)}&lang=en`;
    case "env-dump":
      return `HOME=/home/agent\nPATH=/usr/local/bin:/usr/bin:/bin\nSHELL=/bin/bash\nLANG=C.UTF-8\n${value.includes("\n") ? `${field.toUpperCase()}="${value}"` : value}\nPWD=/work/app\nTERM=xterm-256color`;
    case "git-diff":
      return `diff --git a/config/app.env b/config/app.env\nindex ${rng.chars(HEX, 7)}..${rng.chars(HEX, 7)} 100644\n--- a/config/app.env\n+++ b/config/app.env\n@@ -3,4 +3,5 @@\n LOG_LEVEL=info\n PORT=8080\n${value.split("\n").map((l) => `+${l}`).join("\n")}\n REGION=eu-west-1`;
    case "log-line":
      return `2026-11-27T10:${String(rng.int(60)).padStart(2, "0")}:${String(rng.int(60)).padStart(2, "0")}.123Z INFO [worker-${rng.int(8)}] req=${reqId} outbound ${field}=${value.replace(/\n/g, "\\n")} status=200`;
    case "curl": {
      const body = JSON.stringify({ [field]: value });
      return `curl -sS -X POST https://${host}/ingest -H 'Content-Type: application/json' -d '${raw ? `{"${field}":"${value}"}` : body.replace(/'/g, "'\\''")}'`;
    }
    case "yaml-config":
      return `service:\n  name: sync-agent\n  replicas: 2\n  ${field}: |\n${indent(value, "    ")}\n  region: eu-west-1`;
  }
}
