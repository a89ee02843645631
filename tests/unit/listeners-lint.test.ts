// Every listener of the appliance goes through core's servers (timeouts, protocol errors confined
// to their connection). The lint rule that keeps it so is tested here, on code it must refuse.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { ESLint } from "eslint";
import { REPO } from "../helpers/repo.js";

async function messages(code: string, file: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: REPO });
  const [r] = await eslint.lintText(code, { filePath: path.join(REPO, file) });
  return (r?.messages ?? []).map((x) => x.message);
}

const REFUSED = [
  'import http from "node:http";\nexport const s = http.createServer(() => undefined);\n',
  'import net from "node:net";\nexport const s = net.createServer();\n',
  'import { createServer } from "node:http";\nexport const s = createServer();\n',
  'import { WebSocketServer } from "ws";\nexport const w = new WebSocketServer({ noServer: true });\n',
  'import Fastify from "fastify";\nexport const app = Fastify({ logger: false });\n',
  "export function f(w: { handleUpgrade(...a: unknown[]): void }): void {\n  w.handleUpgrade(1, 2, 3, () => undefined);\n}\n",
];

test("a listener made anywhere in src/ but core's servers is a lint error that says why", async () => {
  for (const code of REFUSED) {
    const found = await messages(code, "src/gateway/new-listener.ts");
    assert.ok(
      found.some((m) => /createHttpServer/.test(m)),
      `not refused:\n${code}\n${found.join("\n")}`,
    );
  }
});

test("Fastify with core's server factory, and core's own servers file, are allowed", async () => {
  const ok = await messages(
    'import Fastify from "fastify";\nimport { fastifyServerFactory } from "../core/index.js";\nexport const app = Fastify({ serverFactory: fastifyServerFactory({ name: "x" }) });\n',
    "src/gateway/new-listener.ts",
  );
  assert.deepEqual(
    ok.filter((m) => /createHttpServer/.test(m)),
    [],
  );
  const core = await messages(REFUSED[0] as string, "src/core/servers.ts");
  assert.deepEqual(
    core.filter((m) => /createHttpServer/.test(m)),
    [],
  );
});
