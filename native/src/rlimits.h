/* Resource limits: address space, CPU, open files, file size, processes, core dumps. */
#ifndef KRX_RLIMITS_H
#define KRX_RLIMITS_H

#include <stddef.h>
#include <sys/resource.h>

#include "util.h"

struct krx_rlimit {
    int resource; /* RLIMIT_* */
    const char *name;
    rlim_t value; /* soft = hard = value, or the current hard limit when that is lower */
};

/*
 * Apply each limit as soft = hard. A value above the current hard limit is lowered to it: the
 * kernel refuses an unprivileged raise, and the existing lower limit is already stricter.
 */
int rlimits_apply(const struct krx_rlimit *limits, size_t count, struct krx_err *err);

/* Apply the sandbox's kinds of limits with probe values and read each back. */
int rlimits_probe(struct krx_err *err);

#endif
