// `npm run image`: build the appliance OCI image without Nix (see scripts/image/build.ts) and, unless
// --no-load, load it into podman. Progress goes to stderr; the summary to stdout (--json: one object).
import { parseArgs } from "node:util";
import { buildImage, BuildError, type BuildResult } from "./image/build.js";

const USAGE = `usage: node dist/scripts/build-image.js [options]

Build the KruxOS OCI image from kruxos.toml, Debian packages (mmdebstrap) and the built app.

  --manifest FILE     manifest to build from (default: kruxos.toml at the repository root)
  --out PATH          archive to write (default: .kruxos-build/kruxos-<tag>.oci.tar)
  --no-load           only write the archive; do not podman load it
  --no-cache          rebuild the Debian base layer even when a cached one matches
  --epoch SECONDS     build epoch (default: SOURCE_DATE_EPOCH, else HEAD's commit time, else 0)
  --require-helper    fail when native/build/kruxos-sandbox has not been built
  --json              print the result as one JSON object
  -h, --help          show this help
`;

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        manifest: { type: "string" },
        out: { type: "string" },
        "no-load": { type: "boolean", default: false },
        "no-cache": { type: "boolean", default: false },
        epoch: { type: "string" },
        "require-helper": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`build-image: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let epoch: number | undefined;
  if (values.epoch !== undefined) {
    epoch = Number(values.epoch);
    if (!/^\d+$/.test(values.epoch) || !Number.isSafeInteger(epoch)) {
      process.stderr.write(
        `build-image: --epoch must be a whole number of seconds, got ${values.epoch}\n`,
      );
      return 2;
    }
  }

  const started = performance.now();
  try {
    const result = await buildImage({
      ...(values.manifest !== undefined ? { manifestPath: values.manifest } : {}),
      ...(values.out !== undefined ? { out: values.out } : {}),
      ...(epoch !== undefined ? { epoch } : {}),
      load: !values["no-load"],
      noCache: values["no-cache"],
      requireHelper: values["require-helper"],
      log: (line) => process.stderr.write(`${line}\n`),
    });
    const totalMs = Math.round(performance.now() - started);
    process.stdout.write(
      values.json ? JSON.stringify(toJson(result, totalMs)) + "\n" : toLines(result, totalMs),
    );
    return 0;
  } catch (err) {
    const message = err instanceof BuildError ? err.message : ((err as Error).stack ?? String(err));
    process.stderr.write(`build-image: failed: ${message}\n`);
    return 1;
  }
}

function toJson(r: BuildResult, totalMs: number): Record<string, unknown> {
  return {
    reference: r.reference,
    archive_path: r.archivePath,
    archive_bytes: r.archiveBytes,
    image_bytes: r.imageBytes ?? null,
    image_id: r.imageId,
    manifest_digest: r.manifestDigest,
    layers: r.layers.map((l) => ({
      name: l.name,
      digest: l.digest,
      diff_id: l.diffId,
      size: l.size,
    })),
    app_layer_digest: r.appLayerDigest,
    epoch: r.epoch,
    base_cached: r.baseCached,
    helper_included: r.helperIncluded,
    loaded: r.loaded,
    timings_ms: { ...r.timingsMs, total: totalMs },
  };
}

function toLines(r: BuildResult, totalMs: number): string {
  const lines = [
    `image             ${r.reference}${r.loaded ? "" : " (not loaded)"}`,
    `image_id          ${r.imageId}`,
    `manifest_digest   ${r.manifestDigest}`,
    `archive           ${r.archivePath}`,
    `archive_bytes     ${r.archiveBytes} (${mib(r.archiveBytes)})`,
    ...(r.imageBytes !== undefined
      ? [`image_bytes       ${r.imageBytes} (${mib(r.imageBytes)})`]
      : []),
    ...r.layers.map(
      (l) =>
        `layer ${l.name.padEnd(12)} ${l.digest} ${mib(l.size)}${l.name === "base" && r.baseCached ? " (cached)" : ""}`,
    ),
    `app_layer_digest  ${r.appLayerDigest}`,
    `time              ${(totalMs / 1000).toFixed(1)} s`,
  ];
  return lines.join("\n") + "\n";
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

process.exitCode = await main(process.argv.slice(2));
