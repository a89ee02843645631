/*
 * seccomp-BPF. contain() installs the sandbox's deny list last, after Landlock; the probe installs
 * a one-rule filter to prove filters load and act on this host.
 */
#ifndef KRX_SECCOMP_H
#define KRX_SECCOMP_H

#include <linux/filter.h>
#include <linux/seccomp.h>

#include "util.h"

/* seccomp(SECCOMP_SET_MODE_FILTER): needs no_new_privs (or CAP_SYS_ADMIN) first. */
int seccomp_install(const struct sock_filter *insns, unsigned short count, struct krx_err *err);

/*
 * After no_new_privs, install "getppid() fails with EPERM, everything else allowed, a foreign
 * architecture is killed", then check getppid() now fails with EPERM and getpid() still works.
 */
int seccomp_probe(struct krx_err *err);

#endif
