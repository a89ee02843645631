/*
 * Landlock: unprivileged filesystem, TCP and IPC-scope restrictions, negotiated by ABI version.
 * Debian 12's <linux/landlock.h> stops at ABI 2, so later constants are defined here when missing
 * and the ruleset attribute uses a local struct that carries every field up to ABI 7.
 */
#ifndef KRX_LANDLOCK_H
#define KRX_LANDLOCK_H

#include <linux/landlock.h>
#include <linux/types.h>
#include <stdint.h>

#include "util.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0) /* ABI 4 */
#endif
#ifndef LANDLOCK_ACCESS_NET_CONNECT_TCP
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1) /* ABI 4 */
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1) /* ABI 6 */
#endif

/* The newest ABI whose rights this helper knows; a newer kernel is used at this level. */
#define KRX_LANDLOCK_ABI_KNOWN 7

/* enum landlock_rule_type: LANDLOCK_RULE_NET_PORT arrived with ABI 4. */
#define KRX_LANDLOCK_RULE_NET_PORT 2

/* struct landlock_net_port_attr (ABI 4): a TCP port, host byte order. */
struct krx_landlock_net_port_attr {
    __u64 allowed_access;
    __u64 port;
};

/* struct landlock_ruleset_attr as of ABI 6+; the kernel is told the size its ABI understands. */
struct krx_landlock_ruleset_attr {
    __u64 handled_access_fs;
    __u64 handled_access_net; /* ABI 4 */
    __u64 scoped;             /* ABI 6 */
};

struct krx_spec; /* spec.h */

/*
 * contain()'s Landlock step, in the workload process after no_new_privs and before seccomp: does
 * nothing unless the spec lists "landlock"; otherwise enforces the spec's rules or fails.
 *
 * The ruleset handles every right the kernel's ABI knows (clamped to KRX_LANDLOCK_ABI_KNOWN) and
 * grants, beneath the new root:
 *   /                         list directories (contents stay unreadable unless granted below)
 *   each mounts.ro_binds      read, list, execute
 *   each mounts.files path    read
 *   /proc                     read, list
 *   /dev                      list; null, zero, full read, write, ioctl; random, urandom read, ioctl
 *   /workspace /tmp /dev/shm  every right (create, remove, rename across dirs, truncate, ...)
 * Paths missing from the new root are skipped: a missing grant only takes access away.
 * Network (ABI >= 4): TCP bind never; TCP connect only to network.relay_port when network is
 * granted. Scoping (ABI >= 6): no abstract unix sockets or signals outside the sandbox's domain.
 */
int landlock_apply(const struct krx_spec *spec, struct krx_err *err);

/* landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): the ABI, or -1. */
int landlock_abi(struct krx_err *err);

/* Every filesystem right the given ABI can handle. */
uint64_t landlock_fs_rights(int abi);

/* Create a ruleset for this ABI (fields the ABI does not know must be zero); returns its fd. */
int landlock_create(const struct krx_landlock_ruleset_attr *attr, int abi, struct krx_err *err);

/* Allow `access` beneath `path` (opened O_PATH). */
int landlock_allow_path(int ruleset, const char *path, uint64_t access, struct krx_err *err);

/* landlock_restrict_self(): needs no_new_privs (or CAP_SYS_ADMIN) first. */
int landlock_restrict(int ruleset, struct krx_err *err);

/*
 * Report the ABI in *abi, then, after no_new_privs, enforce a ruleset handling every right the
 * ABI knows and check that the kernel now refuses what it did not grant: listing "/" (EACCES),
 * a TCP connect (EACCES, ABI >= 4) and a signal to the parent outside the domain (EPERM, ABI >= 6).
 */
int landlock_probe(int *abi, struct krx_err *err);

#endif
