// filesystem.search: grep over the workspace, bounded in results, bytes per file and bytes overall.
// Literal patterns are matched with indexOf; regular expressions run in a worker thread with a
// per-file deadline (a catastrophically backtracking pattern is refused, not waited on).
import { constants, type Stats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { handler } from "./common.js";
import { locate, openDir, type Dir, type Workspace } from "./confine.js";
import { fsError } from "./errors.js";
import { compileGlob } from "./glob.js";
import type { CapabilityHandler } from "../types.js";
import { readBounded, walk } from "./io.js";
import type { FilesystemOptions } from "./options.js";
import { displayOf, parseAgentPath } from "./paths.js";
import { MAX_DEPTH } from "./tree.js";

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants;
const MAX_LINE_CHARS = 500;
const BINARY_SNIFF = 8192;

interface SearchInputs {
  pattern: string;
  regex?: boolean;
  case_sensitive?: boolean;
  path?: string;
  glob?: string;
  max_results?: number;
  include_hidden?: boolean;
}

interface Match {
  path: string;
  line: number;
  text: string;
}

/** Finds matching line indexes in a text. */
type Matcher = { lines(text: string, limit: number): Promise<number[]>; close(): Promise<void> };

function literalMatcher(pattern: string, caseSensitive: boolean): Matcher {
  const needle = caseSensitive ? pattern : pattern.toLowerCase();
  return {
    lines(text, limit) {
      const out: number[] = [];
      const all = text.split("\n");
      for (let i = 0; i < all.length && out.length < limit; i++) {
        const line = all[i] ?? "";
        if ((caseSensitive ? line : line.toLowerCase()).includes(needle)) out.push(i);
      }
      return Promise.resolve(out);
    },
    close: () => Promise.resolve(),
  };
}

function regexMatcher(
  ws: Workspace,
  display: string,
  source: string,
  flags: string,
  timeoutMs: number,
): Matcher {
  const worker = new Worker(new URL("./regex-worker.js", import.meta.url), {
    workerData: { source, flags },
    resourceLimits: { maxOldGenerationSizeMb: 256 },
  });
  worker.unref();
  let nextId = 0;
  return {
    lines(text, limit) {
      const id = nextId++;
      return new Promise<number[]>((resolve, reject) => {
        const timer = setTimeout(() => {
          cleanup();
          void worker.terminate();
          reject(
            fsError(
              "InvalidPattern",
              ws.capability,
              display,
              `The regular expression took longer than ${timeoutMs} ms on one file (catastrophic backtracking?).`,
            ),
          );
        }, timeoutMs);
        const onMessage = (m: { id: number; lines: number[] }): void => {
          if (m.id !== id) return;
          cleanup();
          resolve(m.lines);
        };
        const onError = (err: Error): void => {
          cleanup();
          reject(err);
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          worker.off("message", onMessage);
          worker.off("error", onError);
        };
        worker.on("message", onMessage);
        worker.on("error", onError);
        worker.postMessage({ id, text, limit });
      });
    },
    close: async () => {
      await worker.terminate();
    },
  };
}

export function createSearch(o: FilesystemOptions): CapabilityHandler {
  return handler<SearchInputs>("filesystem.search", async (inputs, ws) => {
    const ap = parseAgentPath(inputs.path ?? ".", ws.capability);
    const caseSensitive = inputs.case_sensitive !== false;
    const limit = Math.min(inputs.max_results ?? o.maxSearchResults, o.maxSearchResults);
    let glob: ((p: string) => boolean) | undefined;
    try {
      glob = inputs.glob === undefined ? undefined : compileGlob(inputs.glob);
    } catch (err) {
      throw fsError(
        "InvalidPattern",
        ws.capability,
        ap.display,
        `Invalid glob: ${(err as Error).message}`,
      );
    }
    let matcher: Matcher;
    if (inputs.regex === true) {
      const flags = caseSensitive ? "" : "i";
      try {
        new RegExp(inputs.pattern, flags); // syntax check only; matching happens in the worker
      } catch (err) {
        throw fsError("InvalidPattern", ws.capability, ap.display, (err as Error).message);
      }
      matcher = regexMatcher(ws, ap.display, inputs.pattern, flags, o.regexFileTimeoutMs);
    } else {
      matcher = literalMatcher(inputs.pattern, caseSensitive);
    }
    const matches: Match[] = [];
    let truncated = false;
    let scanned = 0;

    /** Search one file; false when the search must stop. */
    const searchFile = async (
      dir: Dir,
      name: string,
      st: Stats,
      shown: string,
    ): Promise<boolean> => {
      if (!st.isFile() || st.size === 0) return true;
      if (st.nlink > 1 && !ws.wholeFs) return true; // may be a file outside: not read
      let fh: FileHandle;
      try {
        fh = await open(dir.at(name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      } catch {
        return true;
      }
      let buf: Buffer;
      try {
        const now = await fh.stat();
        if (now.dev !== st.dev || now.ino !== st.ino || !now.isFile()) return true;
        if (now.nlink > 1 && !ws.wholeFs) return true;
        buf = await readBounded(fh, Math.min(o.maxSearchFileBytes, o.maxSearchBytes - scanned) - 1);
      } finally {
        await fh.close();
      }
      scanned += buf.length;
      if (buf.subarray(0, BINARY_SNIFF).includes(0)) return true; // binary
      const text = buf.toString("utf8");
      const lines = await matcher.lines(text, limit - matches.length + 1);
      const all = lines.length > 0 ? text.split("\n") : [];
      for (const i of lines) {
        if (matches.length >= limit) {
          truncated = true;
          return false;
        }
        const line = (all[i] ?? "").replace(/\r$/, "");
        matches.push({
          path: shown,
          line: i + 1,
          text: line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line,
        });
      }
      if (scanned >= o.maxSearchBytes) {
        truncated = true;
        return false;
      }
      return true;
    };

    try {
      // A file path searches that file; a directory path searches under it.
      const dir = await openDir(ws, ap.comps, ap.display).catch(async (err: unknown) => {
        if ((err as { data?: { type?: unknown } }).data?.type !== "NotADirectory") throw err;
        return undefined;
      });
      if (!dir) {
        const entry = await locate(ws, ap.comps, ap.display, { follow: true });
        try {
          if (!entry.st)
            throw fsError("NotFound", ws.capability, ap.display, `${ap.display} does not exist.`);
          await searchFile(entry.dir, entry.name, entry.st, ap.display);
          await entry.dir.assertInside(ap.display);
        } finally {
          await entry.dir.close();
        }
        return { matches, truncated };
      }
      try {
        await walk(
          ws,
          dir,
          {
            recursive: true,
            includeHidden: inputs.include_hidden === true,
            signal: ws.ctx.signal,
            maxDepth: MAX_DEPTH,
          },
          async (v) => {
            if (!v.st.isFile()) return undefined;
            if (glob && !glob(v.rel.join("/"))) return undefined;
            const go = await searchFile(v.dir, v.name, v.st, displayOf([...ap.comps, ...v.rel]));
            return go ? undefined : "stop";
          },
          ap.display,
        );
        await dir.assertInside(ap.display);
      } finally {
        await dir.close();
      }
      return { matches, truncated };
    } finally {
      await matcher.close();
    }
  });
}
