// config: the manifest and everything derived from it — loading, JSON Schema and semantic
// validation, every runtime path and file location (config/paths.ts: app, data, secrets, run and
// etc layouts), the agent-name rule other subsystems key data by, and rendering of
// supervisord.conf, compose.yaml, run.sh and the OCI config. It reads the manifest and schemas; it
// never starts or listens, and writes nothing (the caller of a render writes the files).
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
