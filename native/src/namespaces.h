/*
 * Namespaces: the user namespace with its uid/gid maps, the other namespaces the sandbox unshares
 * (mount, pid, net, uts, ipc), and what each needs right after unsharing (pid 1, loopback up,
 * hostname). Mount-table changes belong to mounts.c.
 */
#ifndef KRX_NAMESPACES_H
#define KRX_NAMESPACES_H

#include <sys/types.h>

#include "util.h"

/* The identity a sandboxed program has inside its user namespace (SPEC §8). */
#define KRX_SANDBOX_UID 1100
#define KRX_SANDBOX_GID 1100

/* unshare(flag) for a single CLONE_NEW* flag, named in the failure text. */
int ns_unshare(int flag, struct krx_err *err);

/*
 * unshare(CLONE_NEWUSER), deny setgroups, and map inside_uid/inside_gid to the caller's effective
 * uid/gid. The maps are written by the process itself, which the kernel allows only for its own
 * ids; mapping a root caller to a different unprivileged host uid (contain()) needs the maps
 * written from the parent namespace instead.
 */
int ns_enter_user(uid_t inside_uid, gid_t inside_gid, struct krx_err *err);

/*
 * fork() into new namespaces: the raw clone syscall with flags (CLONE_NEW*) | SIGCHLD and no new
 * stack, so the child continues on a copy of the caller's stack exactly like fork(). Returns the
 * child's pid (as the caller sees it) in the caller and 0 in the child. With CLONE_NEWPID the child
 * is pid 1 of its namespace; with CLONE_NEWUSER it holds every capability there but is unmapped
 * until ns_write_maps() runs in the caller.
 */
pid_t ns_clone(int flags, struct krx_err *err);

/*
 * From the parent namespace, for the child pid that ns_clone() put in a new user namespace:
 * setgroups "deny", uid_map "<inside_uid> <host_uid> 1", gid_map "<inside_gid> <host_gid> 1".
 * A root caller may map any host id (the caller checks it is not 0); others only their own.
 */
int ns_write_maps(pid_t pid, uid_t inside_uid, uid_t host_uid, gid_t inside_gid, gid_t host_gid,
                  struct krx_err *err);

/*
 * Inside a freshly mapped user namespace: take uid/gid as real, effective and saved ids. The
 * creator keeps its capabilities in the namespace (uid 0 is unmapped there, so no transition
 * "from root" clears them), which the mount and network setup still need.
 */
int ns_become(uid_t uid, gid_t gid, struct krx_err *err);

/* Inside a fresh net namespace: bring "lo" up. */
int ns_lo_up(struct krx_err *err);

/* After unshare(CLONE_NEWPID): fork once and check that the child is pid 1 of the new namespace. */
int ns_check_pid_init(struct krx_err *err);

/* Inside a fresh net namespace: bring "lo" up and check a TCP listener binds on 127.0.0.1. */
int ns_loopback_up(struct krx_err *err);

/* Inside a fresh uts namespace. */
int ns_set_hostname(const char *name, struct krx_err *err);

#endif
