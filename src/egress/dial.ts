// Opening the upstream socket to a pinned address, and splicing two sockets into a tunnel. The
// dialer connects only to the addresses admission produced (IP literals: no lookup can happen), in
// order, moving on only when an address is unreachable at once (no route, no IPv6); the tunnel
// keeps half-closes and tears both sides down together on error, idle or close.
import net from "node:net";
import type { IpAddress } from "./addresses.js";

export class DialError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly timedOut: boolean,
    /** The address that failed, when one was tried. */
    readonly address: string | undefined,
  ) {
    super(message);
  }
}

/** Errors that mean "this address cannot work from here", worth trying the next one. */
const NEXT_ADDRESS = new Set(["ENETUNREACH", "EHOSTUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT"]);

function connectOne(
  ip: IpAddress,
  port: number,
  ms: number,
  signal: AbortSignal,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: ip.text,
      port,
      family: ip.family,
      allowHalfOpen: true,
      noDelay: true,
    });
    const done = (err?: DialError): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      socket.removeListener("error", onError);
      socket.removeListener("connect", onConnect);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve(socket);
    };
    const onError = (err: NodeJS.ErrnoException): void =>
      done(
        new DialError(
          `${ip.text}:${port}: ${err.code ?? err.message}`,
          err.code ?? "EIO",
          false,
          ip.text,
        ),
      );
    const onConnect = (): void => done();
    const onAbort = (): void =>
      done(new DialError("client went away", "ECANCELED", false, ip.text));
    const timer = setTimeout(
      () =>
        done(
          new DialError(`${ip.text}:${port}: no answer in ${ms} ms`, "ETIMEDOUT", true, ip.text),
        ),
      ms,
    );
    socket.once("error", onError);
    socket.once("connect", onConnect);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Connect to the first reachable pinned address within `ms` overall. */
export async function dial(
  addresses: readonly IpAddress[],
  port: number,
  ms: number,
  signal: AbortSignal,
): Promise<{ socket: net.Socket; address: IpAddress }> {
  const deadline = Date.now() + ms;
  let last: DialError = new DialError("no address to connect to", "ENOADDR", false, undefined);
  for (const ip of addresses) {
    const left = deadline - Date.now();
    if (left <= 0) throw new DialError(`no answer in ${ms} ms`, "ETIMEDOUT", true, ip.text);
    try {
      return { socket: await connectOne(ip, port, left, signal), address: ip };
    } catch (err) {
      last = err as DialError;
      if (!NEXT_ADDRESS.has(last.code)) throw last;
    }
  }
  throw last;
}

/**
 * Splice client ↔ upstream. Half-closes pass through (allowHalfOpen on both ends); an error, an
 * idle period or either side closing destroys both. Resolves once both are closed.
 */
export function splice(
  client: net.Socket,
  upstream: net.Socket,
  idleMs: number,
): Promise<{ bytesIn: number; bytesOut: number }> {
  return new Promise((resolve) => {
    let closed = 0;
    const destroyBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    const onClose = (): void => {
      destroyBoth();
      if (++closed === 2) resolve({ bytesIn: upstream.bytesRead, bytesOut: upstream.bytesWritten });
    };
    for (const s of [client, upstream]) {
      s.on("error", destroyBoth);
      s.setTimeout(idleMs, destroyBoth);
      if (s.closed) queueMicrotask(onClose);
      else s.once("close", onClose);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
}
