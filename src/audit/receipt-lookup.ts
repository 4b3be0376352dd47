/**
 * `GET /v1/receipts/:id` behind the admin API: finds the record that carries receipt id `id` in
 * the running log and returns it with its inclusion proof (receipt.ts), in a worker thread of its
 * own (receipt-worker.ts). A record too fresh for the last signed tree head (or not even on
 * disk yet: records are written in batches) gets one: the recorder is asked for a tree head now
 * (concurrent requests share it) and the lookup is run once more, so a receipt is there as soon
 * as the decision is, not at the next checkpoint. Lookups run one at a time.
 */
import type { Receipt } from "./receipt.ts";
import { auditWorkerUrl } from "./worker-url.ts";

export type ReceiptAnswer = { readonly ok: true; readonly receipt: Receipt } | { readonly ok: false; readonly code: "not_found" | "unsigned" | "broken"; readonly error: string };

/** A lookup that does not answer within this long is abandoned (its worker ended). */
const LOOKUP_MS = 30_000;

function lookupOnce(dir: string, id: string): Promise<ReceiptAnswer> {
  const worker = new Worker(auditWorkerUrl("receipt-worker.ts"));
  return new Promise<ReceiptAnswer>((resolve) => {
    const timer = setTimeout(() => resolve({ ok: false, code: "broken", error: "the receipt lookup did not finish in time" }), LOOKUP_MS);
    worker.onmessage = (e: MessageEvent<ReceiptAnswer>) => {
      clearTimeout(timer);
      resolve(e.data);
    };
    worker.onerror = (e) => {
      clearTimeout(timer);
      resolve({ ok: false, code: "broken", error: `the receipt lookup failed: ${e.message}` });
    };
    worker.postMessage({ dir, id });
  }).finally(() => worker.terminate());
}

export function createReceiptLookup(opts: { dir: string; checkpoint: (trigger: string) => Promise<void> }): (id: string) => Promise<ReceiptAnswer> {
  let signing: Promise<void> | null = null;
  const lookup = async (id: string): Promise<ReceiptAnswer> => {
    const first = await lookupOnce(opts.dir, id);
    // Not found may be not written yet: the tree head writes what is queued before it.
    if (first.ok || first.code === "broken") return first;
    signing ??= opts.checkpoint("receipt").finally(() => {
      signing = null;
    });
    await signing;
    return lookupOnce(opts.dir, id);
  };
  // One lookup at a time: each reads the whole log into memory, and parallel ones on a large log
  // would take the process's memory (the route is behind the admin token, but still).
  let queue: Promise<unknown> = Promise.resolve();
  return (id) => {
    const run = queue.then(() => lookup(id));
    queue = run.catch(() => {});
    return run;
  };
}
