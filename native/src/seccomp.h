/*
 * seccomp-BPF. contain() installs the sandbox's deny list last, after Landlock; the probe installs
 * a one-rule filter to prove filters load and act on this host.
 */
#ifndef KRX_SECCOMP_H
#define KRX_SECCOMP_H

#include <linux/filter.h>
#include <linux/seccomp.h>

#include "util.h"

struct krx_spec; /* spec.h */

/* seccomp(SECCOMP_SET_MODE_FILTER): needs no_new_privs (or CAP_SYS_ADMIN) first. */
int seccomp_install(const struct sock_filter *insns, unsigned short count, struct krx_err *err);

/*
 * The sandbox filter (seccomp.c lists every rule and why): default allow, an explicit deny list
 * answering EPERM (ENOSYS where programs probe and fall back, EAFNOSUPPORT for socket families),
 * argument checks on clone, socket, socketpair, ioctl and personality, and the process killed on
 * a foreign architecture or an x32 syscall number. Syscalls newer than this filter knows get
 * ENOSYS. Installs nothing when the spec does not list "seccomp". Needs no_new_privs first; the
 * caller execs right after, so the filter need not allow anything the helper itself still does.
 */
int seccomp_apply(const struct krx_spec *spec, struct krx_err *err);

/* The same filter without a spec: for the probe and for harnesses that test the filter alone. */
int seccomp_apply_sandbox_filter(struct krx_err *err);

/*
 * After no_new_privs, install "getppid() fails with EPERM, everything else allowed, a foreign
 * architecture is killed", then check getppid() now fails with EPERM and getpid() still works.
 */
int seccomp_probe(struct krx_err *err);

#endif
