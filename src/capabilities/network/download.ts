// network.download: stream a URL into a workspace file. The destination goes through the same
// race-safe confinement and mandatory-deny rules as filesystem.write (filesystem/confine.ts); the
// bytes go to a fresh temporary file in the destination's directory and only a complete, size- and
// digest-checked file is renamed (or, without overwrite, hard-linked) into place. Whatever fails —
// the proxy, the size limit, the digest, the deadline — the destination is untouched and the
// temporary file is gone.
import { identityOf } from "../ports/index.js";
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { link, open, rename, unlink, type FileHandle } from "node:fs/promises";
import { KruxError } from "../../core/index.js";
import {
  checkDeny,
  locate,
  openDir,
  openWorkspace,
  refuseSymlinkTarget,
  type Dir,
  type Entry,
  type Workspace,
} from "../filesystem/confine.js";
import { errnoOf, fromErrno } from "../filesystem/errors.js";
import { tempName } from "../filesystem/io.js";
import { AGENT_ROOT, parseAgentPath, type AgentPath } from "../filesystem/paths.js";
import type { EgressClient, EgressStream } from "../ports/index.js";
import type { CallContext, CapabilityHandler } from "../types.js";
import {
  fromEgressError,
  invalidInput,
  netError,
  withDocumentedRecovery,
  type NetErrorType,
} from "./errors.js";
import { checkHeaders, checkUrl, lowerHeaders, ms, untilAborted } from "./request.js";

const CAPABILITY = "network.download";
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
const MAX_HEADERS = 32;
const MAX_REDIRECTS = 5;
const DEFAULT_MAX_BYTES = 100 * 1024 * 1024;
const MAX_MAX_BYTES = 1024 * 1024 * 1024;

interface DownloadInputs {
  url: string;
  path: string;
  overwrite?: boolean;
  sha256?: string;
  max_bytes?: number;
  headers?: Record<string, string>;
  timeout_s?: number;
}

interface Plan {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly ap: AgentPath;
  readonly overwrite: boolean;
  readonly maxBytes: number;
  readonly expected: string | undefined;
  readonly timeoutS: number;
}

export function createDownload(egress: EgressClient): CapabilityHandler {
  return async (raw: unknown, ctx: CallContext) => {
    const plan = planOf(raw as DownloadInputs);
    try {
      const ws = await openWorkspace(ctx, CAPABILITY);
      // Everything that can be refused locally is refused before a byte is requested.
      checkDeny(ws, plan.ap.comps, plan.ap.display);
      await precheck(ws, plan);
      return await transfer(egress, ws, plan, ctx);
    } catch (err) {
      throw asDownloadError(err, plan.ap.display);
    }
  };
}

function planOf(inputs: DownloadInputs): Plan {
  const url = checkUrl(inputs.url);
  const headers = checkHeaders(inputs.headers, MAX_HEADERS);
  if (inputs.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(inputs.sha256))
    throw invalidInput("/sha256", "sha256 must be 64 hex digits.");
  let ap: AgentPath;
  try {
    ap = parseAgentPath(inputs.path, CAPABILITY);
  } catch (err) {
    throw asDownloadError(err, inputs.path);
  }
  if (ap.comps.length === 0)
    throw netError("AlreadyExists", CAPABILITY, "The workspace root is a directory.", {
      path: ap.display,
    });
  return {
    url,
    headers,
    ap,
    overwrite: inputs.overwrite ?? false,
    maxBytes: Math.min(inputs.max_bytes ?? DEFAULT_MAX_BYTES, MAX_MAX_BYTES),
    expected: inputs.sha256?.toLowerCase(),
    timeoutS: inputs.timeout_s ?? 300,
  };
}

const isNotFound = (err: unknown): boolean =>
  err instanceof KruxError && err.code === "CapabilityError" && err.data.type === "NotFound";

/**
 * Refuse now what would be refused once the bytes are in, so a refused destination costs no
 * request and creates no directory. (The same checks run again, on what is there then, before the
 * file is placed.)
 */
async function precheck(ws: Workspace, plan: Plan): Promise<void> {
  let entry: Entry;
  try {
    entry = await locate(ws, plan.ap.comps, plan.ap.display, { follow: false });
  } catch (err) {
    if (isNotFound(err)) return checkMissingParents(ws, plan);
    throw err;
  }
  try {
    await checkTarget(ws, plan, entry);
  } finally {
    await entry.dir.close();
  }
}

/**
 * Some parent directories do not exist yet: resolve the deepest one that does (through symlinks)
 * and check the destination as it will be once the rest is created. `gitdir/hooks/x` with
 * `gitdir -> .git` is `.git/hooks/x`, mandatory-deny, although `hooks` does not exist yet.
 */
async function checkMissingParents(ws: Workspace, plan: Plan): Promise<void> {
  const { comps, display } = plan.ap;
  for (let k = comps.length - 1; k >= 0; k--) {
    let dir: Dir;
    try {
      dir = await openDir(ws, comps.slice(0, k), display);
    } catch (err) {
      if (isNotFound(err)) continue;
      throw err;
    }
    try {
      checkDeny(ws, [...dir.comps, ...comps.slice(k)], display);
    } finally {
      await dir.close();
    }
    return;
  }
}

/**
 * The destination as found through its (descriptor-held) parent: not mandatory-deny as resolved,
 * not a symlink (never replaced or written through; one leading outside is PathOutOfScope), not a
 * directory or special file, and absent unless overwrite is set.
 */
async function checkTarget(ws: Workspace, plan: Plan, entry: Entry): Promise<void> {
  const { display } = plan.ap;
  checkDeny(ws, entry.comps, display);
  const st = entry.st;
  if (st === undefined) return;
  if (st.isSymbolicLink()) await refuseSymlinkTarget(ws, entry, display);
  if (st.isDirectory())
    throw netError("AlreadyExists", CAPABILITY, `${display} is a directory.`, { path: display });
  if (!st.isFile())
    throw netError("AlreadyExists", CAPABILITY, `${display} exists and is not a regular file.`, {
      path: display,
    });
  if (!plan.overwrite)
    throw netError(
      "AlreadyExists",
      CAPABILITY,
      `${display} exists; set overwrite true to replace it.`,
      { path: display },
    );
}

async function transfer(
  egress: EgressClient,
  ws: Workspace,
  plan: Plan,
  ctx: CallContext,
): Promise<Record<string, unknown>> {
  const { display } = plan.ap;
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(plan.timeoutS * 1000)]);
  const timeoutMessage = `${CAPABILITY} did not finish within ${plan.timeoutS} s (or the call was cancelled); nothing was written.`;
  const timedOut = (): KruxError =>
    netError("Timeout", CAPABILITY, timeoutMessage, { path: display });
  const started = performance.now();

  const pending = egress.stream(
    {
      method: "GET",
      url: plan.url,
      headers: plan.headers,
      timeout_ms: plan.timeoutS * 1000,
      follow_redirects: true,
      max_redirects: MAX_REDIRECTS,
    },
    identityOf(ctx),
    signal,
  );
  let stream: EgressStream;
  try {
    stream = await untilAborted(pending, signal, () => {
      // Given up on: should the stream still open, close it at once.
      pending.then(
        (s) => s.destroy(),
        () => undefined,
      );
      return timedOut();
    });
  } catch (err) {
    throw fromEgressError(err, CAPABILITY, signal, timeoutMessage);
  }

  let complete = false;
  try {
    const headers = lowerHeaders(stream.headers);
    if (stream.status < 200 || stream.status > 299)
      throw netError("HttpError", CAPABILITY, `The server answered HTTP ${stream.status}.`, {
        status: stream.status,
        url: stream.url,
      });
    const declared = Number(headers["content-length"]);
    if (Number.isSafeInteger(declared) && declared > plan.maxBytes)
      throw tooLarge(plan, declared, display);

    const entry = await locate(ws, plan.ap.comps, display, { follow: false, create: true });
    let result: { size: number; sha256: string };
    try {
      await checkTarget(ws, plan, entry);
      result = await writeInto(entry, stream, plan, signal, timedOut, timeoutMessage);
      await entry.dir.assertInside(display);
    } finally {
      await entry.dir.close();
    }
    complete = true;
    const contentType = headers["content-type"];
    return {
      path: `${AGENT_ROOT}/${display}`,
      size: result.size,
      sha256: result.sha256,
      ...(contentType !== undefined ? { content_type: contentType } : {}),
      status: stream.status,
      duration_ms: ms(performance.now() - started),
    };
  } finally {
    if (!complete) stream.destroy();
  }
}

/**
 * Stream the body into a new temporary file next to the destination, then put it in place. The
 * temporary file is removed on every path that does not end with it renamed or linked.
 */
async function writeInto(
  entry: Entry,
  stream: EgressStream,
  plan: Plan,
  signal: AbortSignal,
  timedOut: () => KruxError,
  timeoutMessage: string,
): Promise<{ size: number; sha256: string }> {
  const { display } = plan.ap;
  const tmp = tempName();
  const fh = await open(entry.dir.at(tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o666);
  let placed = false;
  try {
    const hash = createHash("sha256");
    let size = 0;
    let it: AsyncIterator<Buffer> | undefined;
    try {
      it = stream.body[Symbol.asyncIterator]();
      // As filesystem.write: when the gateway runs as root, the file is the workspace owner's.
      const owner = entry.dir.workspace.owner;
      if (owner) await fh.chown(owner.uid, owner.gid);
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await untilAborted(it.next(), signal, timedOut);
        } catch (err) {
          throw fromEgressError(err, CAPABILITY, signal, timeoutMessage, true);
        }
        if (next.done) break;
        const chunk = next.value;
        size += chunk.length;
        if (size > plan.maxBytes) throw tooLarge(plan, size, display);
        hash.update(chunk);
        await writeAll(fh, chunk);
      }
      await fh.sync();
    } catch (err) {
      stream.destroy();
      it?.return?.().catch(() => undefined);
      throw err;
    } finally {
      await fh.close();
    }
    const sha256 = hash.digest("hex");
    if (plan.expected !== undefined && sha256 !== plan.expected)
      throw netError(
        "ChecksumMismatch",
        CAPABILITY,
        `The content's SHA-256 is ${sha256}, not ${plan.expected}; nothing was written.`,
        { path: display, expected: plan.expected, actual: sha256 },
      );
    // The gateway has already answered Timeout once the deadline passed: do not place a file then.
    if (signal.aborted) throw timedOut();
    if (plan.overwrite) {
      // rename(2) replaces whatever is at the name (a symlink swapped in after the check included)
      // and never writes through it.
      await rename(entry.dir.at(tmp), entry.dir.at(entry.name));
      placed = true;
    } else {
      // link(2) fails with EEXIST, atomically, if anything appeared at the name meanwhile.
      try {
        await link(entry.dir.at(tmp), entry.dir.at(entry.name));
      } catch (err) {
        if (errnoOf(err) === "EEXIST")
          throw netError("AlreadyExists", CAPABILITY, `${display} appeared during the download.`, {
            path: display,
          });
        throw err;
      }
      placed = true;
      await unlink(entry.dir.at(tmp)).catch(() => undefined);
    }
    return { size, sha256 };
  } finally {
    if (!placed) await unlink(entry.dir.at(tmp)).catch(() => undefined);
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
}

function tooLarge(plan: Plan, size: number, display: string): KruxError {
  return netError(
    "ResourceLimit",
    CAPABILITY,
    `The content is larger than max_bytes (${plan.maxBytes}); nothing was written.`,
    { path: display, limit: plan.maxBytes, received: size },
  );
}

/** Filesystem failures that network.download documents under another name. */
const FS_TYPES: Readonly<Record<string, NetErrorType>> = {
  NoSpace: "ResourceLimit",
  TooLarge: "ResourceLimit",
  IsADirectory: "AlreadyExists",
  IsASymlink: "AlreadyExists",
  NotAFile: "AlreadyExists",
};

/** Any failure as network.download documents it: errno → CapabilityError, fs types renamed. */
function asDownloadError(err: unknown, display: string): unknown {
  const e = err instanceof KruxError ? err : fromErrno(err, CAPABILITY, display);
  if (e instanceof KruxError && e.code === "CapabilityError") {
    const renamed = FS_TYPES[String(e.data.type)];
    if (renamed !== undefined)
      return netError(renamed, CAPABILITY, e.message, {
        path: e.data.path ?? display,
        reason: e.data.type,
      });
  }
  return withDocumentedRecovery(e, "network.download");
}
