// filesystem.watch: change events under a directory during a bounded window.
//
// Node 20's recursive fs.watch on Linux is a userland walker over inotify: it follows symlinked
// directories (it could watch outside the workspace), spends one inotify watch per directory, and
// reports creations, deletions and renames all as "rename". So this handler polls instead: it takes
// a snapshot of the tree through the confined walk (lstat only, symlinks never followed, at most
// maxListEntries entries) every watchPollMs and diffs consecutive snapshots. A rename is a deletion
// and a creation of the same inode; events inside a renamed directory are folded into it.
import { setTimeout as sleep } from "node:timers/promises";
import { handler } from "./common.js";
import { openDir, type Dir, type Workspace } from "./confine.js";
import type { CapabilityHandler } from "../types.js";
import { walk } from "./io.js";
import type { FilesystemOptions } from "./options.js";
import { displayOf, parseAgentPath } from "./paths.js";
import { MAX_DEPTH } from "./tree.js";

interface WatchInputs {
  path?: string;
  timeout_s: number;
  max_events?: number;
  include_hidden?: boolean;
}

interface Seen {
  readonly id: string;
  readonly dir: boolean;
  readonly size: number;
  readonly mtimeMs: number;
}

export type WatchEvent =
  | { type: "created" | "modified" | "deleted"; path: string }
  | { type: "renamed"; path: string; from: string };

async function snapshot(
  ws: Workspace,
  dir: Dir,
  includeHidden: boolean,
  max: number,
  display: string,
): Promise<{ seen: Map<string, Seen>; full: boolean }> {
  const seen = new Map<string, Seen>();
  let full = false;
  await walk(
    ws,
    dir,
    { recursive: true, includeHidden, signal: ws.ctx.signal, maxDepth: MAX_DEPTH },
    (v) => {
      if (seen.size >= max) {
        full = true;
        return "stop";
      }
      seen.set(v.rel.join("/"), {
        id: `${v.st.dev}:${v.st.ino}`,
        dir: v.st.isDirectory(),
        size: v.st.size,
        mtimeMs: v.st.mtimeMs,
      });
      return undefined;
    },
    display,
  );
  return { seen, full };
}

const parentOf = (p: string): string => p.slice(0, Math.max(0, p.lastIndexOf("/")));

/** Events that turn snapshot `before` into `after` (paths relative to the watched directory). */
export function diff(before: Map<string, Seen>, after: Map<string, Seen>): WatchEvent[] {
  const removed = new Map<string, string>(); // inode id → old path
  const added: string[] = [];
  const events: WatchEvent[] = [];
  for (const [p, o] of before) {
    const n = after.get(p);
    if (!n || n.id !== o.id) removed.set(o.id, p);
    if (n && n.id !== o.id) added.push(p);
    else if (n && !n.dir && (n.size !== o.size || n.mtimeMs !== o.mtimeMs))
      events.push({ type: "modified", path: p });
  }
  for (const p of after.keys()) if (!before.has(p)) added.push(p);
  const renamedTo = new Map<string, string>(); // new path → old path
  for (const p of added) {
    const n = after.get(p);
    const from = n ? removed.get(n.id) : undefined;
    if (from !== undefined && from !== p) {
      renamedTo.set(p, from);
      removed.delete(n?.id ?? "");
    }
  }
  for (const p of added) {
    const from = renamedTo.get(p);
    if (from === undefined) {
      events.push({ type: "created", path: p });
      continue;
    }
    // Inside a renamed directory: the directory's own event says it all.
    if (renamedTo.get(parentOf(p)) === parentOf(from) && parentOf(p) !== "") continue;
    events.push({ type: "renamed", path: p, from });
  }
  for (const p of removed.values()) events.push({ type: "deleted", path: p });
  return events.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

export function createWatch(o: FilesystemOptions): CapabilityHandler {
  return handler<WatchInputs>("filesystem.watch", async (inputs, ws) => {
    const ap = parseAgentPath(inputs.path ?? ".", ws.capability);
    const maxEvents = Math.min(inputs.max_events ?? o.maxWatchEvents, o.maxWatchEvents);
    const windowMs = Math.min(inputs.timeout_s * 1000, o.watchTimeoutMs);
    const includeHidden = inputs.include_hidden === true;
    const dir = await openDir(ws, ap.comps, ap.display);
    const events: WatchEvent[] = [];
    try {
      const deadline = Date.now() + windowMs;
      let prev = await snapshot(ws, dir, includeHidden, o.maxListEntries, ap.display);
      let truncated = prev.full;
      while (Date.now() < deadline && !ws.ctx.signal.aborted) {
        const wait = Math.max(0, Math.min(o.watchPollMs, deadline - Date.now()));
        await sleep(wait, undefined, { signal: ws.ctx.signal }).catch(() => undefined);
        await dir.assertInside(ap.display);
        const next = await snapshot(ws, dir, includeHidden, o.maxListEntries, ap.display);
        truncated ||= next.full;
        for (const e of diff(prev.seen, next.seen)) {
          if (events.length >= maxEvents) {
            truncated = true;
            break;
          }
          const path = displayOf([...ap.comps, ...e.path.split("/")]);
          events.push(
            e.type === "renamed"
              ? { type: "renamed", path, from: displayOf([...ap.comps, ...e.from.split("/")]) }
              : { type: e.type, path },
          );
        }
        if (events.length >= maxEvents) {
          truncated = true; // the window was cut short
          break;
        }
        prev = next;
      }
      return { events, truncated };
    } finally {
      await dir.close();
    }
  });
}
