/**
 * RFC 6962 §2.1 Merkle tree hashing over the flight recorder's record hashes, kept as a compact
 * frontier so appending is O(log n) in time and memory whatever the size of the log. Pure.
 *
 *   leaf = SHA-256(0x00 || data)          data: the record's 32-byte hash (raw, not hex)
 *   node = SHA-256(0x01 || left || right)
 *   MTH({}) = SHA-256("")                 the empty tree
 *   MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
 *
 * The 0x00 / 0x01 prefixes (§2.1) keep a leaf from being passed off as an inner node.
 */
import { hash } from "node:crypto";

const LEAF = Buffer.from([0x00]);
const NODE = Buffer.from([0x01]);

export const sha256 = (data: Buffer | string): Buffer => hash("sha256", data, "buffer") as unknown as Buffer;
export const EMPTY_ROOT: Buffer = sha256(Buffer.alloc(0));

// Leaves and nodes of 32-byte hashes (every one a log makes) are put together in reused
// buffers: a Buffer.concat per hash was a third of the cost of appending a record.
const LEAF_INPUT = Buffer.alloc(33, 0x00);
const NODE_INPUT = Buffer.alloc(65, 0x01);

export const leafHash = (data: Buffer): Buffer => {
  if (data.length !== 32) return sha256(Buffer.concat([LEAF, data]));
  data.copy(LEAF_INPUT, 1);
  return sha256(LEAF_INPUT);
};
export const nodeHash = (left: Buffer, right: Buffer): Buffer => {
  if (left.length !== 32 || right.length !== 32) return sha256(Buffer.concat([NODE, left, right]));
  left.copy(NODE_INPUT, 1);
  right.copy(NODE_INPUT, 33);
  return sha256(NODE_INPUT);
};

export interface MerkleFrontier {
  /** Number of leaves appended. */
  readonly size: number;
  /** Appends one leaf: `data` is the record hash; the leaf hash is computed here. */
  append(data: Buffer): void;
  /** MTH over all leaves so far. */
  root(): Buffer;
  /**
   * The roots of the perfect subtrees the leaves decompose into, largest (leftmost) first: one
   * per set bit of `size`. With `size`, it is all that is needed to go on appending.
   */
  frontier(): Buffer[];
}

/**
 * A frontier, empty or resumed from a tree head's `tree_size` and `frontier`. Throws when the
 * two do not fit together (one hash per set bit of the size).
 */
export function createMerkleFrontier(from?: { size: number; frontier: readonly Buffer[] }): MerkleFrontier {
  let size = from?.size ?? 0;
  const stack: Buffer[] = [...(from?.frontier ?? [])];
  if (!Number.isSafeInteger(size) || size < 0 || popcount(size) !== stack.length || stack.some((h) => h.length !== 32)) {
    throw new RangeError(`a Merkle frontier of size ${size} has one 32-byte hash per set bit of its size (got ${stack.length})`);
  }
  return {
    get size() {
      return size;
    },
    append(data) {
      // Binary carry: each trailing 1 bit of `size` is a perfect subtree of the same height as
      // the node being carried; merge them, as adding 1 to a binary counter does.
      let node = leafHash(data);
      for (let n = size; n % 2 === 1; n = Math.floor(n / 2)) node = nodeHash(stack.pop()!, node);
      stack.push(node);
      size++;
    },
    root() {
      if (stack.length === 0) return EMPTY_ROOT;
      // The RFC's split point k is the largest subtree on the left, so fold from the right.
      let r = stack[stack.length - 1]!;
      for (let i = stack.length - 2; i >= 0; i--) r = nodeHash(stack[i]!, r);
      return r;
    },
    frontier: () => [...stack],
  };
}

function popcount(n: number): number {
  let c = 0;
  for (; n > 0; n = Math.floor(n / 2)) c += n % 2;
  return c;
}

/** MTH over `leaves` straight from the RFC's recursive definition: the reference the frontier is tested against. */
export function merkleRootOf(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leafHash(leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(merkleRootOf(leaves.slice(0, k)), merkleRootOf(leaves.slice(k)));
}

/**
 * RFC 6962 §2.1.1 audit path PATH(m, D[n]) for leaf `m` of `leaves` (record hashes, raw): the
 * sibling subtree roots from the leaf up to the root, bottom first. For n > 1, with k the
 * largest power of two < n:
 *   m < k:  PATH(m, D[0:k]) : MTH(D[k:n])
 *   m >= k: PATH(m - k, D[k:n]) : MTH(D[0:k])
 * Each sibling is hashed once, so a path costs O(n) hashing: fine offline, on request.
 */
export function auditPath(m: number, leaves: readonly Buffer[]): Buffer[] {
  if (!Number.isSafeInteger(m) || m < 0 || m >= leaves.length) throw new RangeError(`leaf ${m} is not in a tree of ${leaves.length}`);
  const path: Buffer[] = [];
  let lo = 0;
  let hi = leaves.length;
  // Walk down from the root, collecting siblings; they come out top first.
  while (hi - lo > 1) {
    let k = 1;
    while (k * 2 < hi - lo) k *= 2;
    if (m - lo < k) {
      path.push(merkleRootOf(leaves.slice(lo + k, hi)));
      hi = lo + k;
    } else {
      path.push(merkleRootOf(leaves.slice(lo, lo + k)));
      lo += k;
    }
  }
  return path.reverse();
}

/**
 * The root an audit path leads to from leaf `index` of a tree of `size`, given the leaf's hash
 * (already 0x00-prefixed: leafHash(data)), or null when the path cannot belong to such a tree
 * (wrong length). RFC 9162 §2.1.3.2, the algorithm verifiers of RFC 6962 logs use. Division
 * instead of bit shifts keeps it right past 2^31 leaves.
 */
export function rootFromAuditPath(index: number, size: number, leaf: Buffer, path: readonly Buffer[]): Buffer | null {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  const half = (x: number) => Math.floor(x / 2);
  for (const p of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      // A right-edge node with no sibling at this level: climb until it is a right child.
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : null;
}
