// `npm run bench`: every figure printed beside its anchor, both measured in this run.
import { run } from "../tests/helpers/repo.js";
import { imageUnavailable } from "../tests/contract/harness.js";
import { benchBoot, report } from "./boot.js";

const runs = Number(process.env.KRUXOS_BENCH_RUNS ?? 5);
const whyNoImage = await imageUnavailable();
if (whyNoImage) console.log(`# image boot not measured: ${whyNoImage}`);
const cpu = (await run("nproc", [])).stdout.trim();
console.log(`# boot-to-ready, ${runs} runs each, ${cpu} CPUs, node ${process.version}`);
console.log(report(await benchBoot(runs, whyNoImage === undefined)));
