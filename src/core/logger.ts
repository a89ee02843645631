// pino JSON logs on stdout. Every line carries `program`; secret-bearing fields are redacted by path.
import { pino, type Logger, type LevelWithSilent } from "pino";

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

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level ?? "info",
      base: { program: opts.program, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
