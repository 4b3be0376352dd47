import { describe, expect, test } from "bun:test";
import { secretFileModeProblem } from "../../../src/core/secret-file.ts";

const ROOT = 0;
const USER = 1000;

describe("secretFileModeProblem", () => {
  test.each([
    [0o600, USER],
    [0o400, USER],
    [0o600, ROOT],
    // kubelet's Secret volume under a pod's fsGroup: root:fsGroup, group read only.
    [0o440, ROOT],
    [0o640, ROOT],
  ])("mode %o owned by uid %d is fine", (mode, uid) => {
    expect(secretFileModeProblem({ mode: 0o100000 | mode, uid }, "key.pem")).toBeNull();
  });

  test.each([
    [0o640, USER], // group read is root's privilege only
    [0o440, USER],
    [0o660, ROOT], // group write
    [0o650, ROOT], // group execute
    [0o604, ROOT], // others, whoever owns it
    [0o644, ROOT],
    [0o606, USER],
    [0o777, ROOT],
  ])("mode %o owned by uid %d is refused, naming the file and the fix", (mode, uid) => {
    const problem = secretFileModeProblem({ mode: 0o100000 | mode, uid }, "key.pem");
    expect(problem).toContain("key.pem");
    expect(problem).toContain(`mode ${mode.toString(8)}`);
    expect(problem).toContain("chmod 600");
  });
});
