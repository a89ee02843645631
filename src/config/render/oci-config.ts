// The OCI image config (the `config` object of the image configuration: User, ExposedPorts, Env,
// Entrypoint, Labels …). Canonical JSON, so nix/oci-config.nix (builtins.toJSON) agrees byte for byte.
import path from "node:path";
import { canonicalJson } from "../../core/index.js";
import type { Manifest } from "../types.js";

export function ociConfig(m: Manifest, manifestSha256: string): Record<string, unknown> {
  const bin = path.join(m.paths.app, "bin");
  const ports = [m.gateway.port, m.dashboard.port, m.observability.metrics_port];
  return {
    Entrypoint: [path.join(bin, "kruxos"), "boot"],
    Env: [
      "HOME=" + m.paths.tmp,
      "KRUXOS_MANIFEST=" + path.join(m.paths.etc, "kruxos.toml"),
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
