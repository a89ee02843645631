/*
 * cgroup v2 limits. Used only where a delegated cgroup v2 exists: /sys/fs/cgroup is cgroup2, the
 * process's own cgroup offers the memory and pids controllers, and the caller may create cgroups
 * under it. Otherwise the sandbox relies on rlimits, and the probe says why.
 */
#ifndef KRX_CGROUP_H
#define KRX_CGROUP_H

#include "util.h"

#define KRX_CGROUP_ROOT "/sys/fs/cgroup"

/*
 * Detect a delegated cgroup v2 and prove it by creating and removing a child cgroup. On failure
 * the detail explains what the host has instead and ends with "; rlimits used instead".
 */
int cgroup_probe(struct krx_err *err);

#endif
