/**
 * Default credential placeholders: `sluice-cred-<name>-<random>`, made once per process and kept
 * across reloads, so a reload never invalidates what the agents were given. A restart makes new
 * ones (set `placeholder` in the entry to keep one across restarts).
 */
import { randomBytes } from "node:crypto";

const made = new Map<string, string>();

export function placeholderFor(name: string): string {
  let p = made.get(name);
  if (p === undefined) {
    p = `sluice-cred-${name}-${randomBytes(12).toString("hex")}`;
    made.set(name, p);
  }
  return p;
}
