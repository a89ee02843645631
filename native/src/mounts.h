/*
 * Mounts inside the sandbox's mount namespace. contain() builds the fresh root from these steps:
 * make the inherited tree private, tmpfs for the new root and /tmp, bind mounts of system dirs
 * remounted read-only, the workspace subtree read-write.
 */
#ifndef KRX_MOUNTS_H
#define KRX_MOUNTS_H

#include "util.h"

/* mount(NULL, "/", NULL, MS_REC|MS_PRIVATE): nothing done here propagates back to the host. */
int mnt_make_private(struct krx_err *err);

/* A nosuid, nodev, noexec tmpfs at target with the given data ("size=…,mode=…"). */
int mnt_tmpfs(const char *target, const char *data, struct krx_err *err);

/* Remount an existing mount point read-only, keeping nosuid, nodev and noexec. */
int mnt_remount_ro(const char *target, struct krx_err *err);

/*
 * In a fresh mount namespace: private tree, a tmpfs over /tmp that accepts a write, then the same
 * tmpfs remounted read-only and refusing a write with EROFS.
 */
int mnt_probe(struct krx_err *err);

#endif
