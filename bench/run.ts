// `npm run bench`: every figure printed beside its anchor, both measured in this run.
// KRUXOS_BENCH=boot,rpc,policy,audit,sandbox,egress,secrets chooses sections (default: all).
import { run } from "../tests/helpers/repo.js";
import { imageUnavailable } from "../tests/contract/harness.js";
import { benchBoot, report } from "./boot.js";
import { benchRpc } from "./rpc.js";
import { benchPolicy } from "./policy.js";
import { benchAudit } from "./audit.js";
import { benchSandbox } from "./sandbox.js";
import { benchEgress } from "./egress.js";
import { benchSecrets } from "./secrets.js";

const only = new Set(
  (process.env.KRUXOS_BENCH ?? "boot,rpc,policy,audit,sandbox,egress,secrets").split(","),
);
const cpu = (await run("nproc", [])).stdout.trim();
console.log(`# kruxos bench — ${cpu} CPUs, node ${process.version}, ${new Date().toISOString()}`);

if (only.has("boot")) {
  const runs = Number(process.env.KRUXOS_BENCH_RUNS ?? 5);
  const whyNoImage = await imageUnavailable();
  if (whyNoImage) console.log(`# image boot not measured: ${whyNoImage}`);
  console.log(`\n# boot-to-ready, ${runs} runs each`);
  console.log(report(await benchBoot(runs, whyNoImage === undefined)));
}
if (only.has("rpc")) console.log(`\n${await benchRpc()}`);
if (only.has("policy")) console.log(`\n${await benchPolicy()}`);
if (only.has("audit")) console.log(`\n${await benchAudit()}`);
if (only.has("sandbox")) console.log(`\n${await benchSandbox()}`);
if (only.has("egress")) console.log(`\n${await benchEgress()}`);
if (only.has("secrets")) console.log(`\n${await benchSecrets()}`);
