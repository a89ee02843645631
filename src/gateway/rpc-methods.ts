// The JSON-RPC methods of SPEC §4 for capabilities and approvals: parameter checking (with schema
// paths for InvalidParams), in front of the pipeline (which applies the agent's limits).
import { clip } from "../core/index.js";
import { invalidParams, methodNotFound, type Dispatch } from "./jsonrpc.js";
import type { AgentIdentity, Pipeline } from "./pipeline-types.js";

type Params = Record<string, unknown>;

type ParamType = "string" | "object" | "number" | "any";

interface ParamSpec {
  readonly required: readonly string[];
  readonly types: ReadonlyMap<string, ParamType>;
}

const spec = (required: readonly string[], types: Record<string, ParamType>): ParamSpec => ({
  required,
  types: new Map(Object.entries(types)),
});

// A Map, not an object: a client names the method, and "toString" or "__proto__" must be just
// another unknown name, not an inherited member.
const METHODS: ReadonlyMap<string, ParamSpec> = new Map([
  ["capabilities.list", spec([], { category: "string", tag: "string" })],
  ["capabilities.describe", spec(["name"], { name: "string" })],
  [
    "capabilities.invoke",
    spec(["name"], { name: "string", inputs: "object", transaction_id: "string" }),
  ],
  [
    "capabilities.call",
    spec(["name"], { name: "string", inputs: "object", transaction_id: "string" }),
  ],
  ["approvals.check", spec(["approval_id"], { approval_id: "string" })],
  ["approvals.wait", spec(["approval_id"], { approval_id: "string", timeout_s: "number" })],
]);

export const RPC_METHODS = Object.freeze([...METHODS.keys()]);

function checkParams(method: string, expected: ParamSpec, params: unknown): Params {
  if (Array.isArray(params) || typeof params !== "object" || params === null)
    throw invalidParams(`${method} takes named parameters (an object)`, [
      { path: "", message: "must be an object" },
    ]);
  const p = params as Params;
  const errors: { path: string; message: string }[] = [];
  for (const k of expected.required)
    if (!Object.hasOwn(p, k) || p[k] === undefined)
      errors.push({ path: `/${k}`, message: "is required" });
  for (const [k, v] of Object.entries(p)) {
    const type = expected.types.get(k);
    if (!type)
      errors.push({ path: `/${clip(k, 64)}`, message: "is not a parameter of this method" });
    else if (type === "object" && (typeof v !== "object" || v === null || Array.isArray(v)))
      errors.push({ path: `/${k}`, message: "must be an object" });
    else if (type !== "object" && type !== "any" && typeof v !== type)
      errors.push({ path: `/${k}`, message: `must be a ${type}` });
  }
  if (errors.length > 0) throw invalidParams(`invalid params for ${method}`, errors);
  return p;
}

/**
 * The dispatch function of one agent connection. `signal` aborts when the connection closes: a
 * running call is then cancelled (its sandbox killed) and a wait ends.
 */
export function rpcDispatch(
  pipeline: Pipeline,
  agent: AgentIdentity,
  signal: AbortSignal,
): Dispatch {
  return async (method, params) => {
    const methodSpec = METHODS.get(method);
    if (!methodSpec) throw methodNotFound(method);
    const p = checkParams(method, methodSpec, params);
    switch (method) {
      case "capabilities.list":
        return {
          capabilities: await pipeline.list(agent, {
            ...(p.category ? { category: p.category as string } : {}),
            ...(p.tag ? { tag: p.tag as string } : {}),
          }),
        };
      case "capabilities.describe":
        return pipeline.describe(agent, p.name as string);
      case "capabilities.invoke":
      case "capabilities.call":
        return pipeline.invoke(agent, p.name as string, p.inputs ?? {}, {
          signal,
          ...(typeof p.transaction_id === "string" ? { transactionId: p.transaction_id } : {}),
        });
      case "approvals.check":
        return pipeline.approvalCheck(agent, p.approval_id as string);
      default: {
        const timeout = Math.min(Math.max(Number(p.timeout_s ?? 30), 0), 300);
        return pipeline.approvalWait(agent, p.approval_id as string, timeout, signal);
      }
    }
  };
}
