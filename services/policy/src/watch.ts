// Reload policies without a restart: fs.watch for prompt reloads, plus a hash check every
// 2 s because fs.watch misses events on some filesystems (network mounts, editors that
// replace files by rename, a directory created after start).
import { watch, type FSWatcher } from "node:fs";
import { policyVersion, readPolicyDir } from "./policies.js";

export interface PolicyWatcher {
  close(): void;
}

/**
 * Call `onChange` whenever the content of `dir`'s *.cedar files differs from the last
 * content seen (initially: `initialVersion`). Calls are debounced and never overlap.
 */
export function watchPolicyDir(dir: string, initialVersion: string, onChange: () => void, intervalMs = 2000): PolicyWatcher {
  let seen = initialVersion;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const check = () => {
    timer = undefined;
    if (closed) return;
    let current: string;
    try {
      current = policyVersion(readPolicyDir(dir));
    } catch {
      current = "unreadable";
    }
    if (current === seen) return;
    seen = current;
    onChange();
  };
  const soon = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    // Editors write in several steps; wait for the burst to end.
    timer = setTimeout(check, 100);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { persistent: false }, soon);
    watcher.on("error", () => {
      watcher?.close();
      watcher = undefined;
    });
  } catch {
    // Directory missing or not watchable: the periodic check still notices changes.
  }
  const interval = setInterval(check, intervalMs);
  interval.unref();
  return {
    close() {
      closed = true;
      clearInterval(interval);
      if (timer) clearTimeout(timer);
      watcher?.close();
    },
  };
}
