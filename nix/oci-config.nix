# oci-config.json, byte for byte what src/config/render/oci-config.ts's renderOciConfig() writes:
# canonical JSON of the config object plus a newline.
#
# Convention: `manifest` is the effective manifest (defaults applied, see nix/default.nix);
# `sha256` is the manifest file's hex digest.
{ manifest, sha256 }:
(import ./lib.nix).toCanonicalJSON (import ./oci-config-attrs.nix { inherit manifest sha256; })
+ "\n"
