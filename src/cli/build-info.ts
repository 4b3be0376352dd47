/** Version and commit, baked in by build.ts (`define`); a dev run says "dev". */
import pkg from "../../package.json" with { type: "json" };

declare const SLUICE_BUILD: { version: string; commit: string } | undefined;

export const BUILD: { version: string; commit: string } =
  typeof SLUICE_BUILD !== "undefined" ? SLUICE_BUILD : { version: pkg.version, commit: "dev" };

export function versionLine(): string {
  return `sluice ${BUILD.version} (commit ${BUILD.commit})`;
}
