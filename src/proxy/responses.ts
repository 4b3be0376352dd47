/**
 * Responses sluice writes itself: blocks (ARCHITECTURE.md contract: 403, x-sluice-verdict,
 * x-sluice-rule, JSON body) and errors (400, 408, 431, 502, 504 ...). Detail strings name
 * hosts, addresses and rules, never header values or bodies, so they cannot echo a secret.
 */
import type { ReasonCode } from "../core/reasons.ts";

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  421: "Misdirected Request",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? "Error";
}

export interface SluiceResponse {
  status: number;
  rule: string;
  reason: ReasonCode;
  detail: string;
  /** True for policy blocks; false for errors (bad request, upstream failure). */
  block: boolean;
  close: boolean;
  /** The decision's receipt id (audit/receipt-id.ts): a header and a body field. */
  receipt?: string;
}

export function renderSluiceResponse(r: SluiceResponse): Buffer {
  const body = JSON.stringify({
    error: r.block ? "blocked by sluice" : statusText(r.status).toLowerCase(),
    rule: r.rule,
    reason: r.reason,
    detail: r.detail,
    receipt: r.receipt,
  });
  let head = `HTTP/1.1 ${r.status} ${statusText(r.status)}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n`;
  if (r.block) head += "x-sluice-verdict: block\r\n";
  head += `x-sluice-rule: ${r.rule}\r\nx-sluice-reason: ${r.reason}\r\n`;
  if (r.receipt !== undefined) head += `x-sluice-receipt: ${r.receipt}\r\n`;
  if (r.status === 407) head += 'proxy-authenticate: Basic realm="sluice"\r\n';
  const bytes = Buffer.from(body, "utf8");
  head += `content-length: ${bytes.length}\r\nconnection: ${r.close ? "close" : "keep-alive"}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), bytes]);
}

/**
 * Status for a block: 407 asks the client for (other) proxy credentials; 503 says sluice itself
 * cannot serve now (its decision log cannot be written), worth retrying later; all else is 403.
 */
export function blockStatus(code: ReasonCode): number {
  if (code === "audit_unavailable") return 503;
  return code === "agent_auth_failed" || code === "agent_auth_required" ? 407 : 403;
}
