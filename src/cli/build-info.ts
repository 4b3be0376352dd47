/** Version and commit, baked in by build.ts (`define`); a dev run says "dev". */
import pkg from "../../package.json" with { type: "json" };

declare const SLUICE_BUILD: { version: string; commit: string } | undefined;

export const BUILD: { version: string; commit: string } =
  typeof SLUICE_BUILD !== "undefined" ? SLUICE_BUILD : { version: pkg.version, commit: "dev" };

export function versionLine(): string {
  return `sluice ${BUILD.version} (commit ${BUILD.commit})`;
}

/** Running as dist/sluice (modules inside the binary), not from source under bun. */
export const COMPILED: boolean = import.meta.path.startsWith("/$bunfs/");

declare const SLUICE_BENCH_AUDIT_OFF: boolean | undefined;

/**
 * True only in bench:audit's reference binary (build.ts `auditOff`), which runs without the
 * flight recorder to show what it costs; false in dist/sluice and from source.
 */
export const BENCH_AUDIT_OFF: boolean = typeof SLUICE_BENCH_AUDIT_OFF === "boolean" && SLUICE_BENCH_AUDIT_OFF;
