// Boot-to-ready: host mode (`kruxos up`) and the image (the generated run.sh under podman), each
// the median of N runs, printed beside an anchor measured in the same run: a bare Node process
// that starts and listens (host) and the same inside a container of the same image (image).
import { spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { renderAll, validateManifestText } from "../src/config/index.js";
import { CLI, freePorts, run, tempDir } from "../tests/helpers/repo.js";
import {
  defaultManifest,
  manifestText,
  withFreePorts,
  ENGINE_ARGS,
  imageRef,
} from "../tests/contract/harness.js";

export interface Sample {
  readonly name: string;
  readonly ms: number[];
}

const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function ready(port: number, urlPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: urlPath, timeout: 500 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

async function until(
  port: number,
  urlPath: string,
  started: number,
  timeoutMs = 120_000,
): Promise<number> {
  for (;;) {
    if (await ready(port, urlPath)) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function hostBoot(): Promise<number> {
  const m = await withFreePorts(defaultManifest());
  const tmp = tempDir("kruxos-bench-");
  const file = path.join(tmp.dir, "kruxos.toml");
  writeFileSync(file, manifestText(m));
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [CLI, "up", "--home", path.join(tmp.dir, "home"), "--manifest", file],
    { stdio: "ignore" },
  );
  try {
    return await until(Number(m.gateway?.port), "/ready", started);
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    tmp.cleanup();
  }
}

async function hostAnchor(): Promise<number> {
  const [port] = await freePorts(1);
  const started = performance.now();
  const child = spawn(
    process.execPath,
    ["-e", `require("http").createServer((q,s)=>s.end()).listen(${port},"127.0.0.1")`],
    { stdio: "ignore" },
  );
  try {
    return await until(port ?? 0, "/", started);
  } finally {
    child.kill("SIGKILL");
  }
}

async function imageBoot(): Promise<number> {
  const m = await withFreePorts(defaultManifest());
  const r = validateManifestText(manifestText(m));
  if (!r.manifest) throw new Error("invalid manifest");
  const tmp = tempDir("kruxos-bench-");
  for (const f of renderAll(r.manifest, r.sha256))
    writeFileSync(path.join(tmp.dir, f.name), f.content, { mode: f.mode });
  writeFileSync(path.join(tmp.dir, "kruxos.toml"), manifestText(m));
  chmodSync(tmp.dir, 0o755); // the container user reads the manifest from this folder
  for (const d of ["data", "workspace"]) {
    mkdirSync(path.join(tmp.dir, d));
    chownSync(path.join(tmp.dir, d), 1000, 1000);
  }
  const name = `kruxos-bench-${process.pid}-${Date.now()}`;
  const started = performance.now();
  const res = await run(
    "sh",
    [
      path.join(tmp.dir, "run.sh"),
      "-d",
      "--name",
      name,
      "--volume",
      `${tmp.dir}:/etc/kruxos-bench:ro`,
      "--env",
      "KRUXOS_MANIFEST=/etc/kruxos-bench/kruxos.toml",
    ],
    {
      env: {
        KRUXOS_ENGINE_ARGS: ENGINE_ARGS.join(" "),
        KRUXOS_IMAGE: imageRef(),
        KRUXOS_DATA_VOLUME: path.join(tmp.dir, "data"),
        KRUXOS_WORKSPACE_VOLUME: path.join(tmp.dir, "workspace"),
      },
    },
  );
  try {
    if (res.code !== 0) throw new Error(res.stderr);
    return await until(Number(m.gateway?.port), "/ready", started);
  } finally {
    await run("podman", [...ENGINE_ARGS, "rm", "-f", "-t", "5", name]);
    tmp.cleanup();
  }
}

async function imageAnchor(): Promise<number> {
  const [port] = await freePorts(1);
  const name = `kruxos-bench-anchor-${process.pid}-${Date.now()}`;
  const started = performance.now();
  const res = await run("podman", [
    ...ENGINE_ARGS,
    "run",
    "-d",
    "--name",
    name,
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
    "--publish",
    `${port}:${port}`,
    "--entrypoint",
    "/usr/local/bin/node",
    imageRef(),
    "-e",
    `require("http").createServer((q,s)=>s.end()).listen(${port},"0.0.0.0")`,
  ]);
  try {
    if (res.code !== 0) throw new Error(res.stderr);
    return await until(port ?? 0, "/", started);
  } finally {
    await run("podman", [...ENGINE_ARGS, "rm", "-f", "-t", "0", name]);
  }
}

export async function benchBoot(runs: number, withImage: boolean): Promise<Sample[]> {
  const samples: Sample[] = [
    { name: "host: kruxos up → /ready 200", ms: [] },
    { name: "host anchor: bare node http listen", ms: [] },
  ];
  if (withImage)
    samples.push(
      { name: "image: run.sh → /ready 200", ms: [] },
      { name: "image anchor: node listen in the same image", ms: [] },
    );
  for (let i = 0; i < runs; i++) {
    samples[0]?.ms.push(await hostBoot());
    samples[1]?.ms.push(await hostAnchor());
    if (withImage) {
      samples[2]?.ms.push(await imageBoot());
      samples[3]?.ms.push(await imageAnchor());
    }
  }
  return samples;
}

export function report(samples: readonly Sample[]): string {
  return samples
    .map(
      (s) =>
        `${s.name.padEnd(46)} median ${median(s.ms).toFixed(0).padStart(6)} ms   (n=${s.ms.length}; ${s.ms.map((x) => x.toFixed(0)).join(", ")})`,
    )
    .join("\n");
}
