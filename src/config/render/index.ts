// Rendering: the four files `kruxos config render` writes, each a pure function of the manifest.
import type { Manifest } from "../types.js";
import { renderCompose, renderRunSh } from "./container-run.js";
import { renderOciConfig } from "./oci-config.js";
import { renderSupervisordConf } from "./supervisord.js";

export { ociConfig, renderOciConfig } from "./oci-config.js";
export { renderSupervisordConf, orderedPrograms } from "./supervisord.js";
export { renderCompose, renderRunSh } from "./container-run.js";

export interface RenderedFile {
  readonly name: string;
  readonly content: string;
  readonly mode: number;
}

export function renderAll(m: Manifest, manifestSha256: string): RenderedFile[] {
  return [
    { name: "supervisord.conf", content: renderSupervisordConf(m, manifestSha256), mode: 0o644 },
    { name: "compose.yaml", content: renderCompose(m, manifestSha256), mode: 0o644 },
    { name: "run.sh", content: renderRunSh(m, manifestSha256), mode: 0o755 },
    { name: "oci-config.json", content: renderOciConfig(m, manifestSha256), mode: 0o644 },
  ];
}
