// Egress proxy cost: CONNECT setup time (connect to the proxy, CONNECT with a credential, policy,
// pinned dial, durable audit record, "200") and tunnel throughput, beside a direct TCP connection
// to the same loopback upstream, in this run. The proxy is the real one with a real policy file
// and a real audit log (durable appends), as in the appliance.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { AuditLog } from "../src/audit/index.js";
import { Registry, createLogger } from "../src/core/index.js";
import {
  createProxy,
  mintCredential,
  proxyAuthorization,
  type ProxyDeps,
} from "../src/egress/index.js";
import { PolicyEngine } from "../src/policy/index.js";

export const pct = (xs: number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

/** An upstream that discards what it receives and answers "done" after `expect` bytes. */
function sink(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => {
    let expect = -1;
    let got = 0;
    let head = Buffer.alloc(0);
    s.on("data", (c: Buffer) => {
      if (expect < 0) {
        head = Buffer.concat([head, c]);
        if (head.length < 8) return;
        expect = Number(head.readBigUInt64BE(0));
        got = head.length - 8;
      } else got += c.length;
      if (expect >= 0 && got >= expect) s.end("done");
    });
    s.on("error", () => undefined);
  });
  return new Promise((r) =>
    server.listen(0, "127.0.0.1", () =>
      r({ server, port: (server.address() as net.AddressInfo).port }),
    ),
  );
}

function connectDirect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

/** A CONNECT tunnel through the proxy to `target`, once the proxy answered 200. */
export function connectTunnel(
  proxyPort: number,
  target: string,
  auth: string,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port: proxyPort }, () =>
      s.write(
        `CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\nproxy-authorization: ${auth}\r\n\r\n`,
      ),
    );
    let buf = "";
    const onData = (c: Buffer): void => {
      buf += c.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      s.off("data", onData);
      if (!buf.startsWith("HTTP/1.1 200")) reject(new Error(buf.split("\r\n")[0]));
      else resolve(s);
    };
    s.on("data", onData);
    s.once("error", reject);
  });
}

async function throughput(s: net.Socket, bytes: number): Promise<number> {
  const chunk = randomBytes(1 << 20);
  const t = performance.now();
  const done = new Promise<void>((r) => s.once("data", () => r()));
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(bytes));
  s.write(len);
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!s.write(chunk)) await new Promise((r) => s.once("drain", r));
  }
  await done;
  s.destroy();
  return bytes / 1024 / 1024 / ((performance.now() - t) / 1000);
}

/**
 * The real proxy on a loopback port with a real policy file allowing `target` and a real audit log
 * (durable appends), as in the appliance; `extra` adds to its dependencies (interception).
 */
export async function startBenchProxy(
  dir: string,
  target: string,
  extra: Partial<ProxyDeps> = {},
): Promise<{ port: number; key: Buffer; close: () => Promise<void> }> {
  const policyFile = path.join(dir, "policy.yaml");
  writeFileSync(policyFile, `version: 1\nnetwork: { egress: { allow: ["${target}"] } }\n`);
  const policy = new PolicyEngine({ files: [policyFile] });
  policy.reload();
  const audit = await AuditLog.open(path.join(dir, "audit"));
  const key = randomBytes(32);
  const proxy = createProxy({
    log: createLogger({ program: "bench", level: "silent" }),
    registry: new Registry(),
    policy,
    credentialKey: key,
    audit: async (entry, durable) => void (await audit.append(entry, { durable })),
    ...extra,
  });
  const server = proxy.server();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    key,
    close: async () => {
      server.close();
      await audit.close();
    },
  };
}

export async function benchEgress(n = 500, mib = 512): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), "kruxos-bench-egress-"));
  const up = await sink();
  const { port: proxyPort, key, close } = await startBenchProxy(dir, `127.0.0.1:${up.port}`);
  const who = {
    agent: "bench",
    session: "s",
    callId: "call-1",
    capability: "network.http_request",
  };
  const auth = proxyAuthorization(mintCredential(key, who, 600_000));
  const target = `127.0.0.1:${up.port}`;

  const setup = async (open: () => Promise<net.Socket>): Promise<number[]> => {
    for (let i = 0; i < 20; i++) (await open()).destroy();
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const s = await open();
      xs.push(performance.now() - t);
      s.destroy();
    }
    return xs;
  };
  const direct = await setup(() => connectDirect(up.port));
  const tunneled = await setup(() => connectTunnel(proxyPort, target, auth));
  const bytes = mib * 1024 * 1024;
  const directMiBs = await throughput(await connectDirect(up.port), bytes);
  const tunnelMiBs = await throughput(await connectTunnel(proxyPort, target, auth), bytes);
  await close();
  up.server.close();
  rmSync(dir, { recursive: true, force: true });
  return [
    `# egress proxy, loopback upstream; setup ${n} connections each, throughput ${mib} MiB one way`,
    "| | setup p50 (ms) | setup p99 (ms) | throughput (MiB/s) |",
    "|---|---|---|---|",
    `| anchor: direct TCP | ${pct(direct, 50).toFixed(3)} | ${pct(direct, 99).toFixed(3)} | ${directMiBs.toFixed(0)} |`,
    `| kruxos proxy CONNECT (policy, pinned dial, durable audit) | ${pct(tunneled, 50).toFixed(3)} | ${pct(tunneled, 99).toFixed(3)} | ${tunnelMiBs.toFixed(0)} |`,
  ].join("\n");
}
