// pino JSON logs on stdout. Every line carries `program`; secret-bearing fields are redacted by path,
// and once a vault is open, every secret value (and its encodings) by content, wherever it sits.
import { pino, type Logger, type LevelWithSilent } from "pino";
import type { Redactor } from "./redact.js";

export type { Logger };

const REDACT_PATHS = [
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "headers['proxy-authorization']",
  "secret",
  "*.secret",
  "password",
  "*.password",
  "vault_key",
  "*.vault_key",
];

export interface LoggerOptions {
  readonly program: string;
  readonly level?: LevelWithSilent;
  /** Defaults to stdout (fd 1). Tests pass a stream to capture lines. */
  readonly destination?: pino.DestinationStream;
}

/** Where log lines get the redactor of every secret value from (set by a program holding a vault). */
let valueRedactor: (() => Redactor) | undefined;

/**
 * Redact every secret value from every log line of this process from now on: a second line behind
 * the code paths that never log values. `source` is asked per line (it caches).
 */
export function redactLogValues(source: (() => Redactor) | undefined): void {
  valueRedactor = source;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      hooks: {
        logMethod(args, method) {
          const r = valueRedactor?.();
          if (r === undefined || r.empty) return method.apply(this, args);
          return method.apply(this, r.value(args) as typeof args);
        },
      },
      level: opts.level ?? "info",
      base: { program: opts.program, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
