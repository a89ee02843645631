/* Resource limits: address space, CPU, open files, file size, processes, core dumps. */
#ifndef KRX_RLIMITS_H
#define KRX_RLIMITS_H

#include <stddef.h>
#include <sys/resource.h>

#include "util.h"

struct krx_rlimit {
    int resource; /* RLIMIT_* */
    const char *name;
    rlim_t value; /* the soft limit */
    rlim_t hard;  /* the hard limit; 0 means the same as value */
};

/*
 * Apply each limit (soft, hard). A value above the current hard limit is lowered to it: the
 * kernel refuses an unprivileged raise, and the existing lower limit is already stricter.
 */
int rlimits_apply(const struct krx_rlimit *limits, size_t count, struct krx_err *err);

struct krx_spec_limits; /* spec.h */

/*
 * contain()'s limits: AS = memory_bytes, CPU = cpu_s (hard one second later, so the program first
 * gets SIGXCPU and only then SIGKILL), NPROC = pids, NOFILE = open_files, FSIZE = file_size_bytes,
 * CORE = 0.
 */
int rlimits_apply_spec(const struct krx_spec_limits *limits, struct krx_err *err);

/* Apply the sandbox's kinds of limits with probe values and read each back. */
int rlimits_probe(struct krx_err *err);

#endif
