// supervisord's XML-RPC over its unix socket: just the one call the seal needs.
import { KruxError, unixRequest } from "../core/index.js";

export interface ProcessInfo {
  readonly name: string;
  readonly statename: string;
}

/** Parse supervisor.getAllProcessInfo's response: an array of structs with string/int members. */
export function parseProcessInfo(xml: string): ProcessInfo[] {
  if (/<fault>/.test(xml)) {
    const msg =
      /<name>faultString<\/name>\s*<value>\s*<string>([^<]*)<\/string>/.exec(xml)?.[1] ?? "fault";
    throw new KruxError("SupervisorUnavailable", `supervisord answered a fault: ${msg}`);
  }
  const out: ProcessInfo[] = [];
  for (const struct of xml.split("<struct>").slice(1)) {
    const members = new Map<string, string>();
    const re =
      /<member>\s*<name>([^<]+)<\/name>\s*<value>\s*(?:<(string|int|i4|boolean)>([^<]*)<\/\2>|([^<]*))\s*<\/value>\s*<\/member>/g;
    for (const m of struct.matchAll(re)) members.set(m[1] ?? "", m[3] ?? m[4] ?? "");
    const name = members.get("name");
    const statename = members.get("statename");
    if (name && statename) out.push({ name, statename });
  }
  return out;
}

export async function getAllProcessInfo(socketPath: string): Promise<ProcessInfo[]> {
  const body =
    '<?xml version="1.0"?><methodCall><methodName>supervisor.getAllProcessInfo</methodName><params></params></methodCall>';
  let res;
  try {
    res = await unixRequest(
      socketPath,
      "POST",
      "/RPC2",
      body,
      { "content-type": "text/xml" },
      3000,
    );
  } catch (err) {
    throw new KruxError(
      "SupervisorUnavailable",
      `cannot reach supervisord at ${socketPath}: ${(err as Error).message}`,
    );
  }
  if (res.status !== 200)
    throw new KruxError("SupervisorUnavailable", `supervisord answered HTTP ${res.status}`);
  return parseProcessInfo(res.body);
}
