// config: the manifest — loading, schema and semantic validation, runtime paths and rendering of
// supervisord.conf, compose.yaml, run.sh and the OCI config. It reads files but never starts,
// listens or writes anything except where a caller asks it to render.
export {
  loadManifest,
  validateManifestText,
  formatFinding,
  hasErrors,
  manifestSchema,
} from "./manifest.js";
export type { ValidationResult } from "./manifest.js";
export {
  RULES,
  CAPABILITY_CATEGORIES,
  SANDBOX_LAYERS,
  BUILTIN_SERVE_PROGRAMS,
  kruxosVerb,
  listeners,
  activeExceptions,
} from "./rules.js";
export type { Rule } from "./rules.js";
export {
  appLayout,
  auditDir,
  dataLayout,
  etcLayout,
  metricsSocket,
  runLayout,
  secretsLayout,
  imagePaths,
  hostPaths,
  mapManifestPath,
  policyFiles,
  withRuntimePaths,
  resolveManifestPath,
  IMAGE_MANIFEST,
} from "./paths.js";
export type { RuntimePaths } from "./paths.js";
export { AGENT_NAME, isAgentName } from "./names.js";
export {
  renderAll,
  renderSupervisordConf,
  renderOciConfig,
  renderCompose,
  renderRunSh,
  ociConfig,
  orderedPrograms,
} from "./render/index.js";
export type { RenderedFile } from "./render/index.js";
export type {
  Manifest,
  ProgramSpec,
  ExceptionSpec,
  Finding,
  LoadedManifest,
  PathsSpec,
  Severity,
} from "./types.js";
