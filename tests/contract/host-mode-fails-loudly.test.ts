// RC: host mode fails loudly. `kruxos up` exits 1 within 10 s when a program required for readiness
// cannot start because another process holds its address, saying which program, which address and
// what to do; SIGTERM ends it within 10 s whatever state its programs are in. (Image mode keeps
// supervisord's semantics: seal-timeout-writes-no-sentinel.)
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import {
  defaultManifest,
  portOf,
  startHost,
  waitFor,
  waitReady,
  withFreePorts,
  withProgramThatNeverRuns,
  type Appliance,
  type ManifestObject,
} from "./harness.js";

// The bound the issue promises, not a speed target.
const BOUND_MS = 10_000;

/** A plain server of this test holding `host:port`, as another appliance would. */
async function hold(host: string, port: number): Promise<net.Server> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return server;
}

const release = (s: net.Server): Promise<void> => new Promise((r) => s.close(() => r()));

/** SIGTERM, then the exit code if the process ended within `ms` (null if it did not). */
async function sigterm(a: Appliance, ms: number): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  process.kill(a.pid ?? 0, "SIGTERM");
  const code = await a.waitExit(ms);
  return { code, ms: Date.now() - started };
}

test("kruxos up exits 1 within 10 s naming the program, the address and the way out when the gateway's port is taken", async (t) => {
  const m = await withFreePorts(defaultManifest());
  const host = String(m.gateway?.host);
  const port = portOf(m, "gateway");
  const holder = await hold(host, port);
  t.after(() => release(holder));
  const started = Date.now();
  const a = await startHost(m);
  t.after(a.cleanup);
  const code = await a.waitExit(BOUND_MS);
  t.diagnostic(`exited ${code} after ${Date.now() - started} ms`);
  assert.equal(code, 1, `not exited 1 within ${BOUND_MS} ms:\n${await a.logText()}`);

  const text = await a.logText();
  const stderr = text
    .split("\n")
    .filter((l) => !l.startsWith("{"))
    .join("\n");
  assert.match(stderr, /gateway/);
  assert.ok(stderr.includes(`${host}:${port}`), stderr);
  assert.match(stderr, /already in use/);
  assert.match(stderr, /another KruxOS appliance/);
  assert.match(stderr, /--home/);
  assert.match(stderr, /--manifest/);
  assert.doesNotMatch(stderr, /is up/, "it never claims to be up");

  const failed = (await a.logLines()).find((l) => l.event === "HostModeFailed");
  assert.ok(failed, text);
  assert.equal(failed.program, "gateway");
  assert.equal(failed.address, `${host}:${port}`);
  assert.equal(failed.reason, "PortInUse");
  assert.equal(typeof failed.advice, "string");
});

test("kruxos up exits 1 naming a required program that went FATAL, without waiting for the seal", async (t) => {
  // /bin/false never stays up: one start and one retry, then FATAL. The seal would wait 600 s.
  const m = withProgramThatNeverRuns(await withFreePorts(defaultManifest()), 600, 1);
  const a = await startHost(m);
  t.after(a.cleanup);
  const code = await a.waitExit(30_000);
  assert.equal(code, 1, await a.logText());
  const failed = (await a.logLines()).find((l) => l.event === "HostModeFailed");
  assert.ok(failed, await a.logText());
  assert.equal(failed.program, "never");
  assert.equal(failed.reason, "Fatal");
  assert.match(String(failed.error), /exited after/);
  const text = await a.logText();
  assert.match(text, /kruxos up: never cannot start \(2 attempts\)/);
  assert.equal(await a.sentinelExists(), false);
});

test("SIGTERM ends host mode within 10 s after every program has failed", async (t) => {
  // Programs not required for readiness keep supervisord's semantics (retries, then FATAL, and
  // the appliance stays up), so this is a process whose every program has failed, halfway
  // through its start for the gateway.
  const base = await withFreePorts(defaultManifest());
  const programs = base.programs as Record<string, Record<string, unknown>>;
  const m: ManifestObject = {
    ...base,
    programs: Object.fromEntries(
      Object.entries(programs).map(([name, p]) => [
        name,
        name === "bootstrap-seal" ? p : { ...p, required_for_readiness: false, startretries: 1 },
      ]),
    ),
  };
  const holders = await Promise.all([
    hold(String(m.proxy?.host), portOf(m, "proxy")),
    hold(String(m.gateway?.host), portOf(m, "gateway")),
    hold(String(m.dashboard?.host), portOf(m, "dashboard")),
  ]);
  t.after(() => Promise.all(holders.map(release)));
  const a = await startHost(m);
  t.after(a.cleanup);
  const failed = ["proxy", "gateway", "dashboard"];
  await waitFor(async () => {
    const fatal = new Set(
      (await a.logLines())
        .filter((l) => l.event === "ProgramState" && l.state === "FATAL")
        .map((l) => l.program_name),
    );
    return failed.every((p) => fatal.has(p)) ? true : undefined;
  }, 60_000);

  const { code, ms } = await sigterm(a, BOUND_MS);
  t.diagnostic(`exited ${code} ${ms} ms after SIGTERM`);
  assert.notEqual(code, null, `still running ${BOUND_MS} ms after SIGTERM:\n${await a.logText()}`);
  assert.equal(code, 0);
});

test("a healthy kruxos up exits 0 within 10 s of SIGTERM", async (t) => {
  const a = await startHost(await withFreePorts(defaultManifest()));
  t.after(a.cleanup);
  await waitReady(a, 60_000);
  const { code, ms } = await sigterm(a, BOUND_MS);
  t.diagnostic(`exited ${code} ${ms} ms after SIGTERM`);
  assert.equal(code, 0, `not exited 0 within ${BOUND_MS} ms of SIGTERM:\n${await a.logText()}`);
  // It ended because everything was closed, not because the exit timer gave up on a listener.
  const left = (await a.logLines()).find((l) => l.event === "ShutdownLeftHandles");
  assert.equal(left, undefined, JSON.stringify(left));
});
