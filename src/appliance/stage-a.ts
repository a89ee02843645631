// Stage A of the boot (SPEC §3), shared by `kruxos boot` (then supervisord) and `kruxos up` (then
// the in-process runner). One linear sequence; the order is the argument:
//   1. validate the manifest        — nothing runs on a config we have not checked
//   2. check the immutable root     — a writable app root means the image is not what was built
//   3. create the writable roots    — data, workspace, run, secrets, audit
//   4. first boot secrets           — vault key and first admin token, files 0600, never logged
//   5. validate the runtime closure — every artifact present; nothing is installed or downloaded
import { randomBytes } from "node:crypto";
import { chownSync, closeSync, openSync, rmSync } from "node:fs";
import path from "node:path";
import { KruxError, asKruxError, ensureDir, type Logger } from "../core/index.js";
import { formatFinding } from "../config/index.js";
import { Vault, ensureVaultKey, settlePendingRekey } from "../vault/index.js";
import { ensureInterceptionCa } from "./secrets-wiring.js";
import { ensureFirstAdmin, openDatabase } from "../state/index.js";
import { checkArtifacts, runtimeArtifacts } from "./artifacts.js";
import { loadContext, type ApplianceContext } from "./context.js";

export interface StageAOptions {
  readonly manifest?: string | undefined;
  readonly home?: string | undefined;
  /** `kruxos boot` needs supervisord; host mode runs programs in-process. */
  readonly withSupervisord: boolean;
}

export interface StageAResult {
  readonly ctx: ApplianceContext;
  readonly adminTokenFile: string;
  readonly firstBoot: boolean;
}

/** True when a file can be created in `dir` (the truth, unlike mode bits, on read-only mounts). */
export function isWritable(dir: string): boolean {
  const probe = path.join(dir, `.kruxos-write-probe-${randomBytes(4).toString("hex")}`);
  try {
    closeSync(openSync(probe, "wx"));
    rmSync(probe, { force: true });
    return true;
  } catch {
    return false;
  }
}

export async function stageA(opts: StageAOptions, log: Logger): Promise<StageAResult> {
  log.info(
    {
      event: "BootstrapStarted",
      pid: process.pid,
      mode: opts.home !== undefined ? "host" : "image",
    },
    "boot",
  );
  try {
    // 1. Manifest
    const ctx = loadContext({ manifest: opts.manifest, home: opts.home });
    for (const f of ctx.loaded.findings)
      log.warn(
        { event: "ManifestWarning", code: f.code, path: f.path, line: f.line },
        formatFinding(f),
      );
    const m = ctx.loaded.manifest;

    // 2. Immutable root
    if (isWritable(ctx.paths.app)) {
      log.warn(
        { event: "ImmutableRootWritable", path: ctx.paths.app, strict: m.appliance.strict },
        "the application root is writable",
      );
      if (m.appliance.strict)
        throw new KruxError(
          "ImmutableRootWritable",
          `${ctx.paths.app} is writable and [appliance].strict is true`,
        );
    }

    // 3. Writable roots
    ensureDir(ctx.paths.data, 0o750);
    ensureDir(ctx.paths.workspace, 0o750);
    // Sandboxes never run as root: a root appliance maps them to [sandbox].host_uid, so the
    // workspace they write is handed to that uid (SPEC §8).
    if (process.geteuid?.() === 0) {
      try {
        chownSync(ctx.paths.workspace, m.sandbox.host_uid, m.sandbox.host_uid);
      } catch (err) {
        // Root without CAP_CHOWN (a container with every capability dropped): the boot goes on,
        // and sandboxes will find the workspace read-only (or refuse, lacking CAP_SETUID for the
        // id map) rather than run as root.
        log.warn(
          { event: "WorkspaceOwnerUnchanged", error: (err as Error).message },
          "cannot hand the workspace to [sandbox].host_uid",
        );
      }
    }
    ensureDir(ctx.paths.run, 0o755);
    ensureDir(ctx.paths.metricsSocketDir, 0o700);
    ensureDir(ctx.paths.secretsDir, 0o700);
    ensureDir(ctx.paths.policyAgentsDir, 0o750);
    ensureDir(ctx.paths.auditDir, 0o750);
    if (opts.home !== undefined) {
      ensureDir(ctx.paths.etc, 0o755);
      ensureDir(ctx.paths.tmp, 0o700);
    }

    // 4. First boot secrets
    if (m.vault.key_source === "file") {
      const settled = settlePendingRekey(ctx.paths.secretsDir, ctx.paths.vaultDb);
      if (settled !== "none")
        log.warn(
          { event: "VaultRekeySettled", outcome: settled },
          settled === "finished"
            ? "an interrupted rekey had committed: the new vault key is in place"
            : "an interrupted rekey had not committed: the old vault key stays",
        );
    }
    const vaultCreated =
      m.vault.key_source === "file" ? ensureVaultKey(ctx.paths.secretsDir) : false;
    const caCreated = await firstBootInterceptionCa(ctx, log);
    const db = openDatabase(ctx.paths.agentsDb);
    let adminCreated: string | undefined;
    try {
      adminCreated = ensureFirstAdmin(db, ctx.paths.secretsDir);
    } finally {
      db.close();
    }
    const firstBoot = vaultCreated || caCreated || adminCreated !== undefined;
    if (firstBoot)
      log.info(
        {
          event: "FirstBootSecretsCreated",
          vault_key_created: vaultCreated,
          interception_ca_created: caCreated,
          admin_token_file: adminCreated,
        },
        "first boot: secrets created (values are in files, never in logs)",
      );

    // 5. Runtime closure
    const problems = await checkArtifacts(runtimeArtifacts(ctx, opts.withSupervisord));
    for (const p of problems)
      log.error(
        { event: "MissingArtifactDetected", artifact: p.artifact, path: p.path, detail: p.detail },
        "missing artifact",
      );
    if (problems.length > 0)
      throw new KruxError("MissingArtifact", `${problems.length} runtime artifact(s) missing`, {
        artifacts: problems.map((p) => p.artifact),
      });
    log.info({ event: "RuntimeClosureValidated" }, "runtime closure validated");

    return { ctx, adminTokenFile: ctx.paths.adminTokenFile, firstBoot };
  } catch (err) {
    const e = asKruxError(err);
    log.error({ event: "BootstrapFailed", code: e.code, reason: e.message }, "boot failed");
    throw e;
  }
}

/**
 * The interception CA, made once with the vault (its key is a vault secret). A vault that cannot be
 * opened is its own failing health later; the boot goes on without a CA.
 */
async function firstBootInterceptionCa(ctx: ApplianceContext, log: Logger): Promise<boolean> {
  const m = ctx.loaded.manifest;
  const vault = Vault.open({
    file: ctx.paths.vaultDb,
    secretsDir: ctx.paths.secretsDir,
    keySource: m.vault.key_source,
  });
  try {
    return vault.store ? await ensureInterceptionCa(vault.store, m.appliance.name) : false;
  } catch (err) {
    log.warn(
      { event: "InterceptionCaNotCreated", err: (err as Error).message },
      "the interception CA could not be created",
    );
    return false;
  } finally {
    vault.close();
  }
}
