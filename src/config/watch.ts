/**
 * Calls `onChange` when the config file changes. Watches the directory, not the file, because
 * editors and `kubectl` ConfigMap updates replace the file by rename, which a file watch misses.
 * Changes are debounced: a save is often several events.
 */
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";

export function watchConfigFile(path: string, onChange: () => void, debounceMs = 150): { close(): void } {
  const name = basename(path);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let watcher: FSWatcher | null = watch(dirname(path), { persistent: false }, (_event, file) => {
    // Kubernetes swaps a `..data` symlink; treat an unnamed event or that as a change too.
    if (file !== null && file !== name && file !== "..data") return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  return {
    close() {
      if (timer) clearTimeout(timer);
      watcher?.close();
      watcher = null;
    },
  };
}
