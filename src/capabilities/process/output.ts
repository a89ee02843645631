// Captured output as agents see it: UTF-8 with invalid bytes replaced, cut at character boundaries,
// and the mapping from a launcher's limit to the documented error types.
import type { LimitKind, SandboxResult } from "../ports/index.js";
import { capabilityError } from "./errors.js";

const isContinuation = (b: number | undefined): boolean => b !== undefined && (b & 0xc0) === 0x80;

/** UTF-8 text of `buf` (invalid sequences become U+FFFD). */
export function text(buf: Buffer): string {
  return buf.toString("utf8");
}

/** The first `n` bytes, moved back to a character boundary. */
export function headBytes(buf: Buffer, n: number): Buffer {
  if (buf.length <= n) return buf;
  let end = n;
  // Back off at most 3 continuation bytes, and the lead byte they belong to.
  for (let k = 0; k < 3 && isContinuation(buf[end]); k++) end--;
  return buf.subarray(0, end);
}

/** The last `n` bytes, moved forward to a character boundary. */
export function tailBytes(buf: Buffer, n: number): Buffer {
  if (n <= 0) return buf.subarray(buf.length);
  if (buf.length <= n) return buf;
  let start = buf.length - n;
  for (let k = 0; k < 3 && isContinuation(buf[start]); k++) start++;
  return buf.subarray(start);
}

/** A string cut to at most `max` code points (JSON Schema maxLength counts code points). */
export function cutChars(s: string, max: number): string {
  if (s.length <= max) return s;
  const cps = Array.from(s);
  return cps.length <= max ? s : cps.slice(0, max).join("");
}

const KIB = 1024;

/** A small excerpt of a run's output for error data: the first and the last KiB of each stream. */
export function excerpt(r: Pick<SandboxResult, "stdout" | "stderr">): Record<string, string> {
  const one = (b: Buffer): { head: string; tail: string } =>
    b.length <= 2 * KIB
      ? { head: text(b), tail: "" }
      : { head: text(headBytes(b, KIB)), tail: text(tailBytes(b, KIB)) };
  const o = one(r.stdout);
  const e = one(r.stderr);
  return { stdout_head: o.head, stdout_tail: o.tail, stderr_head: e.head, stderr_tail: e.tail };
}

const LIMIT_NAMES: Record<Exclude<LimitKind, "wall">, string> = {
  cpu: "CPU time",
  memory: "memory",
  file_size: "file size",
  pids: "process count",
  output: "output size",
};

/**
 * The error for a run the sandbox stopped at a limit (Timeout for the wall clock, ResourceLimit
 * naming the limit otherwise), or undefined when it ended by itself.
 */
export function limitError(
  capability: string,
  r: SandboxResult,
  wallMs: number,
): Error | undefined {
  if (r.limit === null) return undefined;
  const data = {
    exit_code: r.exit_code,
    signal: r.signal,
    duration_ms: Math.max(0, Math.round(r.duration_ms)),
    ...excerpt(r),
  };
  if (r.limit === "wall")
    return capabilityError(
      "Timeout",
      capability,
      `Still running after ${Math.round(wallMs / 1000)} s; every process of the call was killed.`,
      { timeout_s: Math.round(wallMs / 1000), ...data },
    );
  return capabilityError(
    "ResourceLimit",
    capability,
    `The run exceeded its ${LIMIT_NAMES[r.limit]} limit and was killed.`,
    { limit: r.limit, ...data },
  );
}
