# Everything the image takes from the manifest, from builtins alone:
#   import ./nix { manifestPath = ./kruxos.toml; }
# gives the effective manifest (schema defaults applied), its sha256 and the rendered files. The
# flake uses it; so does tests/unit/nix-generators.test.ts, under a bare nix-instantiate, passing
# manifestPath as a string (`--argstr`) — readFile and hashFile accept either.
#
# This reads and fills in; it does not validate (unknown keys, semantic rules). The flake bakes the
# manifest only after `kruxos config validate` accepts it.
{
  manifestPath,
  schemaPath ? ../schema/kruxos.toml.schema.json,
}:
let
  lib = import ./lib.nix;
  schema = builtins.fromJSON (builtins.readFile schemaPath);
  manifest = lib.applyDefaults schema (builtins.fromTOML (builtins.readFile manifestPath));
  # The same digest `kruxos config render` labels the image with: SHA-256 of the file's bytes.
  sha256 = builtins.hashFile "sha256" manifestPath;
  args = { inherit manifest sha256; };
in
{
  inherit manifest sha256;
  supervisordConf = import ./supervisord.nix args;
  ociConfig = import ./oci-config.nix args;
  ociConfigAttrs = import ./oci-config-attrs.nix args;
}
