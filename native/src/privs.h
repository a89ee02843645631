/*
 * The workload process's own privileges, dropped in contain() after the namespaces are set up and
 * before Landlock and seccomp: capabilities, no_new_privs, the new session, inherited fds.
 */
#ifndef KRX_PRIVS_H
#define KRX_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

#include "util.h"

/* prctl(PR_SET_NO_NEW_PRIVS, 1): execve() can never grant privileges again (setuid, file caps). */
int privs_no_new_privs(struct krx_err *err);

/* Set no_new_privs and read it back with PR_GET_NO_NEW_PRIVS. */
int privs_probe_no_new_privs(struct krx_err *err);

/*
 * Drop every capability for good: clear the ambient set, empty the bounding set (so not even an
 * execve as uid 0 inside the namespace could regain any), then, when change_ids, become uid/gid
 * with no supplementary groups (a root caller without a user namespace), and finally capset()
 * effective, permitted and inheritable to zero and read them back.
 */
int privs_drop_all(bool change_ids, uid_t uid, gid_t gid, struct krx_err *err);

/* setsid(): the program leads its own session, with no controlling terminal to inject into. */
int privs_new_session(struct krx_err *err);

/*
 * Close every fd above 2 except keep (close_range, or a loop up to RLIMIT_NOFILE where the kernel
 * or a filter refuses it), so nothing the helper or its caller held leaks into the program.
 */
int privs_close_fds(int keep, struct krx_err *err);

#endif
