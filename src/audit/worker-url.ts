/**
 * Where a worker module of src/audit is. In dist/sluice each is an entry point of the build
 * (build.ts), found inside the binary by its path from the repository root; from source, it is
 * next to this file.
 */
export function auditWorkerUrl(file: string): string {
  return import.meta.path.startsWith("/$bunfs/") ? `./src/audit/${file}` : new URL(`./${file}`, import.meta.url).href;
}
