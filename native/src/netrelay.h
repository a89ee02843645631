/*
 * The egress relay. Inside the sandbox's network namespace (nothing but lo) the sandbox's init
 * creates a TCP listener on 127.0.0.1:<relay_port> and hands it to the helper's outer process over
 * the channel. The outer process, still in the caller's mount and network namespaces, accepts on
 * it and joins every connection to a fresh connection to the egress proxy's unix socket, copying
 * bytes both ways with bounded buffers and passing half-closes through. The proxy, not the relay,
 * decides what may be reached (per-call credentials travel in the program's proxy settings).
 *
 * All of it runs in the outer process's single poll() loop: netrelay_pollfds() says what to wait
 * for, netrelay_dispatch() acts on what poll() returned, with no blocking call anywhere.
 */
#ifndef KRX_NETRELAY_H
#define KRX_NETRELAY_H

#include <poll.h>
#include <stddef.h>

#include "util.h"

/* Concurrent relayed connections; more wait in the listener's backlog. */
#define NETRELAY_MAX_CONNS 64
/* Bytes buffered per direction per connection. */
#define NETRELAY_BUF 16384
/* pollfd entries netrelay_pollfds() may fill. */
#define NETRELAY_MAX_POLLFDS (1 + 2 * NETRELAY_MAX_CONNS)

/* In the sandbox's network namespace: a listener on 127.0.0.1:port (SO_REUSEADDR, CLOEXEC). */
int netrelay_listen(unsigned port, struct krx_err *err);

/* Start relaying from listener (now owned by the relay) to the unix socket at proxy_socket. */
void netrelay_start(int listener, const char *proxy_socket);

/* Fill pfds (room for NETRELAY_MAX_POLLFDS) for the next poll(); returns how many. */
size_t netrelay_pollfds(struct pollfd *pfds);

/* Act on the pfds that netrelay_pollfds() filled, after poll() returned. */
void netrelay_dispatch(const struct pollfd *pfds, size_t count);

/* Close the listener and every connection. */
void netrelay_stop(void);

#endif
