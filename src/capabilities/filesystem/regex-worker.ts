// Runs an agent's regular expression off the main thread. JavaScript regexes can backtrack for
// ever; the search handler gives each file a deadline and terminates this worker when it passes.
import { parentPort, workerData } from "node:worker_threads";

interface Job {
  readonly id: number;
  readonly text: string;
  readonly limit: number;
}

const re = new RegExp(
  (workerData as { source: string }).source,
  (workerData as { flags: string }).flags,
);

parentPort?.on("message", (job: Job) => {
  const lines: number[] = [];
  const all = job.text.split("\n");
  for (let i = 0; i < all.length && lines.length < job.limit; i++) {
    re.lastIndex = 0;
    if (re.test(all[i] ?? "")) lines.push(i);
  }
  parentPort?.postMessage({ id: job.id, lines });
});
