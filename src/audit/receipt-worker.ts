/**
 * One receipt, looked up off the proxy's thread (`GET /v1/receipts/:id`, receipt-lookup.ts):
 * reading the log and recomputing the tree is linear in its size, and must not stall traffic or
 * the recorder's thread. Started for one request and ended after it.
 */
import { readLogRecords } from "./read-log.ts";
import { buildReceipt, ReceiptError, seqOfReceipt } from "./receipt.ts";
import type { ReceiptAnswer } from "./receipt-lookup.ts";
import { UnreadableLogError } from "./verify.ts";

declare const self: Worker;

self.onmessage = (e: MessageEvent<{ dir: string; id: string }>) => {
  const { dir, id } = e.data;
  let answer: ReceiptAnswer;
  try {
    const lines = readLogRecords(dir);
    answer = { ok: true, receipt: buildReceipt(lines, seqOfReceipt(lines, id)) };
  } catch (err) {
    if (err instanceof ReceiptError) answer = { ok: false, code: err.code, error: err.message };
    else if (err instanceof UnreadableLogError) answer = { ok: false, code: "broken", error: err.message };
    else answer = { ok: false, code: "broken", error: `the receipt could not be built: ${err instanceof Error ? err.message : String(err)}` };
  }
  postMessage(answer);
};
