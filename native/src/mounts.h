/*
 * Mounts inside the sandbox's mount namespace. contain() builds the fresh root from these steps:
 * make the inherited tree private, tmpfs for the new root and /tmp, bind mounts of system dirs
 * remounted read-only, the workspace subtree read-write.
 */
#ifndef KRX_MOUNTS_H
#define KRX_MOUNTS_H

#include <stdbool.h>
#include <sys/types.h>

#include "spec.h"
#include "util.h"

/* mount(NULL, "/", NULL, MS_REC|MS_PRIVATE): nothing done here propagates back to the host. */
int mnt_make_private(struct krx_err *err);

/* A nosuid, nodev, noexec tmpfs at target with the given data ("size=…,mode=…"). */
int mnt_tmpfs(const char *target, const char *data, struct krx_err *err);

/* Remount an existing mount point read-only, keeping nosuid, nodev and noexec. */
int mnt_remount_ro(const char *target, struct krx_err *err);

/*
 * The host paths the sandbox's root is made of (mounts.workspace, mounts.ro_binds), opened by the
 * helper's outer process with the caller's own credentials. By the time init mounts, it has
 * become the sandbox's uid, which may not search the directories above them: a workspace under
 * root's 0700 home or a 0700 mkdtemp directory is reachable by a root caller only.
 *
 * Each is an O_PATH fd opened through /proc/<init>/root, so that it names the file in init's own
 * copy of the host's mount tree (still unchanged: init waits for CHAN_GO before its first step).
 * A bind mount accepts a source only from the mount namespace it is made in; an fd opened in the
 * outer process's namespace would be refused with EINVAL.
 */
#define MNT_HOST_WORKSPACE 0
#define MNT_HOST_RO_BIND(i) (1 + (i))
#define MNT_HOST_MAX (1 + KRX_SPEC_MAX_RO_BINDS)

struct mnt_host {
    /* [MNT_HOST_WORKSPACE]: the workspace directory, symlinks on the way followed (in the
     * caller's view of the file system, never out of it).
     * [MNT_HOST_RO_BIND(i)]: ro_binds[i] itself (O_NOFOLLOW: a symlink stays a symlink), or -1
     * where the path does not exist on this host. */
    int fds[MNT_HOST_MAX];
};

/* Every fd -1. */
void mnt_host_init(struct mnt_host *host);

/*
 * In the outer process, while init (init_pid, in a fresh mount namespace) waits: open the spec's
 * host paths through /proc/<init_pid>/root with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS).
 * Fails if the workspace is missing or not a directory, or a path cannot be opened for another
 * reason than not existing.
 */
int mnt_open_host(pid_t init_pid, const struct krx_spec *spec, struct mnt_host *host,
                  struct krx_err *err);

/* Close every fd and set it to -1. */
void mnt_close_host(struct mnt_host *host);

/*
 * contain()'s mount step, in the sandbox's fresh mount namespace (its user namespace granting
 * CAP_SYS_ADMIN over it), binding host paths only from the fds in host. In order:
 *   1. make the inherited tree private, so nothing below propagates back to the host;
 *   2. pivot into a scratch tmpfs (mounted over /tmp) holding /oldroot (the old tree) and
 *      /newroot; the spec's host paths are reached only through the fds, the host's /dev nodes
 *      and /proc as /oldroot/dev and /oldroot/proc;
 *   3. /newroot: a tmpfs (nosuid, nodev, noexec) that becomes the sandbox's "/";
 *   4. ro_binds: each host path bound (not recursively) at the same path and remounted read-only,
 *      nosuid, nodev; a symlink is recreated as a symlink; a missing path is skipped;
 *   5. the workspace bound read-write (nosuid, nodev) at /workspace;
 *   6. ro_overlays: each existing path under /workspace, opened from the workspace mount (so
 *      nothing above it is searched) as the sandbox's uid, without following any symlink, bound
 *      over itself and remounted read-only (mandatory-deny files);
 *   7. files written into the root tmpfs, never through a symlink or into a bind mount;
 *   8. /tmp and /dev/shm: private tmpfs of tmp_mb each; /dev: a read-only tmpfs with null, zero,
 *      full, random, urandom bound from the host and the fd/stdin/stdout/stderr links;
 *   9. /proc: a fresh procfs of the sandbox's pid namespace where the kernel allows one
 *      (*proc_private = true), else the outer procfs bound read-only;
 *  10. pivot_root into /newroot, detach everything else (the old tree included), and remount
 *      "/" read-only.
 * Inherited locked mount flags (noexec, atime) are kept on every remount, as the kernel demands.
 */
int mnt_build_root(const struct krx_spec *spec, const struct mnt_host *host, bool *proc_private,
                   struct krx_err *err);

/*
 * In a fresh mount namespace: private tree, a tmpfs over /tmp that accepts a write, then the same
 * tmpfs remounted read-only and refusing a write with EROFS.
 */
int mnt_probe(struct krx_err *err);

#endif
