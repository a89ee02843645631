// kill -9 under load: the appliance is killed with SIGKILL at a random moment while agents are
// calling it, again and again on the same home, and every call it acknowledged keeps its audit
// record. An acknowledged reply carries `audit_seq`, the seq of the call's result record; after
// the last cycle the log must verify as intact, have no seq gap, and hold at each acknowledged seq
// the result record of that very call (kind, agent, capability and the caller's session — a seq
// reused after a cut would belong to a later session). A crash-torn tail cut at open
// (`audit.tail_repaired`) is expected and counted; it must never have held an acknowledged record.
//
// Cycles: 10 by default, `KRUXOS_SOAK_CYCLES` for more (`npm run soak` runs 1,000). The kill delays
// and each lane's call mix come from seeded PRNGs: the seed is printed, `KRUXOS_SOAK_SEED` replays
// them (the exact moment a kill lands in a call still depends on the machine).
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { auditDir, tailAudit, type AuditRecord } from "../../src/audit/index.js";
import { tempDir } from "../helpers/repo.js";
import { RpcClient, type RpcReply } from "../helpers/rpc-client.js";
import {
  defaultManifest,
  operatorCli,
  portOf,
  startHost,
  waitReady,
  withFreePorts,
  type Appliance,
  type ManifestObject,
} from "../contract/harness.js";
import { mulberry32 as prng } from "../helpers/rng.js";

const CYCLES = positiveInt("KRUXOS_SOAK_CYCLES", 10);
const SEED = positiveInt("KRUXOS_SOAK_SEED", (Date.now() % 0x7fffffff) + 1);
const AGENT = "soak";
const CLIENTS = 4; // WebSockets per cycle…
const IN_FLIGHT = 2; // …each with this many calls outstanding
const LOAD_MS = { min: 300, max: 1500 }; // load before the kill
const READY_TIMEOUT_MS = 60_000;

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer: ${raw}`);
  return n;
}

interface Ack {
  readonly cycle: number;
  readonly capability: string;
  readonly session: string;
  readonly seq: number;
}

const root = tempDir("kruxos-kill9-");
const home = path.join(root.dir, "home");
let current: Appliance | undefined;
const open = new Set<RpcClient>();
// The appliance's warn and error log lines (a clean boot logs none), for the report and for
// failure messages: a torn tail cut at open says so here (AuditTailRepaired).
const notable: string[] = [];

async function keepNotable(a: Appliance, label: string): Promise<void> {
  for (const l of await a.logLines())
    if (Number(l.level) >= 40 && notable.length < 200)
      notable.push(`${label}: ${String(l.event ?? "")} ${String(l.msg ?? "")}`.slice(0, 400));
}

after(async () => {
  for (const c of open) c.ws.terminate();
  await current?.cleanup();
  root.cleanup();
});

/** A reply, or "closed" when the socket went away first (the kill): RpcClient alone would wait forever. */
function callOrClosed(
  c: RpcClient,
  closed: Promise<"closed">,
  name: string,
  inputs: unknown,
): Promise<RpcReply | "closed"> {
  if (c.ws.readyState !== c.ws.OPEN) return Promise.resolve("closed");
  return Promise.race([c.invoke(name, inputs), closed]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function tail(text: string, n = 3000): string {
  return text.length > n ? `…${text.slice(-n)}` : text;
}

/** `kruxos up` on the shared home, ready; on failure, says when and shows the appliance's log. */
async function startReady(m: ManifestObject, what: string): Promise<Appliance> {
  const a = await startHost(m, { home });
  current = a;
  try {
    await waitReady(a, READY_TIMEOUT_MS);
    return a;
  } catch (err) {
    throw new Error(
      `seed ${SEED}: the appliance did not reach /ready within ${READY_TIMEOUT_MS} ms ${what}: ${String(err)}\n` +
        `its log:\n${tail(await a.logText())}`,
      { cause: err },
    );
  }
}

test(
  "every acknowledged call keeps its audit record through kill -9 under load",
  {
    timeout: 180_000 + CYCLES * 60_000,
  },
  async (t) => {
    // One stream for the kill delays, one per lane for its calls, so that neither depends on how
    // many calls the other made before (which depends on timing).
    const killDelay = prng(SEED);
    const base = await withFreePorts(defaultManifest());
    // Load must not be refused for rate: these limits are not what is under test.
    const m: ManifestObject = {
      ...base,
      gateway: { ...base.gateway, calls_per_second: 100_000, max_concurrent_calls: 1024 },
    };
    // filesystem.write is approval_required by default (the system layer's `defaults`); the system
    // layer has no entry for it, so the agent's own layer may decide autonomous.
    const agentPolicyDir = path.join(home, "data", "policy", "agents");
    mkdirSync(agentPolicyDir, { recursive: true });
    writeFileSync(
      path.join(agentPolicyDir, `${AGENT}.yaml`),
      "version: 1\ncapabilities:\n  filesystem.write: { tier: autonomous }\n",
    );

    let a = await startReady(m, "at first boot");
    const cli = operatorCli(a);
    const made = await cli(["agent", "create", AGENT, "--json"]);
    assert.equal(made.code, 0, `agent create failed: ${made.stdout}${made.stderr}`);
    const token = (JSON.parse(made.stdout) as { token: string }).token;
    const check = await cli([
      "policy",
      "check",
      "--agent",
      AGENT,
      "--capability",
      "filesystem.write",
      "--json",
    ]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.equal(
      (JSON.parse(check.stdout) as { decision?: { tier?: string } }).decision?.tier,
      "autonomous",
      `the agent policy did not make filesystem.write autonomous:\n${check.stdout}`,
    );

    const port = portOf(m, "gateway");
    const acks: Ack[] = [];
    const refused = new Map<string, number>();
    const readyMs: number[] = [];
    let writes = 0;
    let cutByKill = 0; // calls sent whose reply never came: the kill landed under load
    let killedAt = 0;

    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      if (cycle > 1) {
        a = await startReady(m, `after the kill of cycle ${cycle - 1}`);
        // From the kill to /ready: the restart, the audit log's recovery and the boot.
        readyMs.push(Date.now() - killedAt);
      }
      const clients: { c: RpcClient; closed: Promise<"closed">; session: string }[] = [];
      for (let i = 0; i < CLIENTS; i++) {
        const c = await RpcClient.connect(port, token);
        open.add(c);
        c.ws.on("error", () => undefined); // the kill resets the socket; "close" says it
        const closed = new Promise<"closed">((r) => c.ws.once("close", () => r("closed")));
        const who = await callOrClosed(c, closed, "agent.whoami", {});
        assert.ok(
          who !== "closed" && who.result?.success === true,
          `seed ${SEED} cycle ${cycle}: agent.whoami failed before any kill: ${JSON.stringify(who)}`,
        );
        const session = String((who.result.data as { session: string }).session);
        acks.push({
          cycle,
          capability: "agent.whoami",
          session,
          seq: Number(who.result.audit_seq),
        });
        clients.push({ c, closed, session });
      }

      let killed = false;
      const one = async (
        k: { c: RpcClient; closed: Promise<"closed">; session: string },
        lane: string,
        random: () => number,
      ): Promise<void> => {
        for (let n = 0; !killed; n++) {
          const write = random() < 0.5;
          const capability = write ? "filesystem.write" : "agent.whoami";
          const inputs = write
            ? {
                path: `soak/${lane}-${n % 8}.txt`,
                content: `cycle ${cycle} lane ${lane} call ${n}\n`,
                create_dirs: true,
              }
            : {};
          const r = await callOrClosed(k.c, k.closed, capability, inputs);
          if (r === "closed") {
            cutByKill++;
            return;
          }
          if (r.result?.success === true && typeof r.result.audit_seq === "number") {
            acks.push({ cycle, capability, session: k.session, seq: r.result.audit_seq });
            if (write) writes++;
          } else {
            const why = `${capability}: ${String(r.error?.data?.type ?? r.error?.message ?? JSON.stringify(r))}`;
            refused.set(why, (refused.get(why) ?? 0) + 1);
          }
        }
      };
      const lanes = clients.flatMap((k, i) =>
        Array.from({ length: IN_FLIGHT }, (_, j) =>
          one(k, `c${i}l${j}`, prng(SEED + cycle * 1_000 + i * IN_FLIGHT + j)),
        ),
      );
      const delay = LOAD_MS.min + Math.floor(killDelay() * (LOAD_MS.max - LOAD_MS.min));
      await new Promise((r) => setTimeout(r, delay));
      killed = true;
      const pid = a.pid;
      assert.ok(pid !== undefined, "the harness gave no pid for the appliance");
      assert.ok(
        alive(pid),
        `seed ${SEED} cycle ${cycle}: the appliance exited by itself under load:\n${tail(await a.logText())}`,
      );
      // In host mode `kruxos up` runs the proxy, gateway, dashboard and seal inside its one process
      // (no supervisord, no children for them), so SIGKILL to that pid kills the whole appliance.
      process.kill(pid, "SIGKILL");
      killedAt = Date.now();
      await a.waitExit(15_000);
      assert.ok(!alive(pid), `seed ${SEED} cycle ${cycle}: pid ${pid} survived SIGKILL`);
      await Promise.all(lanes);
      for (const k of clients) {
        k.c.ws.terminate();
        open.delete(k.c);
      }
      await keepNotable(a, `cycle ${cycle}`);
      await a.cleanup();
      current = undefined;
    }

    // The last kill's torn tail (if any) is cut by this boot; then a clean stop.
    a = await startReady(m, `after the kill of cycle ${CYCLES}`);
    readyMs.push(Date.now() - killedAt);
    const code = await a.stop();
    assert.equal(
      code,
      0,
      `seed ${SEED}: the final clean stop exited ${code}:\n${tail(await a.logText())}`,
    );

    const verify = await operatorCli(a)(["audit", "verify"]);
    // The log is streamed, not held: `npm run soak` leaves more than a million records.
    const pending = new Map<number, Ack>();
    const wrong: (Ack & { found: AuditRecord | string })[] = [];
    for (const k of acks)
      if (pending.has(k.seq))
        wrong.push({ ...k, found: "a second acknowledged call has this seq" });
      else pending.set(k.seq, k);
    const gaps: string[] = [];
    const repairs: AuditRecord[] = [];
    let total = 0;
    let expected = 1;
    let intents = 0;
    let results = 0;
    for await (const r of tailAudit(auditDir(path.join(home, "data")), { fromSeq: 1 })) {
      total++;
      // No seq gap: 1, 2, 3 … in file order.
      if (r.seq !== expected) gaps.push(`seq ${r.seq} follows seq ${expected - 1}`);
      expected = r.seq + 1;
      if (r.kind === "audit.tail_repaired") repairs.push(r);
      if (r.agent === AGENT && r.kind === "capability.intent") intents++;
      if (r.agent === AGENT && r.kind === "capability.result") results++;
      const k = pending.get(r.seq);
      if (!k) continue;
      pending.delete(r.seq);
      // A cut tail that had held an acknowledged record would show here: its seq would have been
      // reused by the next boot, for a record of another session.
      const same =
        r.kind === "capability.result" &&
        r.agent === AGENT &&
        r.capability === k.capability &&
        r.session === k.session &&
        r.outcome?.status === "ok";
      if (!same) wrong.push({ ...k, found: r });
    }
    await keepNotable(a, "final boot");
    await a.cleanup();
    current = undefined;
    const missing = [...wrong, ...[...pending.values()].map((k) => ({ ...k, found: "absent" }))];
    const intact = verify.code === 0 && verify.stdout.startsWith(`intact: ${total} records`);
    // Calls the kill interrupted after their intent record: an intent with no result after it.
    const intentsWithoutResult = intents - results;

    const meanReady = readyMs.reduce((sum, x) => sum + x, 0) / Math.max(1, readyMs.length);
    t.diagnostic(`seed ${SEED} (KRUXOS_SOAK_SEED replays the kill delays and the call mix)`);
    t.diagnostic(
      `cycles: ${CYCLES} kill -9 under load, ${CLIENTS} clients × ${IN_FLIGHT} calls in flight`,
    );
    t.diagnostic(
      `acknowledged calls: ${acks.length} (${writes} filesystem.write, ${acks.length - writes} agent.whoami)`,
    );
    t.diagnostic(
      `calls cut by the kills: ${cutByKill} sent without a reply, ${intentsWithoutResult} with an intent record and no result`,
    );
    t.diagnostic(`acknowledged records missing: ${missing.length}`);
    t.diagnostic(`torn tails repaired: ${repairs.length}`);
    for (const r of repairs.slice(0, 10))
      t.diagnostic(`  seq ${r.seq}: ${JSON.stringify(r.detail)}`);
    t.diagnostic(`audit records total: ${total}, seq gaps: ${gaps.length}`);
    t.diagnostic(`chain (kruxos audit verify): ${verify.stdout.trim() || verify.stderr.trim()}`);
    t.diagnostic(
      `time from kill to /ready: mean ${Math.round(meanReady)} ms, max ${Math.max(...readyMs)} ms over ${readyMs.length} restarts`,
    );
    t.diagnostic(`warn/error lines logged by the appliance: ${notable.length}`);
    for (const line of notable.slice(0, 10)) t.diagnostic(`  ${line}`);
    if (refused.size > 0)
      t.diagnostic(`calls answered with an error: ${JSON.stringify(Object.fromEntries(refused))}`);

    assert.ok(
      intact,
      `seed ${SEED}: audit verify (exit ${verify.code}): ${verify.stdout}${verify.stderr}`,
    );
    assert.deepEqual(gaps.slice(0, 5), [], `seed ${SEED}: the log's seqs are not 1..n`);
    assert.deepEqual(
      missing.slice(0, 10),
      [],
      `seed ${SEED}: ${missing.length} acknowledged records are missing or hold another record;` +
        ` the appliance's warnings:\n${notable.slice(0, 20).join("\n")}`,
    );
    assert.equal(
      refused.size,
      0,
      `seed ${SEED}: calls were refused under load: ${JSON.stringify(Object.fromEntries(refused))}`,
    );
  },
);
