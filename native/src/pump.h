/*
 * The program's stdout and stderr. The launcher's fds 1 and 2 are often sockets (what Node's
 * spawn "pipe" creates), and a socket cannot be reopened through /proc/self/fd: inside the sandbox
 * `echo hi > /dev/stdout` would fail with ENXIO. So the program writes into two pipes of the
 * helper's own, and the outer process copies each to its own fd 1 or 2.
 *
 * A pump runs in the outer process's single poll() loop (supervise.c) like the relay: pump_pollfds()
 * says what to wait for, pump_dispatch() acts on it. Nothing is dropped while the destination
 * still takes bytes: with the buffer full the pipe is simply not read, so a slow reader slows the
 * program down. The destination's file status flags are never changed (it may be shared with the
 * caller): sockets are written with MSG_DONTWAIT, pipes PIPE_BUF bytes at a time once poll()
 * reports room, anything else (a file, a terminal) by plain write(). A destination that fails
 * (EPIPE: nobody reads any more) is given up and what the program writes from then on discarded,
 * so the program never blocks on output nobody will see.
 */
#ifndef KRX_PUMP_H
#define KRX_PUMP_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Bytes buffered per stream between the pipe and the destination. */
#define PUMP_BUF 65536
/* pollfd entries pump_pollfds() fills: the pipe, then the destination (fd -1 when not wanted). */
#define PUMP_POLLFDS 2

enum pump_dest { PUMP_DEST_SOCKET, PUMP_DEST_PIPE, PUMP_DEST_OTHER };

struct pump {
    int from;  /* read end of the program's pipe, O_NONBLOCK; -1 once at EOF or given up */
    int to;    /* the helper's own fd 1 or 2 */
    enum pump_dest kind;
    bool dead; /* `to` failed: everything from now on is read and dropped */
    size_t off, len; /* buf[off, len) is still to be written */
    char buf[PUMP_BUF];
};

/* Take over from (made non-blocking, closed by the pump) and copy it to `to`. */
int pump_init(struct pump *p, int from, int to, struct krx_err *err);

/* Fill pfds[0..PUMP_POLLFDS) for the next poll(). */
void pump_pollfds(const struct pump *p, struct pollfd *pfds);

/* Act on what poll() returned in the entries pump_pollfds() filled. */
void pump_dispatch(struct pump *p, const struct pollfd *pfds);

/* The pipe is at EOF and everything read from it is written (or given up). */
bool pump_done(const struct pump *p);

/* True while the pump waits for the pipe (not at EOF, room in the buffer). */
bool pump_wants_input(const struct pump *p);

/* Stop reading: close the pipe; what is buffered is still written. */
void pump_stop_input(struct pump *p);

/* Stop altogether: close the pipe and drop what is buffered. */
void pump_abandon(struct pump *p);

#endif
