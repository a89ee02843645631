// Local lint rules that turn KruxOS's architecture and security lessons into errors with a reason.
// The subsystem order is written once here and in docs/architecture.md (a unit test keeps them equal).
import path from "node:path";

/**
 * Lower number = lower layer. A subsystem may import only subsystems of a strictly lower layer.
 * core → config → policy and the stores → capabilities → effects → gateway, supervision →
 * appliance → cli (docs/architecture.md). Next: alerts joins the stores; comms, scheduler and the
 * service proxy join the effects.
 */
export const LAYERS = {
  core: 0,
  config: 1,
  policy: 2,
  audit: 2,
  state: 2,
  vault: 2,
  approvals: 2,
  capabilities: 3,
  sandbox: 4,
  egress: 4,
  gateway: 5,
  supervision: 5,
  appliance: 6,
  cli: 7,
};

/**
 * Lower layers a subsystem still may not import. Capabilities are written against ports
 * (src/capabilities/ports/): a handler that imported a store would reach state, secrets or the
 * audit log by a global name instead of what its call was handed.
 */
export const FORBIDDEN = {
  capabilities: {
    subsystems: ["audit", "state", "vault", "approvals"],
    why: "capabilities reach stores and effects only through the ports in src/capabilities/ports/; add a port there and let the wiring hand it in",
  },
};

function subsystemOf(file) {
  const parts = path.normalize(file).split(path.sep);
  const i = parts.lastIndexOf("src");
  if (i < 0 || i + 1 >= parts.length) return undefined;
  const name = parts[i + 1];
  return { name, srcRoot: parts.slice(0, i + 1).join(path.sep), rest: parts.slice(i + 2) };
}

const boundaries = {
  meta: {
    type: "problem",
    docs: { description: "Subsystems import each other only through index.ts and only downwards." },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const self = subsystemOf(file);
    if (!self || !(self.name in LAYERS)) return {};
    const check = (node) => {
      if (!node.source) return;
      const spec = node.source.value;
      if (typeof spec !== "string" || !spec.startsWith(".")) return;
      const target = subsystemOf(path.resolve(path.dirname(file), spec));
      if (!target || target.name === self.name) return;
      if (!(target.name in LAYERS)) {
        context.report({
          node,
          message: `'${target.name}' is not a known subsystem; add it to docs/architecture.md and eslint/subsystem-boundaries.js.`,
        });
        return;
      }
      if (target.rest.join("/") !== "index.js") {
        context.report({
          node,
          message: `Import '${target.name}' through its door '../${target.name}/index.js', not its inner file '${spec}'.`,
        });
      }
      const forbidden = FORBIDDEN[self.name];
      if (forbidden?.subsystems.includes(target.name)) {
        context.report({
          node,
          message: `'${self.name}' must not import '${target.name}': ${forbidden.why}.`,
        });
        return;
      }
      if (LAYERS[target.name] >= LAYERS[self.name]) {
        context.report({
          node,
          message: `'${self.name}' (layer ${LAYERS[self.name]}) must not import '${target.name}' (layer ${LAYERS[target.name]}): dependencies point one way, see docs/architecture.md.`,
        });
      }
    };
    return {
      ImportDeclaration: check,
      ImportExpression: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
    };
  },
};

export default { rules: { "subsystem-boundaries": boundaries } };
