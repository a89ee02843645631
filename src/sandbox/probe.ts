// Runs `kruxos-sandbox --probe` and turns its single JSON line into a SandboxDiagnosis. The probe
// is never trusted to be present: a missing, crashing or misbehaving helper yields a diagnosis in
// which every layer is unavailable and helper_error says why, so callers fail closed.
import { execFile } from "node:child_process";
import { deepFreeze } from "../core/index.js";
import { SANDBOX_LAYERS, appLayout } from "../config/index.js";

/** The layers the helper probes, in report order: the manifest's sandbox layers. */
export const LAYER_NAMES = SANDBOX_LAYERS;

export type LayerName = (typeof LAYER_NAMES)[number];

/** The probe output format this code understands. */
export const PROBE_VERSION = 1;

export interface LayerStatus {
  readonly ok: boolean;
  /** Why the layer is unavailable: the exact syscall and errno, or what the host has instead. */
  readonly detail?: string;
  /** Landlock only: the kernel's Landlock ABI version. */
  readonly abi?: number;
}

export interface SandboxDiagnosis {
  /** The helper's probe format version; 0 when the helper produced no usable report. */
  readonly probe_version: number;
  /** The uid the probe ran as. */
  readonly uid: number;
  readonly layers: Readonly<Record<LayerName, LayerStatus>>;
  /** The Landlock ABI when Landlock works here, else null. */
  readonly landlock_abi: number | null;
  /** How resource limits are enforced: delegated cgroup v2 where available, rlimits otherwise. */
  readonly cgroup_mode: "delegated-v2" | "rlimits";
  /** The helper binary that was run. */
  readonly helper: string;
  /** Present when the helper could not run or its output was unusable. */
  readonly helper_error?: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** The report is a few hundred bytes; anything near this bound is not a probe report. */
const MAX_OUTPUT_BYTES = 64 * 1024;

/** Where the build puts the helper: `<appRoot>/native/build/kruxos-sandbox`. */
export function helperPath(appRoot: string): string {
  return appLayout(appRoot).sandboxHelper;
}

/** Run the helper's probe. Never throws: failures become a diagnosis with helper_error. */
export async function probeSandbox(
  helper: string,
  timeoutMs: number = DEFAULT_TIMEOUT_MS,
): Promise<SandboxDiagnosis> {
  let stdout: string;
  try {
    stdout = await runProbe(helper, timeoutMs);
  } catch (err) {
    return unavailable(helper, errorText(err));
  }
  try {
    return parseProbeOutput(stdout, helper);
  } catch (err) {
    return unavailable(helper, `invalid probe output: ${errorText(err)}`);
  }
}

function runProbe(helper: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // No shell, no inherited environment: the helper needs none, and the C locale keeps its
    // strerror() texts stable.
    execFile(
      helper,
      ["--probe"],
      {
        env: {},
        timeout: timeoutMs,
        killSignal: "SIGKILL",
        maxBuffer: MAX_OUTPUT_BYTES,
        encoding: "utf8",
        windowsHide: true,
      },
      (err, stdout, stderr) => {
        if (err) reject(new Error(describeFailure(helper, err, stderr, timeoutMs)));
        else resolve(stdout);
      },
    );
  });
}

interface ExecError extends Error {
  code?: number | string | null;
  killed?: boolean;
  signal?: NodeJS.Signals | null;
}

function describeFailure(
  helper: string,
  err: ExecError,
  stderr: string,
  timeoutMs: number,
): string {
  if (typeof err.code === "string") return `cannot run ${helper}: ${err.code}`;
  if (err.killed && err.signal === "SIGKILL")
    return `${helper} --probe timed out after ${timeoutMs} ms`;
  if (err.signal) return `${helper} --probe was killed by ${err.signal}`;
  const reported = helperErrorLine(stderr);
  const status = `${helper} --probe exited with status ${String(err.code)}`;
  return reported ? `${status}: ${reported}` : status;
}

/** The helper's own failure report: one JSON line {"error":…,"detail":…} on stderr. */
function helperErrorLine(stderr: string): string | undefined {
  const line = stderr.trim().split("\n").pop();
  if (!line) return undefined;
  try {
    const v = JSON.parse(line) as { error?: unknown; detail?: unknown };
    if (typeof v.error === "string") {
      return typeof v.detail === "string" ? `${v.error}: ${v.detail}` : v.error;
    }
  } catch {
    // Not the helper's JSON; fall through to the raw text.
  }
  return line.slice(0, 300);
}

/** Validate the helper's probe line and build the diagnosis; throws on anything unexpected. */
export function parseProbeOutput(stdout: string, helper: string): SandboxDiagnosis {
  const lines = stdout.split("\n").filter((l) => l.length > 0);
  if (lines.length !== 1) throw new Error(`expected one JSON line, got ${lines.length}`);
  const raw: unknown = JSON.parse(lines[0] as string);
  if (!isObject(raw)) throw new Error("the report is not a JSON object");
  if (raw.probe_version !== PROBE_VERSION) {
    throw new Error(`unsupported probe_version ${JSON.stringify(raw.probe_version)}`);
  }
  if (!Number.isSafeInteger(raw.uid) || (raw.uid as number) < 0)
    throw new Error("uid is not a uid");
  if (!isObject(raw.layers)) throw new Error("layers is not an object");
  for (const key of Object.keys(raw.layers)) {
    if (!(LAYER_NAMES as readonly string[]).includes(key))
      throw new Error(`unknown layer "${key}"`);
  }
  const layers = {} as Record<LayerName, LayerStatus>;
  for (const name of LAYER_NAMES) layers[name] = parseLayer(name, raw.layers[name]);

  const landlock = layers.landlock;
  const diagnosis: SandboxDiagnosis = {
    probe_version: PROBE_VERSION,
    uid: raw.uid as number,
    layers,
    landlock_abi: landlock.ok && landlock.abi !== undefined ? landlock.abi : null,
    cgroup_mode: layers.cgroup.ok ? "delegated-v2" : "rlimits",
    helper,
  };
  return deepFreeze(diagnosis);
}

function parseLayer(name: LayerName, v: unknown): LayerStatus {
  if (!isObject(v)) throw new Error(`layer "${name}" is missing or not an object`);
  for (const key of Object.keys(v)) {
    if (key !== "ok" && key !== "detail" && key !== "abi") {
      throw new Error(`layer "${name}" has unknown field "${key}"`);
    }
  }
  if (typeof v.ok !== "boolean") throw new Error(`layer "${name}".ok is not a boolean`);
  if (v.detail !== undefined && typeof v.detail !== "string") {
    throw new Error(`layer "${name}".detail is not a string`);
  }
  if (!v.ok && !v.detail) throw new Error(`failing layer "${name}" has no detail`);
  if (v.abi !== undefined && !(Number.isSafeInteger(v.abi) && (v.abi as number) > 0)) {
    throw new Error(`layer "${name}".abi is not a positive integer`);
  }
  const status: { ok: boolean; detail?: string; abi?: number } = { ok: v.ok };
  if (typeof v.detail === "string") status.detail = v.detail;
  if (typeof v.abi === "number") status.abi = v.abi;
  return status;
}

function unavailable(helper: string, error: string): SandboxDiagnosis {
  const layers = {} as Record<LayerName, LayerStatus>;
  for (const name of LAYER_NAMES) {
    layers[name] = { ok: false, detail: "not probed: the sandbox helper failed" };
  }
  const diagnosis: SandboxDiagnosis = {
    probe_version: 0,
    uid: process.getuid?.() ?? -1,
    layers,
    landlock_abi: null,
    cgroup_mode: "rlimits",
    helper,
    helper_error: error,
  };
  return deepFreeze(diagnosis);
}

/**
 * The required layers this host lacks, in the order given, without duplicates. A name that is not
 * a layer counts as missing: an unknown requirement can never be met, so it must not pass.
 */
export function missingRequired(
  diagnosis: SandboxDiagnosis,
  required: readonly string[],
): string[] {
  const layers = diagnosis.layers as Readonly<Record<string, LayerStatus | undefined>>;
  const missing: string[] = [];
  for (const name of required) {
    if (!missing.includes(name) && layers[name]?.ok !== true) missing.push(name);
  }
  return missing;
}

/** A table for humans (`kruxos sandbox diagnose`). */
export function formatDiagnosis(d: SandboxDiagnosis): string {
  const row = (label: string, value: string | number): string => `${label.padEnd(17)}${value}`;
  const width = Math.max(...LAYER_NAMES.map((n) => n.length)) + 2;
  const out: string[] = [row("Sandbox helper:", d.helper)];
  if (d.helper_error !== undefined) out.push(row("Helper error:", d.helper_error));
  else out.push(row("Probed as uid:", `${d.uid} (probe format ${d.probe_version})`));
  out.push("", `${"LAYER".padEnd(width)}${"STATUS".padEnd(9)}DETAIL`);
  for (const name of LAYER_NAMES) {
    const layer = d.layers[name];
    const status = layer.ok ? "ok" : "missing";
    const detail = layer.ok
      ? layer.abi !== undefined
        ? `ABI ${layer.abi}`
        : ""
      : (layer.detail ?? "");
    out.push(`${name.padEnd(width)}${status.padEnd(9)}${detail}`.trimEnd());
  }
  const working = LAYER_NAMES.filter((n) => d.layers[n].ok).length;
  const limits =
    d.cgroup_mode === "delegated-v2"
      ? "delegated cgroup v2 and rlimits"
      : "rlimits (no delegated cgroup v2)";
  out.push(
    "",
    row("Layers working:", `${working} of ${LAYER_NAMES.length}`),
    row("Landlock ABI:", d.landlock_abi ?? "unavailable"),
    row("Resource limits:", limits),
  );
  return out.join("\n") + "\n";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
