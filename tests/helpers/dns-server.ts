// A tiny authoritative DNS server on 127.0.0.1 (UDP) for tests: answers A, AAAA, CNAME, MX and TXT
// from a function, with TTL 0 so no resolver caches, and records every question it was asked.
import dgram from "node:dgram";
import { parseIp } from "../../src/egress/index.js";

export type RecordKind = "A" | "AAAA" | "CNAME" | "MX" | "TXT";
export type Answer = string | { priority: number; exchange: string };
/** Answers for one question; undefined = the name does not exist (NXDOMAIN), [] = no data. */
export type Zone = (name: string, type: RecordKind) => readonly Answer[] | undefined;

export interface DnsServer {
  readonly port: number;
  /** Every question received, in order ("name TYPE"). */
  readonly questions: string[];
  close(): Promise<void>;
}

const TYPE_CODES: Record<RecordKind, number> = { A: 1, CNAME: 5, MX: 15, TXT: 16, AAAA: 28 };
const CODE_TYPES = new Map(Object.entries(TYPE_CODES).map(([k, v]) => [v, k as RecordKind]));

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, "").split(".").filter(Boolean);
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.of(p.length), Buffer.from(p, "ascii")])),
    Buffer.of(0),
  ]);
}

function rdata(type: RecordKind, a: Answer): Buffer {
  if (type === "A" || type === "AAAA") {
    const ip = parseIp(a as string);
    if (!ip) throw new Error(`bad address ${String(a)}`);
    return Buffer.from(ip.bytes);
  }
  if (type === "CNAME") return encodeName(a as string);
  if (type === "MX") {
    const mx = a as { priority: number; exchange: string };
    const p = Buffer.alloc(2);
    p.writeUInt16BE(mx.priority);
    return Buffer.concat([p, encodeName(mx.exchange)]);
  }
  const t = Buffer.from(a as string, "utf8");
  return Buffer.concat([Buffer.of(t.length), t]);
}

export async function startDnsServer(zone: Zone): Promise<DnsServer> {
  const socket = dgram.createSocket("udp4");
  const questions: string[] = [];
  socket.on("message", (msg, rinfo) => {
    if (msg.length < 12) return;
    // One question: QNAME labels, QTYPE, QCLASS.
    let off = 12;
    const labels: string[] = [];
    while (off < msg.length && msg[off] !== 0) {
      const len = msg[off] as number;
      labels.push(msg.subarray(off + 1, off + 1 + len).toString("ascii"));
      off += 1 + len;
    }
    off += 1;
    const qtype = msg.readUInt16BE(off);
    const qEnd = off + 4;
    const name = labels.join(".").toLowerCase();
    const type = CODE_TYPES.get(qtype);
    questions.push(`${name} ${type ?? qtype}`);
    const answers = type ? zone(name, type) : [];
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    const rcode = answers === undefined ? 3 : 0;
    header.writeUInt16BE(0x8400 | 0x0100 | 0x0080 | rcode, 2); // QR, AA, RD, RA
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers?.length ?? 0, 6);
    const rrs = (answers ?? []).map((a) => {
      const data = rdata(type as RecordKind, a);
      const fixed = Buffer.alloc(12);
      fixed.writeUInt16BE(0xc00c, 0); // pointer to the question's name
      fixed.writeUInt16BE(qtype, 2);
      fixed.writeUInt16BE(1, 4); // IN
      fixed.writeUInt32BE(0, 6); // TTL 0: nothing may cache it
      fixed.writeUInt16BE(data.length, 10);
      return Buffer.concat([fixed, data]);
    });
    socket.send(Buffer.concat([header, msg.subarray(12, qEnd), ...rrs]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    port: socket.address().port,
    questions,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
