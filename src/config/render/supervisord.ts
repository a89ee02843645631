// supervisord.conf. nix/supervisord.nix produces the same bytes from the same manifest; keep both
// in step (tests/unit/nix-generators.test.ts compares them).
import { runLayout } from "../paths.js";
import type { Manifest } from "../types.js";

/** Programs in start order: priority, then name. */
export function orderedPrograms(m: Manifest): [string, Manifest["programs"][string]][] {
  return Object.entries(m.programs).sort(([an, a], [bn, b]) =>
    a.priority !== b.priority ? a.priority - b.priority : an < bn ? -1 : an > bn ? 1 : 0,
  );
}

export function renderSupervisordConf(m: Manifest, manifestSha256: string): string {
  const run = runLayout(m.paths.run);
  const sock = run.supervisorSocket;
  const lines = [
    "; supervisord.conf rendered from kruxos.toml by `kruxos config render`. Do not edit.",
    `; manifest sha256: ${manifestSha256}`,
    "",
    "[unix_http_server]",
    `file=${sock}`,
    "chmod=0700",
    "",
    "[supervisord]",
    "nodaemon=true",
    // supervisord echoes its own log to the console in nodaemon mode; a logfile would duplicate it.
    "logfile=/dev/null",
    "logfile_maxbytes=0",
    "loglevel=warn",
    `pidfile=${run.supervisordPid}`,
    `childlogdir=${m.paths.tmp}`,
    "",
    "[rpcinterface:supervisor]",
    "supervisor.rpcinterface_factory=supervisor.rpcinterface:make_main_rpcinterface",
    "",
    "[supervisorctl]",
    `serverurl=unix://${sock}`,
  ];
  for (const [name, p] of orderedPrograms(m)) {
    lines.push(
      "",
      `[program:${name}]`,
      `command=${p.command}`,
      `priority=${p.priority}`,
      "autostart=true",
      `autorestart=${p.autorestart ? "true" : "false"}`,
      `startsecs=${p.startsecs}`,
      `startretries=${p.startretries}`,
      "stopsignal=TERM",
      "stopwaitsecs=10",
      "stopasgroup=true",
      "killasgroup=true",
      "stdout_logfile=/dev/stdout",
      "stdout_logfile_maxbytes=0",
      "redirect_stderr=true",
    );
  }
  return lines.join("\n") + "\n";
}
