/*
 * cgroup v2 limits. Used only where a delegated cgroup v2 exists: /sys/fs/cgroup is cgroup2, the
 * process's own cgroup offers the memory and pids controllers, and the caller may create cgroups
 * under it. Otherwise the sandbox relies on rlimits, and the probe says why.
 */
#ifndef KRX_CGROUP_H
#define KRX_CGROUP_H

#include <stddef.h>

#include "util.h"

#define KRX_CGROUP_ROOT "/sys/fs/cgroup"

/*
 * Detect a delegated cgroup v2 and prove it by creating and removing a child cgroup. On failure
 * the detail explains what the host has instead and ends with "; rlimits used instead".
 */
int cgroup_probe(struct krx_err *err);

/*
 * From the helper's outer process, before the sandbox runs anything: create <dir>/call-<pid>,
 * write memory.max = memory_bytes (memory.swap.max = 0 where it exists), pids.max = pids and
 * cpu.max = "100000 100000" (one CPU), then move pid into it. The new cgroup's path goes to
 * path (cap bytes). On failure nothing is left behind.
 */
int cgroup_enter(const char *dir, int pid, unsigned long long memory_bytes,
                 unsigned long long pids, char *path, size_t cap, struct krx_err *err);

/* The "oom_kill" count of <path>/memory.events. */
int cgroup_oom_kills(const char *path, long long *count, struct krx_err *err);

/* rmdir(path) once the sandbox is gone. */
int cgroup_remove(const char *path, struct krx_err *err);

#endif
