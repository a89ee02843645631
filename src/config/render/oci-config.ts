// The OCI image config (the `config` object of the image configuration: User, ExposedPorts, Env,
// Entrypoint, Labels …). Canonical JSON, so nix/oci-config.nix (builtins.toJSON) agrees byte for byte.
import { canonicalJson } from "../../core/index.js";
import { appLayout, etcLayout } from "../paths.js";
import type { Manifest } from "../types.js";

export function ociConfig(m: Manifest, manifestSha256: string): Record<string, unknown> {
  const app = appLayout(m.paths.app);
  const bin = app.binDir;
  const ports = [m.gateway.port, m.dashboard.port, m.observability.metrics_port];
  return {
    Entrypoint: [app.command, "boot"],
    Env: [
      "HOME=" + m.paths.tmp,
      "KRUXOS_MANIFEST=" + etcLayout(m.paths.etc).bakedManifest,
      "NODE_ENV=production",
      `PATH=${bin}:/usr/local/bin:/usr/bin:/bin`,
    ],
    ExposedPorts: Object.fromEntries(ports.map((p) => [`${p}/tcp`, {}])),
    Labels: {
      "io.kruxos.manifest.sha256": manifestSha256,
      "org.opencontainers.image.title": m.appliance.name,
      "org.opencontainers.image.version": m.image.tag,
    },
    StopSignal: "SIGTERM",
    User: m.image.user,
    Volumes: { [m.paths.data]: {}, [m.paths.workspace]: {} },
    WorkingDir: m.paths.workspace,
  };
}

export function renderOciConfig(m: Manifest, manifestSha256: string): string {
  return canonicalJson(ociConfig(m, manifestSha256)) + "\n";
}
