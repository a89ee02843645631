// Round trip and calls/s of a no-sandbox capability (agent.whoami) over WS /rpc on the real
// appliance, beside a bare `ws` echo server answering a JSON message of the same size, same run.
import { WebSocketServer } from "ws";
import { runCli } from "../tests/helpers/repo.js";
import { RpcClient } from "../tests/helpers/rpc-client.js";
import {
  defaultManifest,
  portOf,
  startHost,
  waitReady,
  withFreePorts,
} from "../tests/contract/harness.js";

const pct = (xs: number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

interface Figures {
  p50: number;
  p99: number;
  perS: number;
}

async function measure(
  call: () => Promise<unknown>,
  n: number,
  concurrency: number,
): Promise<Figures> {
  for (let i = 0; i < 200; i++) await call(); // warm-up
  const rtt: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    rtt.push(performance.now() - t);
  }
  let done = 0;
  const started = performance.now();
  const until = started + 3000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await call();
        done++;
      }
    }),
  );
  return {
    p50: pct(rtt, 50),
    p99: pct(rtt, 99),
    perS: done / ((performance.now() - started) / 1000),
  };
}

export async function benchRpc(n = 2000, concurrency = 32): Promise<string> {
  const m = await withFreePorts(defaultManifest());
  // The bench measures the pipeline, not the per-agent limits.
  m.gateway = { ...m.gateway, calls_per_second: 100_000, max_concurrent_calls: 1024 };
  const a = await startHost(m);
  try {
    await waitReady(a, 60_000);
    const made = await runCli(["agent", "create", "bench", "--json", "--home", a.home ?? ""], {
      env: { KRUXOS_HOME: "", KRUXOS_MANIFEST: a.manifestFile ?? "" },
    });
    const token = (JSON.parse(made.stdout) as { token: string }).token;
    const client = await RpcClient.connect(portOf(m, "gateway"), token);
    const sample = JSON.stringify((await client.invoke("agent.whoami")).result);
    const ours = await measure(() => client.invoke("agent.whoami"), n, concurrency);
    client.close();

    const echo = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    echo.on("connection", (ws) =>
      ws.on("message", (d) =>
        ws.send(`{"jsonrpc":"2.0","id":${JSON.parse(d.toString()).id},"result":${sample}}`),
      ),
    );
    await new Promise((r) => echo.once("listening", r));
    const port = (echo.address() as { port: number }).port;
    const bare = await RpcClient.connect(port, undefined, "/");
    const anchor = await measure(() => bare.invoke("agent.whoami"), n, concurrency);
    bare.close();
    echo.close();
    const row = (name: string, f: Figures): string =>
      `${name.padEnd(46)} p50 ${f.p50.toFixed(3).padStart(7)} ms  p99 ${f.p99.toFixed(3).padStart(7)} ms  ${f.perS.toFixed(0).padStart(7)} calls/s (${concurrency} in flight)`;
    return [
      `# JSON-RPC round trip, ${n} sequential calls; throughput for 3 s with ${concurrency} in flight (audit on, 2 records per call)`,
      row("kruxos /rpc capabilities.invoke agent.whoami", ours),
      row("anchor: bare ws echo of the same reply", anchor),
    ].join("\n");
  } finally {
    await a.cleanup();
  }
}
