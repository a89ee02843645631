# supervisord.conf, byte for byte what src/config/render/supervisord.ts renders; keep both in step
# (tests/unit/nix-generators.test.ts compares them on several manifests).
#
# Convention (all generators here): `manifest` is the EFFECTIVE manifest — fromTOML output with the
# schema defaults already applied (nix/default.nix does that with lib.applyDefaults), just as the
# TypeScript renderers receive the validated manifest. `sha256` is the manifest file's hex digest.
{ manifest, sha256 }:
let
  inherit (import ./lib.nix) joinPath;
  inherit (manifest) paths;
  bool = b: if b then "true" else "false";
  sock = joinPath paths.run "supervisor.sock";

  # Start order: priority, then name (names are ASCII, so byte order is JavaScript's order too).
  programs = builtins.sort (
    a: b: if a.priority != b.priority then a.priority < b.priority else a.name < b.name
  ) (builtins.attrValues (builtins.mapAttrs (name: p: p // { inherit name; }) manifest.programs));

  programLines = p: [
    ""
    "[program:${p.name}]"
    "command=${p.command}"
    "priority=${toString p.priority}"
    "autostart=true"
    "autorestart=${bool p.autorestart}"
    "startsecs=${toString p.startsecs}"
    "startretries=${toString p.startretries}"
    "stopsignal=TERM"
    "stopwaitsecs=10"
    "stopasgroup=true"
    "killasgroup=true"
    "stdout_logfile=/dev/stdout"
    "stdout_logfile_maxbytes=0"
    "redirect_stderr=true"
  ];

  lines = [
    "; supervisord.conf rendered from kruxos.toml by `kruxos config render`. Do not edit."
    "; manifest sha256: ${sha256}"
    ""
    "[unix_http_server]"
    "file=${sock}"
    "chmod=0700"
    ""
    "[supervisord]"
    "nodaemon=true"
    "logfile=/dev/null"
    "logfile_maxbytes=0"
    "loglevel=warn"
    "pidfile=${joinPath paths.run "supervisord.pid"}"
    "childlogdir=${paths.tmp}"
    ""
    "[rpcinterface:supervisor]"
    "supervisor.rpcinterface_factory=supervisor.rpcinterface:make_main_rpcinterface"
    ""
    "[supervisorctl]"
    "serverurl=unix://${sock}"
  ] ++ builtins.concatMap programLines programs;
in
builtins.concatStringsSep "\n" lines + "\n"
