import { describe, expect, test } from "bun:test";
import { secretFileModeProblem, type Reader } from "../../../src/core/secret-file.ts";

const ROOT = 0;
const USER = 1000;
const GROUP = 65532;
/** sluice as a non-root user in GROUP (a pod under fsGroup 65532), and as root. */
const inGroup: Reader = { uid: 65532, gids: [GROUP] };
const asRoot: Reader = { uid: 0, gids: [0, GROUP] };

const check = (mode: number, uid: number, gid: number, reader: Reader) => secretFileModeProblem({ mode: 0o100000 | mode, uid, gid }, "key.pem", reader);

describe("secretFileModeProblem", () => {
  test.each([
    [0o600, USER, USER],
    [0o400, USER, USER],
    [0o600, ROOT, ROOT],
  ])("mode %o owned by uid %d is fine for anyone", (mode, uid, gid) => {
    expect(check(mode, uid, gid, inGroup)).toBeNull();
    expect(check(mode, uid, gid, asRoot)).toBeNull();
  });

  test("kubelet's Secret volume under fsGroup (root:fsGroup, 0440 or 0640) is fine for a non-root sluice in that group", () => {
    expect(check(0o440, ROOT, GROUP, inGroup)).toBeNull();
    expect(check(0o640, ROOT, GROUP, inGroup)).toBeNull();
  });

  test("group read is refused for a group sluice is not in, for a root sluice, and unless root owns the file", () => {
    expect(check(0o640, ROOT, 100, inGroup)).toContain("readable by group or others");
    expect(check(0o440, ROOT, GROUP, asRoot)).toContain("chmod 600");
    expect(check(0o640, USER, GROUP, inGroup)).toContain("chmod 600");
  });

  test.each([
    [0o660, ROOT], // group write
    [0o650, ROOT], // group execute
    [0o604, ROOT], // others, whoever owns it
    [0o644, ROOT],
    [0o606, USER],
    [0o777, ROOT],
  ])("mode %o owned by uid %d is refused, naming the file and the fix", (mode, uid) => {
    const problem = check(mode, uid, GROUP, inGroup);
    expect(problem).toContain("key.pem");
    expect(problem).toContain(`mode ${mode.toString(8)}`);
    expect(problem).toContain("chmod 600");
  });
});
