import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";
import krux from "./eslint/subsystem-boundaries.js";

const noShell = [
  {
    name: "node:child_process",
    importNames: ["exec", "execSync"],
    message: "exec runs a shell; use execFile/spawn with an argv array.",
  },
  {
    name: "child_process",
    importNames: ["exec", "execSync"],
    message: "exec runs a shell; use execFile/spawn with an argv array.",
  },
];

const outboundNetwork = {
  paths: [
    ...noShell,
    {
      name: "node:https",
      message: "Outbound network belongs to src/egress/ only; local IPC uses core's unixRequest.",
    },
    { name: "https", message: "Outbound network belongs to src/egress/ only." },
    { name: "node:dgram", message: "UDP belongs to src/egress/ only." },
    { name: "node:tls", message: "TLS client connections belong to src/egress/ only." },
  ],
};

const securitySyntax = [
  {
    selector: "Property[key.name='shell'][value.value=true]",
    message: "Never run a shell: pass an argv array to execFile/spawn.",
  },
  {
    selector: "CallExpression[callee.name='fetch']",
    message: "Outbound network belongs to src/egress/ only.",
  },
];

// One bad frame from a client once stopped the whole appliance: a WebSocket without an error
// listener throws past its connection. Every listener is made by src/core/servers.ts, which gives
// each socket its timeouts and fault handling; nothing else may make one.
const LISTENER_MESSAGE =
  "Make listeners with core's createHttpServer / createWebSocketServer / fastifyServerFactory, so every socket survives its peer (timeouts, protocol errors, peer-fault metrics).";
const listenerSyntax = [
  { selector: "CallExpression[callee.property.name='createServer']", message: LISTENER_MESSAGE },
  { selector: "CallExpression[callee.name='createServer']", message: LISTENER_MESSAGE },
  { selector: "NewExpression[callee.name='WebSocketServer']", message: LISTENER_MESSAGE },
  { selector: "CallExpression[callee.property.name='handleUpgrade']", message: LISTENER_MESSAGE },
  {
    selector: "CallExpression[callee.name='Fastify']:not(:has(Property[key.name='serverFactory']))",
    message: LISTENER_MESSAGE,
  },
];

export default tseslint.config(
  {
    ignores: [
      "dist/**",
      "node_modules/**",
      ".kruxos/**",
      ".kruxos-build/**",
      "native/**",
      "result*",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { krux },
    languageOptions: { globals: { ...globals.node } },
    rules: {
      "no-restricted-imports": ["error", { paths: noShell }],
      "krux/subsystem-boundaries": "error",
      "no-eval": "error",
      "no-new-func": "error",
      "no-implied-eval": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "no-restricted-syntax": ["error", ...securitySyntax],
    },
  },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/egress/**"],
    rules: { "no-restricted-imports": ["error", outboundNetwork] },
  },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/core/servers.ts"],
    rules: { "no-restricted-syntax": ["error", ...securitySyntax, ...listenerSyntax] },
  },
  {
    // Browser code served by the dashboard: it talks only to its own origin.
    files: ["config/dashboard/**/*.js"],
    languageOptions: { globals: { ...globals.browser } },
    rules: { "no-restricted-syntax": "off" },
  },
  {
    files: ["tests/**/*.ts", "scripts/**/*.ts", "bench/**/*.ts"],
    rules: { "no-restricted-syntax": "off" },
  },
);
