// Raw WebSocket bytes for tests that play a hostile client: a hand-made upgrade and frame builder,
// so a test can send what no well-behaved client library would (bad UTF-8, reserved bits, lying
// lengths), and read the server's close frame back.
import { randomBytes } from "node:crypto";
import net from "node:net";

export interface RawConnection {
  readonly socket: net.Socket;
  /** The HTTP status line the server answered the upgrade with. */
  readonly status: string;
  /** Bytes after the response head (server frames already sent, e.g. a hello). */
  readonly rest: Buffer;
}

/** Open a TCP connection and send a WebSocket upgrade; resolves once the response head arrived. */
export function rawUpgrade(
  port: number,
  urlPath: string,
  headers: Readonly<Record<string, string>> = {},
  localAddress?: string,
): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(
      { port, host: "127.0.0.1", ...(localAddress ? { localAddress } : {}) },
      () => {
        const extra = Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join("");
        socket.write(
          `GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
        );
      },
    );
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      socket.pause();
      const status = buf.subarray(0, buf.indexOf("\r\n")).toString("latin1");
      resolve({ socket, status, rest: buf.subarray(end + 4) });
    };
    socket.on("data", onData);
    socket.once("error", reject);
    setTimeout(() => reject(new Error("upgrade timed out")), 10_000).unref();
  });
}

export interface FrameSpec {
  readonly fin?: boolean;
  readonly rsv?: number;
  readonly opcode: number;
  readonly payload?: Buffer;
  /** Mask with this key (client frames must be masked); null sends an unmasked frame. */
  readonly mask?: Buffer | null;
  /** Claim this length in the header instead of the payload's real length. */
  readonly claimedLength?: bigint;
}

/** One frame's bytes, as RFC 6455 §5.2 lays them out (or deliberately not). */
export function frame(f: FrameSpec): Buffer {
  const payload = f.payload ?? Buffer.alloc(0);
  const mask = f.mask === undefined ? Buffer.from([1, 2, 3, 4]) : f.mask;
  const len = f.claimedLength ?? BigInt(payload.length);
  const b0 = (f.fin === false ? 0 : 0x80) | ((f.rsv ?? 0) << 4) | f.opcode;
  const maskBit = mask ? 0x80 : 0;
  let head: Buffer;
  if (len < 126n) head = Buffer.from([b0, maskBit | Number(len)]);
  else if (len < 65536n) {
    head = Buffer.alloc(4);
    head[0] = b0;
    head[1] = maskBit | 126;
    head.writeUInt16BE(Number(len), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(len, 2);
  }
  if (!mask) return Buffer.concat([head, payload]);
  const masked = Buffer.from(payload.map((x, i) => x ^ (mask[i % 4] as number)));
  return Buffer.concat([head, mask, masked]);
}

/** A close frame's payload: the code and an optional reason. */
export function closePayload(code: number, reason: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code, 0);
  return Buffer.concat([b, reason]);
}

export interface ServerEnd {
  /** The code of the server's close frame, if it sent one. */
  readonly closeCode: number | undefined;
  /** Whether the server closed the TCP connection within the wait. */
  readonly closed: boolean;
}

/**
 * Write `bytes` after the upgrade, then read server frames until the connection closes (or
 * `waitMs` passes) and report the close frame's code.
 */
export function sendAndReadClose(
  c: RawConnection,
  bytes: Buffer,
  waitMs = 5000,
): Promise<ServerEnd> {
  return new Promise((resolve) => {
    let buf = Buffer.from(c.rest);
    let closeCode: number | undefined;
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      c.socket.destroy();
      resolve({ closeCode, closed });
    };
    const parse = (): void => {
      for (;;) {
        if (buf.length < 2) return;
        const opcode = (buf[0] as number) & 0x0f;
        let len = (buf[1] as number) & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        if (opcode === 8 && len >= 2) closeCode ??= buf.readUInt16BE(off);
        else if (opcode === 8) closeCode ??= 1005;
        buf = buf.subarray(off + len);
      }
    };
    c.socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      parse();
    });
    c.socket.on("close", () => finish(true));
    c.socket.on("error", () => finish(true));
    c.socket.resume();
    parse();
    c.socket.write(bytes);
    setTimeout(() => finish(false), waitMs).unref();
  });
}
