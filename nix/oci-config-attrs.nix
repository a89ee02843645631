# The OCI image `config` object (User, ExposedPorts, Env, Entrypoint, Labels …) as an attribute
# set: what src/config/render/oci-config.ts's ociConfig() returns. The flake hands it to
# dockerTools as the image config; nix/oci-config.nix serialises it to oci-config.json.
#
# Convention: `manifest` is the effective manifest (defaults applied, see nix/default.nix);
# `sha256` is the manifest file's hex digest.
{ manifest, sha256 }:
let
  inherit (import ./lib.nix) joinPath;
  inherit (manifest) paths;
  bin = joinPath paths.app "bin";
  # listToAttrs rather than `{ ${a} = …; ${b} = …; }`: equal keys collapse into one, as they do
  # in Object.fromEntries, instead of failing evaluation.
  emptyObjects = keys: builtins.listToAttrs (map (name: { inherit name; value = { }; }) keys);
in
{
  Entrypoint = [
    (joinPath bin "kruxos")
    "boot"
  ];
  Env = [
    "HOME=${paths.tmp}"
    "KRUXOS_MANIFEST=${joinPath paths.etc "kruxos.toml"}"
    "NODE_ENV=production"
    "PATH=${bin}:/usr/local/bin:/usr/bin:/bin"
  ];
  ExposedPorts = emptyObjects (
    map (port: "${toString port}/tcp") [
      manifest.gateway.port
      manifest.dashboard.port
      manifest.observability.metrics_port
    ]
  );
  Labels = {
    "io.kruxos.manifest.sha256" = sha256;
    "org.opencontainers.image.title" = manifest.appliance.name;
    "org.opencontainers.image.version" = manifest.image.tag;
  };
  StopSignal = "SIGTERM";
  User = manifest.image.user;
  Volumes = emptyObjects [
    paths.data
    paths.workspace
  ];
  WorkingDir = paths.workspace;
}
