// Test helpers: where the repository and the built CLI are, and how to run the CLI as a process.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** dist/tests/helpers → repository root. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const CLI = path.join(REPO, "bin", "kruxos");

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      {
        env: { ...process.env, ...opts.env },
        cwd: opts.cwd ?? REPO,
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 16 << 20,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    // What a user would pipe in; without it stdin stays as it is.
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export function run(
  cmd: string,
  args: readonly string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      {
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 << 20,
        env: { ...process.env, ...opts.env },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Every regular file under `dir`, recursively (sockets and entries that vanish are skipped). */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const f = path.join(dir, n);
    let st;
    try {
      st = statSync(f);
    } catch {
      return [];
    }
    return st.isDirectory() ? filesUnder(f) : st.isFile() ? [f] : [];
  });
}

export function tempDir(prefix = "kruxos-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

/** A spawned process whose stdout JSON lines are collected as they arrive. */
export interface Spawned {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[];
  readonly text: () => string;
  waitFor(
    pred: (line: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnLogged(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; logFile?: string } = {},
): Spawned {
  // With logFile, stdout/stderr go to a real file, as under a container runtime. (Node gives
  // children socketpairs, and supervisord cannot open /dev/stdout on a socket.)
  const fd = opts.logFile ? openSync(opts.logFile, "w") : undefined;
  const child = spawn(cmd, args, {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd ?? REPO,
    stdio: fd === undefined ? ["ignore", "pipe", "pipe"] : ["ignore", fd, fd],
  });
  const lines: Record<string, unknown>[] = [];
  let raw = "";
  let buf = "";
  const waiters: {
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  const onData = (chunk: Buffer): void => {
    raw += chunk.toString("utf8");
    buf += chunk.toString("utf8");
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const obj = JSON.parse(line) as Record<string, unknown>;
        lines.push(obj);
        for (const w of [...waiters])
          if (w.pred(obj)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(obj);
          }
      } catch {
        /* not a JSON line (supervisord's own output, banners) */
      }
    }
  };
  child.stdout?.on("data", onData);
  if (opts.logFile) {
    const file = opts.logFile;
    let offset = 0;
    const poll = (): void => {
      const buf = readFileSync(file);
      if (buf.length > offset) {
        onData(buf.subarray(offset));
        offset = buf.length;
      }
    };
    const timer = setInterval(poll, 100);
    child.on("exit", () => {
      clearInterval(timer);
      poll();
      if (fd !== undefined) closeSync(fd);
    });
  }
  child.stderr?.on("data", (c: Buffer) => {
    raw += c.toString("utf8");
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    text: () => raw,
    exited,
    waitFor(pred, timeoutMs) {
      const hit = lines.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () =>
            reject(
              new Error(
                `timed out after ${timeoutMs} ms waiting for a log line; output so far:\n${raw.slice(-4000)}`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
  };
}

export async function httpGet(
  url: string,
  timeoutMs = 5000,
): Promise<{ status: number; body: string; ms: number }> {
  const http = await import("node:http");
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8"),
          ms: performance.now() - start,
        }),
      );
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

export async function waitUntil<T>(
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `condition not met within ${timeoutMs} ms${lastErr ? `: ${String(lastErr)}` : ""}`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
