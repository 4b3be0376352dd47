/**
 * Receipt ids: every mediated decision (an HTTP exchange, a CONNECT, a DNS query, an MCP message)
 * gets one, in its record (`receipt`) and, when sluice answers the agent itself, in the
 * response (`x-sluice-receipt`). With it, `GET /v1/receipts/:id` or `sluice audit receipt ID`
 * returns the record with its inclusion proof (README "Flight recorder", Receipts).
 *
 * An id is 12 random hex digits drawn once per process, a dash, and a counter in base 36: unique
 * across restarts without coordination, cheap per request, and it says nothing about the traffic.
 */
import { randomBytes } from "node:crypto";

export const RECEIPT_ID = /^[0-9a-f]{12}-[0-9a-z]{1,13}$/;

export function createReceiptIds(): () => string {
  const prefix = `${randomBytes(6).toString("hex")}-`;
  let next = 0;
  return () => prefix + (next++).toString(36);
}
