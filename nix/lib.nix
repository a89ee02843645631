# Builtins-only helpers for the pure generators in this folder. No nixpkgs `lib`: these run under a
# bare `nix-instantiate --eval` (tests/unit/nix-generators.test.ts) as well as inside the flake.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    elemAt
    filter
    floor
    foldl'
    genList
    isAttrs
    isFloat
    isList
    isString
    length
    listToAttrs
    mapAttrs
    replaceStrings
    split
    substring
    ;

  hasPrefix = prefix: s: substring 0 (builtins.stringLength prefix) s == prefix;
in
rec {
  # Fill in defaults the way ajv `useDefaults` does for schema/kruxos.toml.schema.json, reading the
  # default values from the schema itself so they live in one place:
  #   - `properties`: a missing key whose subschema has a `default` gets that default, then every
  #     present property is walked with its subschema (so `appliance = {}` from its default is
  #     filled in next, and the default `programs` map is walked like a written one);
  #   - `additionalProperties` (an object schema): every key not named in `properties` is walked
  #     with it — `programs.<name>`, `security.exceptions.<feature>`;
  #   - `items` (one schema): every element is walked (no array of objects today; kept so a
  #     future one is not silently skipped).
  # One deliberate addition: JavaScript has a single number type, so ajv accepts a TOML `10.0`
  # where the schema says "integer" and the renderers print it as `10`. fromTOML gives a float
  # (`toString` prints `10.000000`), so integral floats under an "integer" schema become ints.
  applyDefaults =
    schema: value:
    let
      props = schema.properties or { };
      extra = schema.additionalProperties or false;
      missing = filter (k: !(value ? ${k}) && props.${k} ? default) (attrNames props);
      filled = value // listToAttrs (map (k: { name = k; value = props.${k}.default; }) missing);
      walk =
        k: v:
        if props ? ${k} then
          applyDefaults props.${k} v
        else if isAttrs extra then
          applyDefaults extra v
        else
          v;
    in
    if isAttrs value then
      mapAttrs walk filled
    else if isList value && isAttrs (schema.items or null) then
      map (applyDefaults schema.items) value
    else if (schema.type or null) == "integer" && isFloat value && floor value == value then
      floor value
    else
      value;

  # Node's path.posix.join(dir, name) for a plain file name: join, then normalise — collapse
  # repeated slashes, drop ".", resolve ".." (never above "/" for an absolute path).
  joinPath =
    dir: name:
    let
      p = "${dir}/${name}";
      absolute = hasPrefix "/" p;
      segments = filter (s: isString s && s != "" && s != ".") (split "/" p);
      lastOf = l: elemAt l (length l - 1);
      dropLast = l: genList (elemAt l) (length l - 1);
      step =
        acc: s:
        if s != ".." then
          acc ++ [ s ]
        else if acc != [ ] && lastOf acc != ".." then
          dropLast acc
        else if absolute then
          acc
        else
          acc ++ [ ".." ];
      joined = concatStringsSep "/" (foldl' step [ ] segments);
    in
    if absolute then
      "/" + joined
    else if joined == "" then
      "."
    else
      joined;

  # Canonical JSON as src/core/canonical-json.ts writes it (keys sorted, compact). builtins.toJSON
  # sorts keys and is compact, but escapes backspace and form feed as \u0008 and \u000c where
  # JSON.stringify writes \b and \f. Every backslash in toJSON's output starts an escape, so one
  # left-to-right pass that first consumes escaped backslashes ("\\") rewrites only real escapes.
  toCanonicalJSON =
    value:
    replaceStrings [ "\\\\" "\\u0008" "\\u000c" ] [ "\\\\" "\\b" "\\f" ] (builtins.toJSON value);
}
