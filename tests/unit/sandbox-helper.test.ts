// The native helper's run mode as a process: `kruxos-sandbox --run` with a hand-written spec on fd 3,
// status lines on fd 4 and the program's stdio on 0-2 (docs/sandbox.md "Run mode"). Every spec here
// is literal JSON written for the test, never built by src/, so the helper's contract is pinned from
// the outside: refusals and their reserved exit codes, the program's identity and view of the world,
// exit statuses, limits, the wall clock and the network.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import {
  chownSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Readable, Writable } from "node:stream";

/** dist/tests/unit → repository root. */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const HELPER = path.join(REPO, "native", "build", "kruxos-sandbox");
const isRoot = process.getuid?.() === 0;
/** Outside, the sandbox's uid 1100 is the caller itself, or (root caller) an unprivileged uid. */
const HOST_UID = isRoot ? 1100 : (process.getuid?.() ?? 0);
const HOST_GID = isRoot ? 1100 : (process.getgid?.() ?? 0);
const BASH = ["/usr/bin/bash", "/bin/bash"].find((p) => existsSync(p));

interface Status {
  event: string;
  pid?: number;
  proc?: string;
  error?: string;
  code?: number;
  detail?: string;
  exit_code?: number;
  signal?: number | null;
  timed_out?: boolean;
  limit?: string | null;
  cpu_ms?: number;
  max_rss_kb?: number;
}

interface Outcome {
  code: number | null;
  stdout: string;
  stdoutBytes: number;
  stderr: string;
  status: Status[];
  ms: number;
}

function execText(cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: "utf8", timeout: 120_000 }, (err, stdout) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout });
    });
  });
}

/**
 * Run the helper with `specText` on fd 3; collect stdout, stderr and the status lines of fd 4.
 * `slowMs` makes a slow reader: stdout pauses that long after every chunk it takes.
 */
function runHelper(
  specText: string,
  opts: { uid?: number; gid?: number; slowMs?: number } = {},
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(HELPER, ["--run"], {
      stdio: ["pipe", "pipe", "pipe", "pipe", "pipe"],
      env: {},
      ...(opts.uid === undefined ? {} : { uid: opts.uid }),
      ...(opts.gid === undefined ? {} : { gid: opts.gid }),
    });
    const [stdin, stdout, stderr, specPipe, statusPipe] = child.stdio as [
      Writable,
      Readable,
      Readable,
      Writable,
      Readable,
    ];
    for (const w of [stdin, specPipe]) w.on("error", () => undefined);
    specPipe.end(specText);
    stdin.end();
    const out: Buffer[] = [];
    let err = "";
    let st = "";
    stdout.on("data", (c: Buffer) => {
      out.push(c);
      if (opts.slowMs === undefined) return;
      stdout.pause();
      setTimeout(() => stdout.resume(), opts.slowMs);
    });
    stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
    statusPipe.setEncoding("utf8").on("data", (c: string) => (st += c));
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(guard);
      const lines = st.split("\n").filter((l) => l !== "");
      resolve({
        code,
        stdout: Buffer.concat(out).toString("utf8"),
        stdoutBytes: out.reduce((n, c) => n + c.length, 0),
        stderr: err,
        status: lines.map((l) => JSON.parse(l) as Status),
        ms: Date.now() - t0,
      });
    });
  });
}

let layers: string[] = [];
let workspace = "";
let skipAll = "";

before(async () => {
  if (!existsSync(HELPER)) {
    const make = await execText("make", ["-s", "-C", path.join(REPO, "native")]);
    assert.equal(make.code, 0, "make -s -C native failed");
  }
  // Ask the helper which layers work here, exactly as the launcher does; cgroup needs a
  // delegated directory these tests do not have.
  const probe = await execText(HELPER, ["--probe"]);
  const report = JSON.parse(probe.stdout) as { layers: Record<string, { ok: boolean }> };
  layers = Object.entries(report.layers)
    .filter(([name, l]) => l.ok && name !== "cgroup")
    .map(([name]) => name);
  for (const needed of ["user", "mount", "pid", "net", "rlimits"]) {
    if (!layers.includes(needed)) skipAll = `the "${needed}" layer does not work on this host`;
  }
  workspace = mkdtempSync(path.join(os.tmpdir(), "krx-helper-ws-"));
  chmodSync(workspace, 0o755);
  if (isRoot) chownSync(workspace, HOST_UID, HOST_GID);
});

after(() => {
  if (workspace !== "") rmSync(workspace, { recursive: true, force: true });
});

/** A complete v1 spec, as literal as the docs' example; `over` replaces top-level fields. */
function spec(argv: string[], over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    argv,
    env: ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"],
    cwd: "/workspace",
    uid: 1100,
    gid: 1100,
    host_uid: HOST_UID,
    host_gid: HOST_GID,
    hostname: "kruxos-sandbox",
    layers,
    mounts: {
      workspace,
      ro_binds: [
        "/usr",
        "/bin",
        "/lib",
        "/lib64",
        "/sbin",
        "/etc/ssl",
        "/etc/ca-certificates",
        "/etc/alternatives",
        "/etc/ld.so.cache",
      ],
      ro_overlays: [],
      files: [
        {
          path: "/etc/passwd",
          content: "root:x:0:0::/:/usr/sbin/nologin\nagent:x:1100:1100::/tmp:/bin/sh\n",
        },
      ],
      tmp_mb: 16,
    },
    network: null,
    limits: {
      wall_ms: 20_000,
      cpu_s: 10,
      memory_bytes: 1_073_741_824,
      pids: 128,
      open_files: 256,
      file_size_bytes: 16_777_216,
    },
    cgroup: null,
    ...over,
  };
}

function sh(script: string, over: Record<string, unknown> = {}): string {
  return JSON.stringify(spec(["/bin/sh", "-c", script], over));
}

function limits(over: Record<string, number>): Record<string, unknown> {
  return { limits: { ...(spec([]).limits as Record<string, number>), ...over } };
}

function exitLine(o: Outcome): Status {
  const exit = o.status.find((s) => s.event === "exit");
  assert.ok(exit, `no exit status line; status ${JSON.stringify(o.status)}; stderr ${o.stderr}`);
  return exit;
}

/** Processes (outside) whose command line contains marker. */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes(marker)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

test("a spec that is not valid JSON, names an unknown key or another version exits 121 with one error line", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const bad: [string, string][] = [
    ["truncated JSON", '{"version":1,'],
    ["unknown key", JSON.stringify({ ...spec(["/bin/true"]), extra: true })],
    ["wrong version", JSON.stringify({ ...spec(["/bin/true"]), version: 2 })],
    ["a float", sh("true").replace('"cpu_s":10', '"cpu_s":1.5')],
    ["an unknown layer", JSON.stringify(spec(["/bin/true"], { layers: ["user", "selinux"] }))],
    ["host uid 0", JSON.stringify(spec(["/bin/true"], { host_uid: 0 }))],
  ];
  for (const [what, text] of bad) {
    const o = await runHelper(text);
    assert.equal(o.code, 121, `${what}: exit ${o.code}`);
    assert.equal(o.stdout, "", what);
    const lines = o.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `${what}: one line on stderr`);
    const line = JSON.parse(lines[0] ?? "") as { error: string; detail: string };
    assert.equal(line.error, "spec", what);
    assert.match(line.detail, /\S/, what);
    assert.equal(o.status.length, 1, `${what}: one status line`);
    assert.equal(o.status[0]?.event, "error", what);
    assert.equal(o.status[0]?.error, "spec", what);
    assert.equal(o.status[0]?.code, 121, what);
  }
});

test("a program that does not exist in the sandbox exits 123 with an exec error status line", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const o = await runHelper(JSON.stringify(spec(["/usr/bin/no-such-program-krx"])));
  assert.equal(o.code, 123, o.stderr);
  assert.deepEqual(
    o.status.map((s) => s.event),
    ["error"],
  );
  assert.equal(o.status[0]?.error, "exec");
  assert.equal(o.status[0]?.code, 123);
  assert.match(
    o.status[0]?.detail ?? "",
    /execve\("\/usr\/bin\/no-such-program-krx"\).*No such file/,
  );
  assert.equal(JSON.parse(o.stderr.trimEnd()).error, "exec");
});

test("the program runs as uid 1100 with no capabilities, writes the workspace and nothing else", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const o = await runHelper(
    sh(
      [
        "id -u; id -g",
        "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status",
        "echo hi > /workspace/written && echo workspace-ok",
        "echo t > /tmp/t && echo tmp-ok",
        "for p in /etc/x /usr/x /x; do (echo no > $p) 2>/dev/null && echo wrote-$p; done",
        "for p in /data /run /sys /home /root; do test -e $p && echo exists-$p; done",
        "echo end",
      ].join("\n"),
    ),
  );
  assert.equal(o.code, 0, o.stderr);
  const lines = o.stdout.trimEnd().split("\n");
  assert.equal(lines[0], "1100");
  assert.equal(lines[1], "1100");
  assert.ok(lines.includes("CapEff:\t0000000000000000"), o.stdout);
  assert.ok(lines.includes("CapBnd:\t0000000000000000"), o.stdout);
  if (layers.includes("no_new_privs")) assert.ok(lines.includes("NoNewPrivs:\t1"), o.stdout);
  assert.ok(lines.includes("workspace-ok"), o.stdout);
  assert.ok(lines.includes("tmp-ok"), o.stdout);
  assert.deepEqual(
    lines.filter((l) => l.startsWith("wrote-") || l.startsWith("exists-")),
    [],
    "nothing written outside /workspace and /tmp; no /data, /run, /sys, /home, /root",
  );
  assert.equal(lines.at(-1), "end");
  const written = statSync(path.join(workspace, "written"));
  assert.equal(written.uid, HOST_UID, "the workspace file belongs to host_uid outside");
});

test("status lines: started with the sandbox's pid and /proc kind, then exit; the exit code passes through", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const o = await runHelper(sh("echo out; echo err >&2; exit 7"));
  assert.equal(o.code, 7);
  assert.equal(o.stdout, "out\n");
  assert.equal(o.stderr, "err\n");
  assert.deepEqual(
    o.status.map((s) => s.event),
    ["started", "exit"],
  );
  const started = o.status[0];
  assert.ok(started && typeof started.pid === "number" && started.pid > 1);
  assert.ok(started.proc === "private" || started.proc === "shared", String(started.proc));
  const exit = exitLine(o);
  assert.deepEqual(Object.keys(exit), [
    "event",
    "exit_code",
    "signal",
    "timed_out",
    "limit",
    "cpu_ms",
    "max_rss_kb",
  ]);
  assert.equal(exit.exit_code, 7);
  assert.equal(exit.signal, null);
  assert.equal(exit.timed_out, false);
  assert.equal(exit.limit, null);
  assert.equal(typeof exit.cpu_ms, "number");
  assert.ok((exit.max_rss_kb ?? 0) > 0);
});

test("a program killed by a signal exits 128+N and the exit line names the signal number", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const o = await runHelper(sh("kill -TERM $$"));
  assert.equal(o.code, 143);
  const exit = exitLine(o);
  assert.equal(exit.exit_code, 143);
  assert.equal(exit.signal, 15);
  assert.equal(exit.limit, null);
});

test("the wall-clock limit kills the whole sandbox, grandchildren included, and exits 124", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const marker = `86399.${process.pid}1`;
  const o = await runHelper(
    sh(`sleep ${marker} & (sleep ${marker} &); sleep ${marker}`, limits({ wall_ms: 1000 })),
  );
  assert.equal(o.code, 124, o.stderr);
  assert.ok(o.ms < 10_000, `took ${o.ms} ms`);
  const exit = exitLine(o);
  assert.equal(exit.timed_out, true);
  assert.equal(exit.exit_code, 124);
  assert.equal(exit.signal, 9);
  assert.deepEqual(processesWith(marker), [], "no sandboxed process survives");
});

test("background processes die with the call when the program exits", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const marker = `86398.${process.pid}2`;
  const o = await runHelper(sh(`sleep ${marker} & yes > /dev/null & echo left`));
  assert.equal(o.code, 0, o.stderr);
  assert.equal(o.stdout, "left\n");
  assert.deepEqual(processesWith(marker), []);
});

test("writing past the file size limit ends the program with limit file_size", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const o = await runHelper(
    sh("exec head -c 200000 /dev/zero > /tmp/big", limits({ file_size_bytes: 100_000 })),
  );
  const exit = exitLine(o);
  assert.equal(exit.limit, "file_size");
  assert.equal(exit.signal, 25);
  assert.equal(o.code, 128 + 25);
});

test("spinning past the CPU limit ends the program with limit cpu", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const o = await runHelper(sh("exec sh -c 'while :; do :; done'", limits({ cpu_s: 1 })));
  const exit = exitLine(o);
  assert.equal(exit.limit, "cpu");
  assert.equal(exit.timed_out, false);
  assert.ok(exit.signal === 24 || exit.signal === 9, `signal ${exit.signal}`);
  assert.ok((exit.cpu_ms ?? 0) >= 900, `cpu_ms ${exit.cpu_ms}`);
});

test("without a network grant, connecting anywhere fails at once: the namespace has no route", async (t) => {
  if (skipAll) return t.skip(skipAll);
  if (!BASH) return t.skip("bash is not installed (its /dev/tcp is the client)");
  const script =
    "echo > /dev/tcp/1.1.1.1/80 || echo refused; echo > /dev/tcp/127.0.0.1/3128 || echo refused";
  const o = await runHelper(JSON.stringify(spec([BASH, "-c", script])));
  assert.equal(o.code, 0, o.stderr);
  assert.equal(o.stdout, "refused\nrefused\n");
  // Landlock (where it works) refuses the connect first; without it the empty namespace does.
  assert.match(o.stderr, /Network is unreachable|Permission denied/);
  assert.ok(o.ms < 10_000, `took ${o.ms} ms`);
});

test("with a network grant, 127.0.0.1:<relay_port> inside reaches the proxy's unix socket", async (t) => {
  if (skipAll) return t.skip(skipAll);
  if (!BASH) return t.skip("bash is not installed (its /dev/tcp is the client)");
  const dir = mkdtempSync(path.join(os.tmpdir(), "krx-relay-"));
  const sock = path.join(dir, "egress.sock");
  // The stand-in proxy answers each complete request line.
  const server = net.createServer((c) => {
    let got = "";
    c.on("data", (d) => {
      got += d.toString();
      if (got.endsWith("\n")) c.end(`proxy saw ${got.trim()}\n`);
    });
    c.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(sock, r));
  chmodSync(dir, 0o755);
  chmodSync(sock, 0o777);
  try {
    const script =
      "exec 3<>/dev/tcp/127.0.0.1/3128 && printf 'CONNECT example.org:443\\n' >&3 && " +
      'read -r line <&3 && echo "$line"; ' +
      "echo > /dev/tcp/127.0.0.1/3129 2>/dev/null || echo other-port-refused";
    const o = await runHelper(
      JSON.stringify(
        spec([BASH, "-c", script], { network: { relay_port: 3128, proxy_socket: sock } }),
      ),
    );
    assert.equal(o.code, 0, o.stderr);
    assert.equal(o.stdout, "proxy saw CONNECT example.org:443\nother-port-refused\n");
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an unprivileged caller maps the sandbox only to itself", async (t) => {
  if (skipAll) return t.skip(skipAll);
  if (!isRoot) return t.skip("needs root to start the helper as another user");
  const ws = mkdtempSync(path.join(os.tmpdir(), "krx-helper-nobody-"));
  chmodSync(ws, 0o755);
  chownSync(ws, 65534, 65534);
  try {
    const as = { uid: 65534, gid: 65534 };
    const mounts = { ...(spec([]).mounts as Record<string, unknown>), workspace: ws };
    const ok = await runHelper(
      sh("id -u; echo x > /workspace/f", { host_uid: 65534, host_gid: 65534, mounts }),
      as,
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "1100\n");
    assert.equal(statSync(path.join(ws, "f")).uid, 65534);
    const other = await runHelper(sh("true", { host_uid: 1100, host_gid: 1100, mounts }), as);
    assert.equal(other.code, 121);
    assert.equal(other.status[0]?.error, "spec");
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test("a workspace below directories only the root caller may search is bound and writable", async (t) => {
  if (skipAll) return t.skip(skipAll);
  if (!isRoot) return t.skip("needs root: only a root caller maps the sandbox to another uid");
  // mkdtemp makes a 0700 root-owned directory: the sandbox's uid 1100 may not search it.
  const parent = mkdtempSync(path.join(os.tmpdir(), "krx-helper-private-"));
  const ws = path.join(parent, "home", "workspace");
  mkdirSync(path.join(ws, ".git"), { recursive: true });
  chmodSync(parent, 0o700);
  chmodSync(path.join(parent, "home"), 0o700);
  for (const p of [ws, path.join(ws, ".git")]) chownSync(p, 1100, 1100);
  try {
    const mounts = {
      ...(spec([]).mounts as Record<string, unknown>),
      workspace: ws,
      ro_overlays: ["/workspace/.git"],
    };
    const o = await runHelper(
      sh(
        "echo x > /workspace/f && cat /workspace/f; (echo no > /workspace/.git/c) 2>/dev/null || echo ro",
        {
          host_uid: 1100,
          host_gid: 1100,
          mounts,
        },
      ),
    );
    assert.equal(o.code, 0, o.stderr);
    assert.equal(o.stdout, "x\nro\n");
    assert.equal(statSync(path.join(ws, "f")).uid, 1100);
    assert.equal(existsSync(path.join(ws, ".git", "c")), false);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test("the program can open /dev/stdout and /dev/stderr, and its output arrives", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const o = await runHelper(
    sh("echo hi > /dev/stdout; echo err > /dev/stderr; echo fd > /proc/self/fd/1; echo last"),
  );
  assert.equal(o.code, 0, o.stderr);
  assert.equal(o.stderr, "err\n");
  assert.equal(o.stdout, "hi\nfd\nlast\n");
  assert.deepEqual(
    o.status.map((s) => s.event),
    ["started", "exit"],
  );
});

test("20 MiB of stdout arrives complete through a slow reader", async (t) => {
  if (skipAll) return t.skip(skipAll);
  const size = 20 * 1024 * 1024;
  const o = await runHelper(sh(`head -c ${size} /dev/zero | tr '\\0' a; echo done >&2`), {
    slowMs: 2,
  });
  assert.equal(o.code, 0, o.stderr);
  assert.equal(o.stdoutBytes, size);
  assert.ok(/^a+$/.test(o.stdout), "only the bytes the program wrote");
  assert.equal(o.stderr, "done\n");
  assert.equal(exitLine(o).exit_code, 0);
});
