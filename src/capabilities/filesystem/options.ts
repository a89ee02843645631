// Bounds of the filesystem capabilities. Every limit is enforced by the handler (the YAML schemas
// carry the same defaults as outer limits for the model to read).

export interface FilesystemOptions {
  /** Largest file filesystem.read returns (bytes). */
  readonly maxReadBytes: number;
  /** Largest content filesystem.write (and each file filesystem.copy) writes (bytes). */
  readonly maxWriteBytes: number;
  /** Most entries filesystem.list returns, and most entries a watch or copy tracks. */
  readonly maxListEntries: number;
  /** Most matches filesystem.search returns. */
  readonly maxSearchResults: number;
  /** Bytes filesystem.search scans in total before it stops (truncated). */
  readonly maxSearchBytes: number;
  /** Bytes scanned per file; the rest of a longer file is not searched. */
  readonly maxSearchFileBytes: number;
  /** Time a single file's regex match may take before the pattern is refused (ms). */
  readonly regexFileTimeoutMs: number;
  /** Most events filesystem.watch returns. */
  readonly maxWatchEvents: number;
  /** Longest watch window (ms). */
  readonly watchTimeoutMs: number;
  /** Interval between watch snapshots (ms). */
  readonly watchPollMs: number;
  /** Total bytes a directory copy may write. */
  readonly maxCopyBytes: number;
}

export const DEFAULT_OPTIONS: FilesystemOptions = {
  maxReadBytes: 10 * 1024 * 1024,
  maxWriteBytes: 10 * 1024 * 1024,
  maxListEntries: 10_000,
  maxSearchResults: 1_000,
  maxSearchBytes: 64 * 1024 * 1024,
  maxSearchFileBytes: 1024 * 1024,
  regexFileTimeoutMs: 1_000,
  maxWatchEvents: 1_000,
  watchTimeoutMs: 60_000,
  watchPollMs: 200,
  maxCopyBytes: 100 * 1024 * 1024,
};
