// Entry point of the `kruxos` command.
import { parseArgs } from "node:util";
import { COMMANDS, UsageError, helpText } from "./commands.js";

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    process.stdout.write(helpText() + "\n");
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === "--version") argv = ["version"];
  // Longest verb first so "config validate" wins over a hypothetical "config".
  const cmd = [...COMMANDS]
    .sort((a, b) => b.verb.length - a.verb.length)
    .find((c) => c.verb.split(" ").every((w, i) => argv[i] === w));
  if (!cmd) {
    process.stderr.write(
      `kruxos: unknown command "${argv.slice(0, 2).join(" ")}"\n\n${helpText()}\n`,
    );
    return 2;
  }
  const rest = argv.slice(cmd.verb.split(" ").length);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`${cmd.summary}\n\nUsage: ${cmd.usage}\n`);
    return 0;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: cmd.options,
      allowPositionals: (cmd.positionals ?? 0) > 0,
      strict: true,
    });
    if (positionals.length > (cmd.positionals ?? 0))
      throw new UsageError(`unexpected argument "${positionals.at(-1)}"`);
    return await cmd.run(values as Record<string, string | boolean | undefined>, positionals);
  } catch (err) {
    const usage =
      err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    if (usage) {
      process.stderr.write(`kruxos ${cmd.verb}: ${(err as Error).message}\nUsage: ${cmd.usage}\n`);
      return 2;
    }
    const e = err as { code?: string; message?: string };
    process.stderr.write(
      `kruxos ${cmd.verb}: ${e.code ? `${e.code}: ` : ""}${e.message ?? String(err)}\n`,
    );
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`kruxos: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
