// The process.* capabilities on a temporary workspace, run through a launcher without a sandbox
// (tests/helpers/plain-launcher.ts): argument handling (shell string vs argv), working-directory
// confinement, secret placeholders, bounded output, limits, and the background-process lifecycle
// with per-agent isolation and quotas. Every answer is checked against the output schema its YAML
// definition publishes, as the gateway would.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  CapabilityRegistry,
  createProcessHandlers,
  loadCapabilityDefinitions,
  type CallContext,
  type CapabilityHandler,
  type Launcher,
  type ProcessTable,
  type SandboxResult,
} from "../../src/capabilities/index.js";
import { PlainLauncher } from "../helpers/plain-launcher.js";
import { REPO } from "../helpers/repo.js";
import { RECOVERY_ACTIONS } from "../helpers/recovery-actions.js";

const DEFS = loadCapabilityDefinitions(path.join(REPO, "config", "capabilities"));

let base: string;
let ws: string;
const tables: ProcessTable[] = [];

before(() => {
  base = mkdtempSync(path.join(os.tmpdir(), "krux-proc-unit-"));
  ws = path.join(base, "ws");
  mkdirSync(path.join(ws, "sub", "deeper"), { recursive: true });
  writeFileSync(path.join(ws, "file.txt"), "x");
  mkdirSync(path.join(base, "outside"));
  symlinkSync(path.join(base, "outside"), path.join(ws, "escape"));
  symlinkSync("sub", path.join(ws, "inside-link"));
});
after(async () => {
  await Promise.all(tables.map((t) => t.closeAll()));
  rmSync(base, { recursive: true, force: true });
});

interface Rig {
  reg: CapabilityRegistry;
  launcher: PlainLauncher;
  table: ProcessTable;
}

function rig(opts: { maxBackground?: number; keepExited?: number; launcher?: Launcher } = {}): Rig {
  const launcher = new PlainLauncher(ws);
  const { handlers, table } = createProcessHandlers({
    launcher: opts.launcher ?? launcher,
    ...(opts.maxBackground === undefined ? {} : { maxBackground: opts.maxBackground }),
    ...(opts.keepExited === undefined ? {} : { keepExited: opts.keepExited }),
  });
  tables.push(table);
  return { reg: new CapabilityRegistry(DEFS, handlers), launcher, table };
}

function ctx(agent: string, signal = new AbortController().signal): CallContext {
  return {
    agent,
    session: `s-${agent}`,
    callId: "call-1",
    capability: "process.run",
    workspaceRoot: ws,
    signal,
    egress: false,
    mandatoryDenyAllowed: () => false,
  };
}

/** Call as the gateway does: inputs validated with defaults, the answer checked against outputs. */
async function call(
  r: Rig,
  name: string,
  inputs: Record<string, unknown>,
  agent = "alice",
): Promise<Record<string, unknown>> {
  const v = r.reg.validateInputs(name, inputs);
  assert.ok(v.ok, `${name} inputs: ${JSON.stringify(v)}`);
  const h = r.reg.handler(name) as CapabilityHandler;
  const out = await h(v.inputs, ctx(agent));
  const check = r.reg.validateOutputs(name, out);
  assert.ok(check.ok, `${name} output ${JSON.stringify(out)}: ${JSON.stringify(check)}`);
  return out as Record<string, unknown>;
}

async function refused(
  p: Promise<unknown>,
  type: string,
  code = "CapabilityError",
): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: string; data?: Record<string, unknown> };
    assert.equal(e.code, code, String(err));
    if (code !== "CapabilityError") return e.data ?? {};
    assert.equal(e.data?.type, type, JSON.stringify(e.data));
    const recovery = e.data?.recovery as { action: string }[];
    assert.ok(Array.isArray(recovery) && recovery.length > 0, "recovery steps");
    for (const s of recovery) assert.ok(RECOVERY_ACTIONS.includes(s.action), s.action);
    return e.data ?? {};
  }
  assert.fail(`expected ${code} ${type}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("process.run in the foreground", () => {
  test("a string command runs under /bin/sh -c and answers exit code, stdout and stderr", async () => {
    const r = rig();
    const out = await call(r, "process.run", { command: "echo hello; echo oops >&2; exit 3" });
    assert.equal(out.exit_code, 3);
    assert.equal(out.stdout, "hello\n");
    assert.equal(out.stderr, "oops\n");
    assert.equal(out.truncated, false);
    assert.equal(typeof out.duration_ms, "number");
    const req = r.launcher.requests.at(-1);
    assert.deepEqual(req?.argv, ["/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"]);
    assert.equal(req?.cwd, "/workspace");
    assert.equal(req?.network, false);
    assert.equal(req?.limits?.wall_ms, 120_000);
  });

  test("an argv array runs one program with its arguments verbatim, no shell", async () => {
    const r = rig();
    const out = await call(r, "process.run", {
      command: ["printf", "%s|", "a b", "$HOME", ";ls", "`id`"],
    });
    assert.equal(out.stdout, "a b|$HOME|;ls|`id`|");
    assert.deepEqual(r.launcher.requests.at(-1)?.argv, [
      "printf",
      "%s|",
      "a b",
      "$HOME",
      ";ls",
      "`id`",
    ]);
  });

  test("a program that does not exist is NotFound", async () => {
    const r = rig();
    await refused(call(r, "process.run", { command: ["no-such-program-krux"] }), "NotFound");
  });

  test("cwd is relative to the workspace or absolute under /workspace, passed resolved", async () => {
    const r = rig();
    for (const cwd of ["sub", "/workspace/sub", "sub/deeper/..", "inside-link"]) {
      const out = await call(r, "process.run", { command: "pwd", cwd });
      assert.equal(out.stdout, `${path.join(ws, "sub")}\n`, cwd);
      assert.equal(r.launcher.requests.at(-1)?.cwd, "/workspace/sub", cwd);
    }
  });

  test("a cwd that escapes the workspace is PathOutOfScope and nothing runs", async () => {
    const r = rig();
    for (const cwd of ["..", "../ws", "/etc", "/workspace/../etc", "/workspacex", "escape"])
      await refused(call(r, "process.run", { command: "pwd", cwd }), "PathOutOfScope");
    assert.equal(r.launcher.requests.length, 0);
  });

  test("a missing cwd, or a file as cwd, is NotFound and nothing runs", async () => {
    const r = rig();
    await refused(call(r, "process.run", { command: "pwd", cwd: "nope" }), "NotFound");
    await refused(call(r, "process.run", { command: "pwd", cwd: "file.txt" }), "NotFound");
    assert.equal(r.launcher.requests.length, 0);
  });

  test("env adds variables; a ${secret:…} placeholder reaches the sandbox as text, never as a value", async () => {
    const r = rig();
    const out = await call(r, "process.run", {
      command: 'printf %s "$GREETING"',
      env: { GREETING: "hi there" },
    });
    assert.equal(out.stdout, "hi there");
    await call(r, "process.run", { command: "env", env: { TOKEN: "Bearer ${secret:tok}" } });
    assert.equal(r.launcher.requests.at(-1)?.env?.TOKEN, "Bearer ${secret:tok}");
  });

  test("NUL bytes in a command are invalid inputs", async () => {
    const r = rig();
    await refused(call(r, "process.run", { command: "echo a\u0000b" }), "", "InvalidParams");
    await refused(call(r, "process.run", { command: ["echo", "a\u0000"] }), "", "InvalidParams");
    assert.equal(r.launcher.requests.length, 0);
  });

  test("output is UTF-8 with invalid bytes replaced", async () => {
    const r = rig();
    const out = await call(r, "process.run", { command: ["printf", "ok \\377\\376 é"] });
    assert.equal(out.stdout, "ok \ufffd\ufffd é");
  });

  test("output beyond 1 MiB per stream is cut and marked truncated", async () => {
    const r = rig();
    const out = await call(r, "process.run", {
      command: "head -c 1500000 /dev/zero | tr '\\0' a",
    });
    assert.equal(out.truncated, true);
    assert.equal((out.stdout as string).length, 1024 * 1024);
    assert.equal(r.launcher.requests.at(-1)?.limits?.output_bytes, 1024 * 1024);
  });

  test("a run still going at timeout_s is a Timeout with exit info and a small excerpt", async () => {
    const r = rig();
    const t0 = Date.now();
    const data = await refused(
      call(r, "process.run", { command: "echo started; sleep 30", timeout_s: 1 }),
      "Timeout",
    );
    assert.ok(Date.now() - t0 < 10_000, "killed at the limit");
    assert.equal(data.timeout_s, 1);
    assert.equal(data.stdout_head, "started\n");
    assert.equal(typeof data.exit_code, "number");
    assert.equal(r.launcher.requests.at(-1)?.limits?.wall_ms, 1000);
  });

  test("a resource limit names the limit that stopped the run", async () => {
    for (const limit of ["memory", "cpu", "pids", "file_size", "output"] as const) {
      const stub: Launcher = {
        run: async (): Promise<SandboxResult> => ({
          exit_code: 137,
          signal: "SIGKILL",
          stdout: Buffer.from("x".repeat(5000)),
          stderr: Buffer.alloc(0),
          truncated: false,
          duration_ms: 12,
          limit,
        }),
        start: () => Promise.reject(new Error("unused")),
      };
      const r = rig({ launcher: stub });
      const data = await refused(call(r, "process.run", { command: "x" }), "ResourceLimit");
      assert.equal(data.limit, limit);
      assert.equal((data.stdout_head as string).length, 1024, "first KiB only");
      assert.equal((data.stdout_tail as string).length, 1024, "last KiB only");
    }
  });
});

describe("background processes", () => {
  test("run → list → info → wait → kill with escalation → NotRunning", async () => {
    const r = rig();
    // Ignores TERM (and so does its child: an ignored signal stays ignored across exec).
    const started = await call(r, "process.run", {
      command: "trap '' TERM; echo started; sleep 30",
      cwd: "sub",
      background: true,
    });
    const id = started.process_id as string;
    assert.match(id, /^p_[a-z2-7]{12}$/);
    assert.equal(r.launcher.requests.at(-1)?.limits?.wall_ms, 120_000);

    const listed = await call(r, "process.list", {});
    const entry = (listed.processes as Record<string, unknown>[]).find((p) => p.process_id === id);
    assert.equal(entry?.state, "running");
    assert.equal(entry?.cwd, "/workspace/sub");
    assert.equal(entry?.ended_at, null);
    assert.equal(entry?.command, "trap '' TERM; echo started; sleep 30");

    let info: Record<string, unknown> = {};
    for (let k = 0; k < 50 && info.stdout_tail !== "started\n"; k++) {
      info = await call(r, "process.info", { process_id: id });
      if (info.stdout_tail !== "started\n") await sleep(50);
    }
    assert.equal(info.stdout_tail, "started\n");
    assert.equal(info.state, "running");
    assert.equal(info.exit_code, null);
    assert.equal(info.stdout_bytes, 8);
    const shortTail = await call(r, "process.info", { process_id: id, tail_bytes: 3 });
    assert.equal(shortTail.stdout_tail, "ed\n");

    const polled = await call(r, "process.wait", { process_id: id, timeout_s: 0 });
    assert.equal(polled.done, false);
    assert.equal(polled.state, "running");
    assert.equal(polled.exit_code, null);

    const killed = await call(r, "process.kill", { process_id: id, signal: "TERM", grace_s: 1 });
    assert.equal(killed.escalated, true, "TERM was ignored, KILL followed");
    assert.equal(killed.state, "killed");
    assert.equal(killed.exit_code, 137);

    await refused(call(r, "process.kill", { process_id: id }), "NotRunning");

    const waited = await call(r, "process.wait", { process_id: id, timeout_s: 5 });
    assert.equal(waited.done, true);
    assert.equal(waited.state, "killed");
    assert.equal(waited.stdout, "started\n");

    const running = await call(r, "process.list", {});
    assert.ok(!(running.processes as { process_id: string }[]).some((p) => p.process_id === id));
    const all = await call(r, "process.list", { include_exited: true });
    const ended = (all.processes as Record<string, unknown>[]).find((p) => p.process_id === id);
    assert.equal(ended?.state, "killed");
    assert.equal(typeof ended?.ended_at, "string");
  });

  test("a process that honours TERM ends without escalation", async () => {
    const r = rig();
    const { process_id } = await call(r, "process.run", { command: "sleep 30", background: true });
    const killed = await call(r, "process.kill", { process_id, grace_s: 5 });
    assert.equal(killed.escalated, false);
    assert.equal(killed.state, "killed");
    assert.equal(killed.exit_code, 143);
  });

  test("a process that ends by itself is waited for with its output and exit code", async () => {
    const r = rig();
    const { process_id } = await call(r, "process.run", {
      command: ["sh", "-c", "echo out; echo err >&2; exit 4"],
      background: true,
    });
    const waited = await call(r, "process.wait", { process_id, timeout_s: 10 });
    assert.deepEqual(
      { ...waited, duration_ms: 0 },
      {
        process_id,
        done: true,
        state: "exited",
        exit_code: 4,
        stdout: "out\n",
        stderr: "err\n",
        truncated: false,
        duration_ms: 0,
      },
    );
    const info = await call(r, "process.info", { process_id });
    assert.equal(info.state, "exited");
    assert.equal(info.command, "sh -c 'echo out; echo err >&2; exit 4'");
    assert.equal(typeof info.ended_at, "string");
  });

  test("a background process that outlives its timeout_s is timed_out", async () => {
    const r = rig();
    const { process_id } = await call(r, "process.run", {
      command: "sleep 30",
      background: true,
      timeout_s: 1,
    });
    const waited = await call(r, "process.wait", { process_id, timeout_s: 10 });
    assert.equal(waited.done, true);
    assert.equal(waited.state, "timed_out");
  });

  test("agents never see or touch each other's processes", async () => {
    const r = rig();
    const { process_id } = await call(r, "process.run", { command: "sleep 30", background: true });
    for (const [name, inputs] of [
      ["process.info", { process_id }],
      ["process.wait", { process_id, timeout_s: 0 }],
      ["process.kill", { process_id, signal: "KILL" }],
    ] as const)
      await refused(call(r, name, inputs, "bob"), "NotFound");
    const bobs = await call(r, "process.list", { include_exited: true }, "bob");
    assert.deepEqual(bobs.processes, []);
    const info = await call(r, "process.info", { process_id });
    assert.equal(info.state, "running", "bob's kill did not reach alice's process");
    await call(r, "process.kill", { process_id, signal: "KILL" });
  });

  test("an unknown id is NotFound", async () => {
    const r = rig();
    await refused(call(r, "process.info", { process_id: "p_aaaaaaaaaaaa" }), "NotFound");
  });

  test("each agent may run at most maxBackground processes at once", async () => {
    const r = rig({ maxBackground: 2 });
    const a = await call(r, "process.run", { command: "sleep 30", background: true });
    await call(r, "process.run", { command: "sleep 30", background: true });
    const data = await refused(
      call(r, "process.run", { command: "sleep 30", background: true }),
      "QuotaExceeded",
    );
    assert.equal(data.limit, 2);
    // Another agent has its own quota; foreground runs are not counted.
    await call(r, "process.run", { command: "sleep 30", background: true }, "bob");
    await call(r, "process.run", { command: "true" });
    await call(r, "process.kill", { process_id: a.process_id, signal: "KILL" });
    await call(r, "process.run", { command: "sleep 30", background: true });
    await r.table.closeAll();
  });

  test("concurrent starts cannot overshoot the quota", async () => {
    const r = rig({ maxBackground: 3 });
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () =>
        call(r, "process.run", { command: "sleep 30", background: true }),
      ),
    );
    assert.equal(results.filter((x) => x.status === "fulfilled").length, 3);
    await r.table.closeAll();
  });

  test("ended processes are remembered up to keepExited, oldest forgotten first", async () => {
    const r = rig({ keepExited: 2 });
    const ids: string[] = [];
    for (let k = 0; k < 3; k++) {
      const { process_id } = await call(r, "process.run", { command: "true", background: true });
      await call(r, "process.wait", { process_id, timeout_s: 10 });
      ids.push(process_id as string);
    }
    await refused(call(r, "process.info", { process_id: ids[0] }), "NotFound");
    await call(r, "process.info", { process_id: ids[1] });
    await call(r, "process.info", { process_id: ids[2] });
  });

  test("closeAll kills every running process and refuses new background starts", async () => {
    const r = rig();
    const a = await call(r, "process.run", { command: "sleep 30", background: true });
    const b = await call(r, "process.run", { command: "sleep 30", background: true }, "bob");
    await r.table.closeAll();
    assert.equal((await call(r, "process.info", { process_id: a.process_id })).state, "killed");
    assert.equal(
      (await call(r, "process.info", { process_id: b.process_id }, "bob")).state,
      "killed",
    );
    await refused(
      call(r, "process.run", { command: "sleep 1", background: true }),
      "QuotaExceeded",
    );
  });
});
