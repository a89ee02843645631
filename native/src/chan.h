/*
 * The channel between the helper's outer process and the sandbox's init: one SOCK_SEQPACKET
 * socketpair, so every message arrives whole or not at all, and an fd can ride along
 * (SCM_RIGHTS) — that is how the relay listener created inside the network namespace reaches the
 * outer process, which alone can also reach the egress proxy's socket.
 */
#ifndef KRX_CHAN_H
#define KRX_CHAN_H

#include "util.h"

enum chan_kind {
    CHAN_HOST = 'H',     /* outer → init: value is a mnt_host slot (mounts.h); fd: its O_PATH fd */
    CHAN_GO = 'G',       /* outer → init: maps written, cgroup joined; carry on */
    CHAN_READY = 'R',    /* init → outer: value 1 if /proc is private; fd: the relay listener */
    CHAN_WORKLOAD = 'W', /* init → outer: value is the workload's pid as init sees it */
    CHAN_EXIT = 'X',     /* init → outer: value is the workload's wait status */
};

struct chan_msg {
    char kind;
    int value;
};

int chan_pair(int sv[2], struct krx_err *err);

/* Send one message, with fd attached unless it is -1. Never raises SIGPIPE. */
int chan_send(int sock, char kind, int value, int fd, struct krx_err *err);

/*
 * Receive one message: 1 with *msg (and *fd, -1 when none came; received fds are O_CLOEXEC),
 * 0 at EOF, -1 on error (EAGAIN included, with errno set, when flags hold MSG_DONTWAIT).
 */
int chan_recv(int sock, struct chan_msg *msg, int *fd, int flags, struct krx_err *err);

#endif
