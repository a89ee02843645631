// Parsers for git's machine-readable output: NUL-separated log records, `status --porcelain=v2 -z
// --branch`, `diff --raw --numstat -z`, and for-each-ref lines with %00 separators. They never trust
// the output to be complete (a bounded capture can cut the last record): an incomplete record is
// dropped and reported as truncation by the caller.
import { cutChars } from "../process/output.js";

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

export interface LogCommit {
  sha: string;
  parents: string[];
  author_name: string;
  author_email: string;
  authored_at: string;
  committed_at: string;
  subject: string;
  body: string;
}

/** The --format of git.log: 8 fields, each NUL-terminated under -z. */
export const LOG_FORMAT = "--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cI%x00%s%x00%b";
const LOG_FIELDS = 8;
export const BODY_MAX = 16384;

/** Records of LOG_FORMAT; a cut final record is dropped. */
export function parseLog(out: string): { commits: LogCommit[]; complete: boolean } {
  const tokens = out.split("\0");
  const tail = tokens.pop(); // after the last terminator: "" when complete
  const commits: LogCommit[] = [];
  let complete = tail === "";
  for (let i = 0; i + LOG_FIELDS <= tokens.length; i += LOG_FIELDS) {
    const [sha = "", parents = "", an = "", ae = "", ad = "", cd = "", s = "", b = ""] =
      tokens.slice(i, i + LOG_FIELDS);
    // Records start after the previous terminator; git may put a newline between records.
    const id = sha.replace(/^\n/, "");
    if (!SHA.test(id)) {
      complete = false;
      break;
    }
    commits.push({
      sha: id,
      parents: parents.split(" ").filter((p) => p !== ""),
      author_name: an,
      author_email: ae,
      authored_at: ad,
      committed_at: cd,
      subject: s,
      body: cutChars(b.replace(/\s+$/, ""), BODY_MAX),
    });
  }
  if (tokens.length % LOG_FIELDS !== 0) complete = false;
  return { commits, complete };
}

export type FileState =
  | "unmodified"
  | "added"
  | "modified"
  | "deleted"
  | "renamed"
  | "copied"
  | "type_changed"
  | "unmerged"
  | "untracked";

const XY: Record<string, FileState> = {
  ".": "unmodified",
  M: "modified",
  T: "type_changed",
  A: "added",
  D: "deleted",
  R: "renamed",
  C: "copied",
  U: "unmerged",
};

export interface StatusEntry {
  path: string;
  orig_path?: string;
  staged: FileState;
  unstaged: FileState;
}

export interface Status {
  branch: string | null;
  head: string | null;
  upstream: string | null;
  ahead: number;
  behind: number;
  entries: StatusEntry[];
  complete: boolean;
}

/** The `rest` of a record after `n` space-separated fields (paths may contain spaces). */
function afterFields(rec: string, n: number): { fields: string[]; rest: string } | undefined {
  const fields: string[] = [];
  let at = 0;
  for (let k = 0; k < n; k++) {
    const sp = rec.indexOf(" ", at);
    if (sp < 0) return undefined;
    fields.push(rec.slice(at, sp));
    at = sp + 1;
  }
  return { fields, rest: rec.slice(at) };
}

/** `git status --porcelain=v2 -z --branch` output. */
export function parseStatus(out: string): Status {
  const st: Status = {
    branch: null,
    head: null,
    upstream: null,
    ahead: 0,
    behind: 0,
    entries: [],
    complete: true,
  };
  const recs = out.split("\0");
  if (recs.pop() !== "") st.complete = false;
  for (let i = 0; i < recs.length; i++) {
    const rec = recs[i] ?? "";
    if (rec.startsWith("# ")) {
      const [key = "", ...vals] = rec.slice(2).split(" ");
      const val = vals.join(" ");
      if (key === "branch.oid") st.head = val === "(initial)" ? null : val;
      else if (key === "branch.head") st.branch = val === "(detached)" ? null : val;
      else if (key === "branch.upstream") st.upstream = val;
      else if (key === "branch.ab") {
        const m = /^\+(\d+) -(\d+)$/.exec(val);
        if (m) {
          st.ahead = Number(m[1]);
          st.behind = Number(m[2]);
        }
      }
      continue;
    }
    const kind = rec[0];
    if (kind === "1") {
      // 1 XY sub mH mI mW hH hI path
      const p = afterFields(rec, 8);
      if (!p) continue;
      const xy = p.fields[1] ?? "..";
      st.entries.push({
        path: p.rest,
        staged: XY[xy[0] ?? "."] ?? "modified",
        unstaged: XY[xy[1] ?? "."] ?? "modified",
      });
    } else if (kind === "2") {
      // 2 XY sub mH mI mW hH hI Xscore path NUL origPath
      const p = afterFields(rec, 9);
      const orig = recs[i + 1];
      i++;
      if (!p || orig === undefined) {
        st.complete = false;
        continue;
      }
      const xy = p.fields[1] ?? "..";
      st.entries.push({
        path: p.rest,
        orig_path: orig,
        staged: XY[xy[0] ?? "."] ?? "modified",
        unstaged: XY[xy[1] ?? "."] ?? "modified",
      });
    } else if (kind === "u") {
      // u XY sub m1 m2 m3 mW h1 h2 h3 path
      const p = afterFields(rec, 10);
      if (!p) continue;
      st.entries.push({ path: p.rest, staged: "unmerged", unstaged: "unmerged" });
    } else if (kind === "?") {
      st.entries.push({ path: rec.slice(2), staged: "untracked", unstaged: "untracked" });
    }
    // "!" (ignored) is never requested.
  }
  return st;
}

export type DiffStatus = "added" | "modified" | "deleted" | "renamed" | "copied" | "type_changed";

export interface DiffFile {
  path: string;
  old_path?: string;
  status: DiffStatus;
  additions: number | null;
  deletions: number | null;
}

const RAW_STATUS: Record<string, DiffStatus> = {
  A: "added",
  M: "modified",
  D: "deleted",
  R: "renamed",
  C: "copied",
  T: "type_changed",
  U: "modified",
  X: "modified",
};

/**
 * `git diff --raw --numstat -z` output: raw records (":modes shas STATUS\0path\0[path\0]") first,
 * then numstat records ("add\tdel\tpath\0" or "add\tdel\t\0old\0new\0").
 */
export function parseRawNumstat(out: string): { files: DiffFile[]; complete: boolean } {
  const toks = out.split("\0");
  let complete = toks.pop() === "";
  const files: DiffFile[] = [];
  const byPath = new Map<string, DiffFile>();
  const counts: { path: string; add: number | null; del: number | null }[] = [];
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i] ?? "";
    if (t.startsWith(":")) {
      const letter = (t.split(" ")[4] ?? "M")[0] ?? "M";
      const status = RAW_STATUS[letter] ?? "modified";
      const two = letter === "R" || letter === "C";
      const a = toks[i + 1];
      const b = two ? toks[i + 2] : undefined;
      i += two ? 2 : 1;
      if (a === undefined || (two && b === undefined)) {
        complete = false;
        break;
      }
      const f: DiffFile =
        two && b !== undefined
          ? { path: b, old_path: a, status, additions: null, deletions: null }
          : { path: a, status, additions: null, deletions: null };
      files.push(f);
      byPath.set(f.path, f);
      continue;
    }
    const m = /^(-|\d+)\t(-|\d+)\t(.*)$/s.exec(t);
    if (!m) continue;
    const num = (s: string | undefined): number | null =>
      s === undefined || s === "-" ? null : Number(s);
    let path = m[3] ?? "";
    if (path === "") {
      // A rename or copy: old and new follow as their own tokens.
      const nw = toks[i + 2];
      i += 2;
      if (nw === undefined) {
        complete = false;
        break;
      }
      path = nw;
    }
    counts.push({ path, add: num(m[1]), del: num(m[2]) });
  }
  for (const c of counts) {
    const f = byPath.get(c.path);
    if (f) {
      f.additions = c.add;
      f.deletions = c.del;
    }
  }
  return { files, complete };
}

/** Sum of numstat lines ("add\tdel\tpath\0"), for a commit's summary. */
export function numstatTotals(out: string): {
  files: number;
  insertions: number;
  deletions: number;
} {
  let files = 0;
  let insertions = 0;
  let deletions = 0;
  const toks = out.split("\0");
  for (let i = 0; i < toks.length; i++) {
    const m = /^(-|\d+)\t(-|\d+)\t(.*)$/s.exec(toks[i] ?? "");
    if (!m) continue;
    files++;
    if (m[1] !== "-") insertions += Number(m[1]);
    if (m[2] !== "-") deletions += Number(m[2]);
    if (m[3] === "") i += 2; // rename: old and new paths follow
  }
  return { files, insertions, deletions };
}

export interface BranchEntry {
  name: string;
  sha: string;
  current: boolean;
  upstream?: string;
}

/** The for-each-ref format of git.branch: full refname, sha, "*" for HEAD, short upstream. */
export const BRANCH_FORMAT = "--format=%(refname)%00%(objectname)%00%(HEAD)%00%(upstream:short)";

export function parseBranches(out: string): BranchEntry[] {
  const list: BranchEntry[] = [];
  for (const line of out.split("\n")) {
    if (line === "") continue;
    const [ref = "", sha = "", head = "", upstream = ""] = line.split("\0");
    if (!ref.startsWith("refs/heads/") || !SHA.test(sha)) continue;
    list.push({
      name: ref.slice("refs/heads/".length),
      sha,
      current: head === "*",
      ...(upstream === "" ? {} : { upstream }),
    });
  }
  return list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
