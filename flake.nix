{
  description = "KruxOS: an appliance that runs untrusted AI agents safely";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];

      # The app, node-gyp's headers for better-sqlite3 and the image must agree on one Node. The
      # importNpmLock hooks take their headers from `nodejs`, so point `nodejs` at Node 20 rather
      # than passing nodejs_20 to buildNpmPackage alone.
      pkgsFor =
        system:
        import nixpkgs {
          inherit system;
          overlays = [ (_final: prev: { nodejs = prev.nodejs_20; }) ];
        };
      forAllSystems = f: lib.genAttrs systems (system: f (pkgsFor system));

      # Everything the image takes from the manifest, by the builtins-only generators in nix/
      # (byte-equal to `kruxos config render`; checks.render-parity holds them to it).
      rendered = import ./nix { manifestPath = ./kruxos.toml; };
      inherit (rendered) manifest;

      packageJson = lib.importJSON ./package.json;

      # package-lock.json carries no `resolved` URLs (the project's npm config sets
      # omit-lockfile-registry-resolved). Neither nixpkgs fetcher copes with that as is:
      # importNpmLock fetches only entries that have `resolved`, and prefetch-npm-deps (behind
      # npmDepsHash) skips them, so the offline `npm install` finds an empty cache. A registry
      # package's tarball URL follows from its name and version, so fill it in here; importNpmLock
      # then fetches each tarball with fetchurl against the lockfile's own `integrity`. There is no
      # separate dependency hash: changing package-lock.json is the whole update step.
      # The registry is the user's, never written here: KRUXOS_NPM_REGISTRY (for example the output
      # of `npm config get registry`), read with --impure. Only building the app needs it.
      npmRegistry =
        let
          r = builtins.getEnv "KRUXOS_NPM_REGISTRY";
        in
        if r == "" then
          throw "set KRUXOS_NPM_REGISTRY to your npm registry's base URL (npm config get registry) and pass --impure: the app's dependency tarballs are fetched from it"
        else
          lib.removeSuffix "/" r;

      npmLock =
        let
          lock = lib.importJSON ./package-lock.json;
          # "node_modules/a/node_modules/@scope/b" installs "@scope/b"; an alias records the real
          # package in `name`.
          tarballUrl =
            key: entry:
            let
              name = entry.name or (lib.last (lib.splitString "node_modules/" key));
            in
            "${npmRegistry}/${name}/-/${lib.last (lib.splitString "/" name)}-${entry.version}.tgz";
          isRegistryEntry =
            key: entry:
            key != "" && !(entry ? resolved) && !(entry.link or false) && !(entry.inBundle or false);
        in
        lock
        // {
          packages = lib.mapAttrs (
            key: entry:
            if isRegistryEntry key entry then entry // { resolved = tarballUrl key entry; } else entry
          ) lock.packages;
        };

      # Build inputs only: editing a test, a doc or the flake does not rebuild the app.
      appSrc = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.difference ./. (
          lib.fileset.unions (
            map lib.fileset.maybeMissing [
              ./tests
              ./docs
              ./bench
              ./sdk
              ./nix
              ./flake.nix
              ./flake.lock
              ./node_modules
              ./dist
              ./.kruxos
              ./.kruxos-build
            ]
          )
        );
      };

      # The C helper from native/ (`make` with plain cc; native/Makefile writes build/kruxos-sandbox).
      sandboxFor =
        pkgs:
        pkgs.stdenv.mkDerivation {
          pname = "kruxos-sandbox";
          inherit (packageJson) version;
          src = ./native;
          # native/Makefile sets its own hardening (-D_FORTIFY_SOURCE=2, full RELRO) under -Werror.
          # The cc-wrapper's fortify flag would define _FORTIFY_SOURCE a second time, which some
          # wrapper versions let through as a redefinition warning — fatal under -Werror.
          hardeningDisable = [
            "fortify"
            "fortify3"
          ];
          installPhase = ''
            runHook preInstall
            install -Dm755 build/kruxos-sandbox $out/bin/kruxos-sandbox
            runHook postInstall
          '';
          meta = {
            description = "KruxOS per-call kernel sandbox helper";
            mainProgram = "kruxos-sandbox";
            platforms = lib.platforms.linux;
          };
        };

      # The app, laid out as the application root (/opt/kruxos in the image) under
      # $out/lib/kruxos, with $out/bin/kruxos. Only TypeScript is compiled here (`build:ts`): the
      # helper is the kruxos-sandbox package, copied to native/build/ where a source checkout
      # keeps it, so it is compiled once and with one set of hardening flags.
      kruxosFor =
        pkgs:
        let
          sandbox = sandboxFor pkgs;
        in
        pkgs.buildNpmPackage {
          pname = "kruxos";
          inherit (packageJson) version;
          src = appSrc;
          nodejs = pkgs.nodejs_20;
          npmDeps = pkgs.importNpmLock {
            package = packageJson;
            packageLock = npmLock;
          };
          npmConfigHook = pkgs.importNpmLock.npmConfigHook;
          npmBuildScript = "build:ts";
          nativeBuildInputs = [ pkgs.jq ];
          installPhase = ''
            runHook preInstall
            app=$out/lib/kruxos
            mkdir -p $app $out/bin

            # Ship what package.json "files" lists (npm's own packing rules), plus production
            # node_modules.
            npm prune --omit=dev --no-save
            npm pack --dry-run --json --ignore-scripts --loglevel=warn \
              | jq -r '.[0].files[].path' \
              | while IFS= read -r f; do install -Dm644 "$f" "$app/$f"; done
            cp -R node_modules $app/
            # importNpmLock installed from a package.json whose dependencies are store paths; ship
            # the real one (the app root is found by it), and drop npm's hidden lockfile, which
            # records every tarball's store path and would pull all of them into the closure.
            cp .package.json.orig $app/package.json
            rm -f $app/node_modules/.package-lock.json
            # node-gyp leaves objects, Makefiles and config.gypi (pointing at the Node sources)
            # beside the addons; only build/Release/*.node is loaded.
            find $app/node_modules -path '*/build/config.gypi' -print0 \
              | while IFS= read -r -d "" gyp; do
                  build=$(dirname "$gyp")
                  find "$build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
                  find "$build/Release" -mindepth 1 -maxdepth 1 ! -name '*.node' -exec rm -rf {} +
                done

            install -Dm755 ${sandbox}/bin/kruxos-sandbox $app/native/build/kruxos-sandbox
            chmod 755 $app/bin/kruxos
            ln -s $app/bin/kruxos $out/bin/kruxos
            runHook postInstall
          '';
          passthru = { inherit sandbox; };
          meta = {
            description = "KruxOS appliance: gateway, policy, sandbox, audit, dashboard and CLI";
            mainProgram = "kruxos";
            platforms = lib.platforms.linux;
          };
        };

      # The OCI image: every store path in its own layer (nodejs, git, supervisor, … apart from
      # the app), then one customisation layer with /etc, the app root and the writable roots.
      imageFor =
        pkgs:
        let
          kruxos = kruxosFor pkgs;
          inherit (manifest) paths image;
          ids = lib.splitString ":" image.user;
          uid = lib.elemAt ids 0;
          gid = lib.elemAt ids 1;
          # "/opt/kruxos/" → "./opt/kruxos": a path inside the image root, as fakeRootCommands sees it.
          inRoot = p: "." + lib.removeSuffix "/" p;

          # The baked manifest and the rendered supervisord.conf. The manifest is baked only if
          # the real validator accepts it: the generators fill in defaults but check nothing.
          etcKruxos =
            pkgs.runCommand "kruxos-etc"
              {
                nativeBuildInputs = [ kruxos ];
                supervisordConf = rendered.supervisordConf;
                passAsFile = [ "supervisordConf" ];
              }
              ''
                export HOME=$TMPDIR
                kruxos config validate --manifest ${./kruxos.toml}
                etc=$out${lib.escapeShellArg paths.etc}
                install -Dm444 ${./kruxos.toml} "$etc/kruxos.toml"
                install -Dm444 "$supervisordConfPath" "$etc/supervisord.conf"
              '';

          # Name resolution for the non-root user (git, ssh and Node's os.userInfo() ask for it).
          etcUsers = pkgs.runCommand "kruxos-etc-users" { } ''
            mkdir -p $out/etc
            cat > $out/etc/passwd <<'EOF'
            root:x:0:0:root:/root:/sbin/nologin
            kruxos:x:${uid}:${gid}:KruxOS:${paths.tmp}:/sbin/nologin
            EOF
            cat > $out/etc/group <<'EOF'
            root:x:0:
            kruxos:x:${gid}:
            EOF
            echo 'hosts: files dns' > $out/etc/nsswitch.conf
          '';
        in
        pkgs.dockerTools.buildLayeredImage {
          inherit (image) name tag;
          contents = [
            pkgs.nodejs_20
            pkgs.git
            pkgs.python3Packages.supervisor
            pkgs.cacert
            kruxos
            etcUsers
            etcKruxos
          ];
          # The image config is the generators' attribute set: the same object as
          # `kruxos config render`'s oci-config.json.
          config = rendered.ociConfigAttrs;
          fakeRootCommands = ''
            mkdir -p ${lib.escapeShellArg (dirOf (inRoot paths.app))}
            ln -s ${kruxos}/lib/kruxos ${lib.escapeShellArg (inRoot paths.app)}
            mkdir -p ${lib.escapeShellArg (inRoot paths.data)} ${lib.escapeShellArg (inRoot paths.workspace)}
            chown ${uid}:${gid} ${lib.escapeShellArg (inRoot paths.data)} ${lib.escapeShellArg (inRoot paths.workspace)}
            # Mount points for the tmpfs mounts of the hardened run.
            mkdir -p ${lib.escapeShellArg (inRoot paths.run)} ${lib.escapeShellArg (inRoot paths.tmp)}
            chmod 1777 ${lib.escapeShellArg (inRoot paths.tmp)}
          '';
        };
    in
    {
      packages = forAllSystems (pkgs: rec {
        kruxos = kruxosFor pkgs;
        kruxos-sandbox = kruxos.sandbox;
        image = imageFor pkgs;
        default = kruxos;
      });

      # `nix run` = host mode: everything in one process, state under ./.kruxos.
      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe (
            pkgs.writeShellApplication {
              name = "kruxos-up";
              text = ''exec ${lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.kruxos} up "$@"'';
            }
          );
          meta.description = "Run KruxOS on this host (kruxos up)";
        };
      });

      checks = forAllSystems (
        pkgs:
        let
          inherit (self.packages.${pkgs.stdenv.hostPlatform.system}) kruxos kruxos-sandbox;
        in
        {
          inherit kruxos kruxos-sandbox;
          # The Nix generators and `kruxos config render` write the same bytes for this manifest.
          render-parity =
            pkgs.runCommand "kruxos-render-parity"
              {
                nativeBuildInputs = [ kruxos ];
                inherit (rendered) supervisordConf ociConfig;
                passAsFile = [
                  "supervisordConf"
                  "ociConfig"
                ];
              }
              ''
                export HOME=$TMPDIR
                kruxos config validate --manifest ${./kruxos.toml}
                kruxos config render --manifest ${./kruxos.toml} --out rendered
                diff -u rendered/supervisord.conf "$supervisordConfPath"
                diff -u rendered/oci-config.json "$ociConfigPath"
                touch $out
              '';
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.nodejs_20
            pkgs.gcc
            pkgs.gnumake
            pkgs.git
            pkgs.python3Packages.supervisor
            pkgs.nix
            pkgs.nixfmt-rfc-style
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
