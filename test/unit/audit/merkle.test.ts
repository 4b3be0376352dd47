import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { auditPath, createMerkleFrontier, EMPTY_ROOT, leafHash, merkleRootOf, nodeHash, rootFromAuditPath, sha256 } from "../../../src/audit/merkle.ts";

// RFC 6962 reference vectors (certificate-transparency merkle_tree_test): leaf inputs and the
// tree head of the first n of them, n = 1..8.
const LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map((h) => Buffer.from(h, "hex"));
const ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

describe("RFC 6962 Merkle tree", () => {
  test("the empty tree's root is SHA-256 of nothing", () => {
    expect(EMPTY_ROOT.toString("hex")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(createMerkleFrontier().root().equals(EMPTY_ROOT)).toBe(true);
  });

  test("the frontier and the recursive definition give the reference roots", () => {
    const f = createMerkleFrontier();
    for (let n = 1; n <= LEAVES.length; n++) {
      f.append(LEAVES[n - 1]!);
      expect([n, f.root().toString("hex")]).toEqual([n, ROOTS[n - 1]!]);
      expect(merkleRootOf(LEAVES.slice(0, n)).toString("hex")).toBe(ROOTS[n - 1]!);
    }
  });

  test("the frontier agrees with the definition for every size up to 300, and resumes from its own state", () => {
    const leaves = Array.from({ length: 300 }, (_, i) => sha256(String(i)));
    const f = createMerkleFrontier();
    for (let n = 1; n <= leaves.length; n++) {
      f.append(leaves[n - 1]!);
      expect(f.frontier().length).toBe(n.toString(2).replaceAll("0", "").length);
      if (n % 7 === 0 || (n & (n - 1)) === 0) expect(f.root().equals(merkleRootOf(leaves.slice(0, n)))).toBe(true);
    }
    const resumed = createMerkleFrontier({ size: 150, frontier: (() => {
      const g = createMerkleFrontier();
      for (const l of leaves.slice(0, 150)) g.append(l);
      return g.frontier();
    })() });
    for (const l of leaves.slice(150)) resumed.append(l);
    expect(resumed.root().equals(f.root())).toBe(true);
  });

  test("a frontier that does not fit its size is refused", () => {
    expect(() => createMerkleFrontier({ size: 3, frontier: [sha256("a")] })).toThrow(/set bit/);
    expect(() => createMerkleFrontier({ size: 1, frontier: [Buffer.alloc(31)] })).toThrow(/32-byte/);
  });
});

/** A tree built node by node from the RFC's definition, to read audit paths off by brute force. */
interface Node {
  hash: Buffer;
  lo: number;
  hi: number;
  left?: Node;
  right?: Node;
}
function buildTree(leaves: readonly Buffer[], lo = 0, hi = leaves.length): Node {
  if (hi - lo === 1) return { hash: leafHash(leaves[lo]!), lo, hi };
  let k = 1;
  while (k * 2 < hi - lo) k *= 2;
  const left = buildTree(leaves, lo, lo + k);
  const right = buildTree(leaves, lo + k, hi);
  return { hash: nodeHash(left.hash, right.hash), lo, hi, left, right };
}
/** The siblings on the way from the root down to leaf m, returned leaf level first. */
function bruteForcePath(root: Node, m: number): Buffer[] {
  const siblings: Buffer[] = [];
  for (let n = root; n.left && n.right; ) {
    if (m < n.left.hi) {
      siblings.push(n.right.hash);
      n = n.left;
    } else {
      siblings.push(n.left.hash);
      n = n.right;
    }
  }
  return siblings.reverse();
}

describe("RFC 6962 inclusion proofs", () => {
  const leaves = Array.from({ length: 70 }, (_, i) => sha256(`leaf ${i}`));
  const hex = (bs: Buffer[]) => bs.map((b) => b.toString("hex"));

  test("the audit path of every leaf of every tree size up to 70 is the brute-force one, and folds to the root", () => {
    for (let n = 1; n <= leaves.length; n++) {
      const tree = buildTree(leaves.slice(0, n));
      expect(tree.hash.equals(merkleRootOf(leaves.slice(0, n)))).toBe(true);
      for (let m = 0; m < n; m++) {
        const path = auditPath(m, leaves.slice(0, n));
        expect([n, m, hex(path)]).toEqual([n, m, hex(bruteForcePath(tree, m))]);
        expect([n, m, rootFromAuditPath(m, n, leafHash(leaves[m]!), path)?.toString("hex")]).toEqual([n, m, tree.hash.toString("hex")]);
      }
    }
  });

  test("RFC 6962 reference: the path of leaf 0 in a tree of 8 has 3 hashes, of leaf 5 in a tree of 6 has 2 (6962 test vectors' shape)", () => {
    expect(auditPath(0, LEAVES).length).toBe(3);
    expect(auditPath(5, LEAVES.slice(0, 6)).length).toBe(2);
    expect(auditPath(0, LEAVES.slice(0, 1))).toEqual([]);
    // The single-leaf tree: the root is the leaf hash, reached with an empty path.
    expect(rootFromAuditPath(0, 1, leafHash(LEAVES[0]!), [])?.toString("hex")).toBe(ROOTS[0]!);
  });

  test("a path does not prove the wrong leaf, index, length, or a changed sibling", () => {
    const n = 13;
    const ls = leaves.slice(0, n);
    const root = merkleRootOf(ls).toString("hex");
    for (let m = 0; m < n; m++) {
      const path = auditPath(m, ls);
      const leaf = leafHash(ls[m]!);
      const rootOf = (i: number, size: number, l: Buffer, p: Buffer[]) => rootFromAuditPath(i, size, l, p)?.toString("hex") ?? null;
      expect(rootOf(m, n, leafHash(ls[(m + 1) % n]!), path)).not.toBe(root);
      if (m + 1 < n) expect(rootOf(m + 1, n, leaf, path)).not.toBe(root);
      // (The size is not bound by the path alone for a leaf in a full left subtree: the signed
      // tree head binds it. Here: a path of the wrong length for the size is refused.)
      expect(rootOf(m, n, leaf, path.slice(0, -1))).not.toBe(root);
      expect(rootOf(m, n, leaf, [...path, path[0]!])).toBeNull();
      const changed = path.map((p, i) => (i === 0 ? sha256(p) : p));
      expect(rootOf(m, n, leaf, changed)).not.toBe(root);
    }
    expect(rootFromAuditPath(n, n, leafHash(ls[0]!), [])).toBeNull();
    expect(() => auditPath(n, ls)).toThrow(RangeError);
  });
});

describe("leaf and node hashes", () => {
  test("are RFC 6962's SHA-256(0x00 || data) and SHA-256(0x01 || left || right), whatever was hashed before", () => {

    for (let i = 0; i < 500; i++) {
      const a: Buffer = randomBytes(32);
      const b: Buffer = randomBytes(i % 7 === 0 ? 20 : 32);
      const leaf = leafHash(a);
      const node = nodeHash(leaf, b);
      expect(leaf.equals(sha256(Buffer.concat([Buffer.from([0x00]), a])))).toBe(true);
      expect(node.equals(sha256(Buffer.concat([Buffer.from([0x01]), leaf, b])))).toBe(true);
      // The result is the caller's, not a view of a buffer the next hash reuses.
      const again = Buffer.from(leaf);
      leafHash(b);
      expect(leaf.equals(again)).toBe(true);
    }
  });
});
