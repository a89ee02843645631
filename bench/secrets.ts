// Secret placement cost, each beside its anchor in this run:
// - per call, in the gateway: the placeholder checks (fields, syntax, scope) and the redaction of a
//   result, against the same call's inputs without a placeholder;
// - per request, in the proxy: resolving a placeholder (store lookup, unwrap, decrypt) and
//   rewriting the request, against a request with nothing to place;
// - one HTTPS request end to end: direct, through a blind CONNECT tunnel, and through the
//   intercepting proxy that places a header — a fresh connection (TLS handshake) each time, as
//   curl and git in a sandbox make them.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import {
  LeafIssuer,
  createInterceptionCa,
  mintCredential,
  proxyAuthorization,
} from "../src/egress/index.js";
import { placeSecrets } from "../src/egress/intercept.js";
import { SecretResolver, Vault, placeholderNames } from "../src/vault/index.js";
import { proxySecrets as proxySecretsOf } from "../src/appliance/secrets-wiring.js";
import { connectTunnel as tunnel, pct, startBenchProxy } from "./egress.js";

function micro(n: number, fn: () => void): number[] {
  for (let i = 0; i < Math.min(200, n); i++) fn();
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn();
    xs.push((performance.now() - t) * 1000);
  }
  return xs;
}

const contexts = new Map<string[], tls.SecureContext>();
/** One client context per trust list, as a real client keeps it. */
function contextOf(ca: string[]): tls.SecureContext {
  let c = contexts.get(ca);
  if (!c) contexts.set(ca, (c = tls.createSecureContext({ ca })));
  return c;
}

/** One GET over a fresh connection made by `connect`; resolves with the milliseconds it took. */
function oneRequest(
  connect: () => Promise<net.Socket>,
  host: string,
  ca: string[],
  headers: Record<string, string>,
): Promise<number> {
  const t = performance.now();
  return connect().then(
    (raw) =>
      new Promise<number>((resolve, reject) => {
        const s = tls.connect(
          { socket: raw, host, secureContext: contextOf(ca), ALPNProtocols: ["http/1.1"] },
          () => {
            const req = http.request(
              {
                createConnection: () => s,
                path: "/x",
                headers: { host, connection: "close", ...headers },
              },
              (res) => {
                res.resume();
                res.on("end", () => {
                  s.destroy();
                  resolve(performance.now() - t);
                });
              },
            );
            req.on("error", reject);
            req.end();
          },
        );
        s.on("error", reject);
      }),
  );
}

export async function benchSecrets(n = 200): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), "kruxos-bench-secrets-"));
  const upCa = await createInterceptionCa("bench upstream CA");
  const upLeaf = await (await LeafIssuer.create(upCa)).leaf("127.0.0.1");
  const seen: string[] = [];
  const upstream = https.createServer({ cert: upLeaf.certPem, key: upLeaf.keyPem }, (q, r) => {
    seen.push(String(q.headers["x-key"] ?? ""));
    r.end("ok");
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  const upPort = (upstream.address() as net.AddressInfo).port;
  const target = `127.0.0.1:${upPort}`;

  const secretsDir = path.join(dir, "secrets");
  const env = { KRUXOS_VAULT_KEY: randomBytes(32).toString("hex") };
  const vault = Vault.open({ file: path.join(dir, "vault.db"), secretsDir, keySource: "env", env });
  const store = vault.store;
  if (!store) throw new Error(`vault: ${String(vault.health().detail)}`);
  const value = `bench-${randomBytes(16).toString("hex")}`;
  store.add("token", Buffer.from(value), {
    agents: ["bench"],
    capabilities: ["process.run", "network.http_request"],
    hosts: [target],
  });
  const resolver = new SecretResolver(vault);
  const who = { agent: "bench", session: "s", callId: "call-1", capability: "process.run" };

  // Per call (gateway): scope check of the named secrets, then redaction of a 4 KiB result.
  const inputs = { command: ["curl", "-H", "X-Key: ${secret:token}", `https://${target}/`] };
  const plain = { command: ["curl", `https://${target}/`] };
  const result = { exit_code: 0, stdout: "x".repeat(4096), stderr: "" };
  const use = { agent: "bench", capability: "process.run" };
  const callWith = micro(n * 10, () => {
    const names = inputs.command.flatMap((c) => placeholderNames(c));
    resolver.refusal(names, use);
    resolver.redactor(use).value(result);
  });
  const callWithout = micro(n * 10, () => {
    plain.command.flatMap((c) => placeholderNames(c));
  });

  // Per request (proxy): resolve and rewrite, against nothing to place.
  const proxySecrets = proxySecretsOf(resolver);
  const headers = { host: target, "x-key": "${secret:token}", accept: "*/*" };
  const placeWith = micro(n * 10, () => {
    placeSecrets(proxySecrets, who, "127.0.0.1", upPort, "/", headers, undefined);
  });
  const placeWithout = micro(n * 10, () => {
    placeSecrets(
      proxySecrets,
      who,
      "127.0.0.1",
      upPort,
      "/",
      { host: target, accept: "*/*" },
      undefined,
    );
  });

  // End to end: direct, blind tunnel, intercepting proxy.
  const ca = await createInterceptionCa("bench interception CA");
  const leaves = await LeafIssuer.create(ca);
  const {
    port: proxyPort,
    key,
    close,
  } = await startBenchProxy(dir, target, {
    interception: {
      secrets: proxySecrets,
      leaf: (h) => leaves.leaf(h),
      upstreamCa: [upCa.certPem],
    },
  });
  const blindWho = { ...who, capability: "network.dns_lookup" }; // no secret covers it: blind
  const blindAuth = proxyAuthorization(mintCredential(key, blindWho, 600_000));
  const auth = proxyAuthorization(mintCredential(key, who, 600_000));
  const roots = [...tls.rootCertificates];
  const upTrust = [...roots, upCa.certPem];
  const interceptTrust = [...roots, ca.certPem];
  const series = async (fn: () => Promise<number>): Promise<number[]> => {
    for (let i = 0; i < 10; i++) await fn();
    const xs: number[] = [];
    for (let i = 0; i < n; i++) xs.push(await fn());
    return xs;
  };
  const direct = await series(() =>
    oneRequest(
      () =>
        new Promise((r, j) => {
          const s = net.connect({ host: "127.0.0.1", port: upPort }, () => r(s));
          s.once("error", j);
        }),
      "127.0.0.1",
      upTrust,
      {},
    ),
  );
  const blind = await series(() =>
    oneRequest(() => tunnel(proxyPort, target, blindAuth), "127.0.0.1", upTrust, {}),
  );
  const before = seen.length;
  const intercepted = await series(() =>
    oneRequest(() => tunnel(proxyPort, target, auth), "127.0.0.1", interceptTrust, {
      "x-key": "${secret:token}",
    }),
  );
  const placed = seen.slice(before).every((v) => v === value);
  await close();
  upstream.close();
  vault.close();
  rmSync(dir, { recursive: true, force: true });
  const us = (xs: number[]) => `${pct(xs, 50).toFixed(1)} / ${pct(xs, 99).toFixed(1)}`;
  const ms = (xs: number[]) => `${pct(xs, 50).toFixed(2)} / ${pct(xs, 99).toFixed(2)}`;
  return [
    `# secret placement; ${n * 10} iterations per micro row, ${n} HTTPS requests per end-to-end row`,
    "| | p50 / p99 |",
    "|---|---|",
    `| anchor: a call's placeholder scan, no placeholder (µs) | ${us(callWithout)} |`,
    `| gateway per call: scan, scope check, redaction of a 4 KiB result (µs) | ${us(callWith)} |`,
    `| anchor: proxy request with nothing to place (µs) | ${us(placeWithout)} |`,
    `| proxy per request: resolve (lookup, unwrap, decrypt) and rewrite one header (µs) | ${us(placeWith)} |`,
    `| anchor: HTTPS request, direct, fresh connection (ms) | ${ms(direct)} |`,
    `| HTTPS through a blind CONNECT tunnel (policy, pinned dial, durable audit) (ms) | ${ms(blind)} |`,
    `| HTTPS through the intercepting proxy, header placed${placed ? "" : " (NOT PLACED)"} (ms) | ${ms(intercepted)} |`,
  ].join("\n");
}
