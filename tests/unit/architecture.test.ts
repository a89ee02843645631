// The subsystem table of docs/architecture.md is the one the lint rule enforces, and every
// subsystem has an index.ts door that says what it owns and exports by name only.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { REPO } from "../helpers/repo.js";

test("docs/architecture.md and the lint rule agree on every subsystem's layer", async () => {
  const { LAYERS } = (await import(path.join(REPO, "eslint", "subsystem-boundaries.js"))) as {
    LAYERS: Record<string, number>;
  };
  const doc = readFileSync(path.join(REPO, "docs", "architecture.md"), "utf8");
  const rows = [...doc.matchAll(/^\| (\d) \| (\w+) \|/gm)].map(
    (m) => [m[2], Number(m[1])] as const,
  );
  assert.deepEqual(Object.fromEntries(rows), LAYERS);
});

test("every folder under src/ is a known subsystem with a commented index.ts and no export *", async () => {
  const { LAYERS } = (await import(path.join(REPO, "eslint", "subsystem-boundaries.js"))) as {
    LAYERS: Record<string, number>;
  };
  for (const dir of readdirSync(path.join(REPO, "src"), { withFileTypes: true }).filter((d) =>
    d.isDirectory(),
  )) {
    assert.ok(dir.name in LAYERS, `src/${dir.name} is not in the architecture table`);
    const index = path.join(REPO, "src", dir.name, "index.ts");
    if (!existsSync(index)) {
      assert.ok(!["core", "config", "gateway", "appliance"].includes(dir.name));
      continue;
    }
    const text = readFileSync(index, "utf8");
    assert.match(
      text,
      /^\/\/ \w+: /,
      `src/${dir.name}/index.ts must open with "// ${dir.name}: what it owns …"`,
    );
    assert.doesNotMatch(text, /export \*/, `src/${dir.name}/index.ts uses export *`);
  }
});

test("the lint rule rejects an inner-file import, an upward import and a capability reaching a store", async () => {
  const { ESLint } = await import("eslint");
  const eslint = new ESLint({ cwd: REPO });
  const [inner] = await eslint.lintText(
    'import { seal } from "../appliance/seal.js";\nvoid seal;\n',
    {
      filePath: path.join(REPO, "src", "cli", "probe.ts"),
    },
  );
  assert.ok(
    inner?.messages.some(
      (m) => m.ruleId === "krux/subsystem-boundaries" && /through its door/.test(m.message),
    ),
  );
  const [upward] = await eslint.lintText(
    'import { boot } from "../appliance/index.js";\nvoid boot;\n',
    {
      filePath: path.join(REPO, "src", "policy", "probe.ts"),
    },
  );
  assert.ok(
    upward?.messages.some(
      (m) => m.ruleId === "krux/subsystem-boundaries" && /must not import/.test(m.message),
    ),
  );
  const [store] = await eslint.lintText(
    'import { AuditLog } from "../audit/index.js";\nvoid AuditLog;\n',
    { filePath: path.join(REPO, "src", "capabilities", "probe.ts") },
  );
  assert.ok(
    store?.messages.some(
      (m) => m.ruleId === "krux/subsystem-boundaries" && /only through the ports/.test(m.message),
    ),
    "a capability importing a store is refused even though the store is a lower layer",
  );
  const [shell] = await eslint.lintText(
    'import { spawn } from "node:child_process";\nspawn("ls", [], { shell: true });\n',
    {
      filePath: path.join(REPO, "src", "core", "probe.ts"),
    },
  );
  assert.ok(shell?.messages.some((m) => /Never run a shell/.test(m.message)));
  const [net] = await eslint.lintText('import https from "node:https";\nvoid https;\n', {
    filePath: path.join(REPO, "src", "gateway", "probe.ts"),
  });
  assert.ok(net?.messages.some((m) => m.ruleId === "no-restricted-imports"));
});
