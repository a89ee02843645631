#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spec.h"

#define KRX_MNT_SAFE (MS_NOSUID | MS_NODEV | MS_NOEXEC)

/*
 * The scratch tmpfs is mounted over /tmp of the outer tree: a directory every host and container
 * has. Once pivoted into, the outer tree is /oldroot (its own /tmp visible again there) and the
 * sandbox's root is built at /newroot.
 */
#define SCRATCH "/tmp"
#define OLD "/oldroot"
#define NEW "/newroot"

/* Resolve under a directory fd without following any symlink, magic link or ".." out of it. */
#define RESOLVE_STRICT (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
/* A host path, resolved under init's root as under the caller's own: an absolute symlink stays in
 * that root, and no magic link (/proc/<pid>/fd/…) leads anywhere else. */
#define RESOLVE_HOST (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom"};
static const char *const dev_links[][2] = {
    {"fd", "/proc/self/fd"},
    {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"},
};

static int join(char *buf, size_t cap, const char *a, const char *b, struct krx_err *err) {
    int n = snprintf(buf, cap, "%s%s", a, b);
    if (n < 0 || (size_t)n >= cap) return krx_fail(err, "path too long: %s%.64s", a, b);
    return 0;
}

static int openat2_strict(int dirfd, const char *path, int flags, mode_t mode,
                          unsigned long long resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* The flags the kernel insists a remount keep when they are locked from a more privileged ns. */
static unsigned long kept_flags(const struct statvfs *sv) {
    unsigned long f = 0;
    if (sv->f_flag & ST_RDONLY) f |= MS_RDONLY;
    if (sv->f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (sv->f_flag & ST_NODEV) f |= MS_NODEV;
    if (sv->f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (sv->f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (sv->f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (sv->f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

/* Remount the bind mount at target adding `add`, keeping every flag it already has. */
static int remount_adding(const char *target, unsigned long add, struct krx_err *err) {
    struct statvfs sv;
    if (statvfs(target, &sv) == -1) return krx_fail_errno(err, "statvfs(\"%s\")", target);
    unsigned long flags = MS_BIND | MS_REMOUNT | kept_flags(&sv) | add;
    if (mount(NULL, target, NULL, flags, NULL) == -1)
        return krx_fail_errno(err, "mount(NULL, \"%s\", NULL, MS_BIND|MS_REMOUNT|0x%lx)", target,
                              flags & ~(unsigned long)(MS_BIND | MS_REMOUNT));
    return 0;
}

static int bind_mount(const char *src, const char *dst, unsigned long extra, struct krx_err *err) {
    if (mount(src, dst, NULL, MS_BIND | extra, NULL) == -1)
        return krx_fail_errno(err, "mount(\"%s\", \"%s\", NULL, MS_BIND%s)", src, dst,
                              (extra & MS_REC) ? "|MS_REC" : "");
    return 0;
}

/* mkdir -p for a path the helper itself chose (under /newroot); existing directories are fine. */
static int mkdir_p(const char *path, struct krx_err *err) {
    char buf[PATH_MAX];
    if (join(buf, sizeof buf, path, "", err) == -1) return -1;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0755) == -1 && errno != EEXIST)
            return krx_fail_errno(err, "mkdir(\"%s\", 0755)", buf);
        *p = saved;
        if (saved == '\0') return 0;
    }
}

static int mkdir_parent(const char *path, struct krx_err *err) {
    char buf[PATH_MAX];
    if (join(buf, sizeof buf, path, "", err) == -1) return -1;
    char *slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf) return 0;
    *slash = '\0';
    return mkdir_p(buf, err);
}

static int touch(const char *path, mode_t mode, struct krx_err *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd == -1)
        return krx_fail_errno(err, "open(\"%s\", O_WRONLY|O_CREAT|O_NOFOLLOW, 0%o)", path, mode);
    close(fd);
    return 0;
}

/* 2. */
static int enter_scratch(struct krx_err *err) {
    if (mount("tmpfs", SCRATCH, "tmpfs", KRX_MNT_SAFE, "size=64k,mode=0700") == -1)
        return krx_fail_errno(err, "mount(\"tmpfs\", \"" SCRATCH "\", \"tmpfs\", "
                                   "MS_NOSUID|MS_NODEV|MS_NOEXEC, \"size=64k,mode=0700\")");
    if (mkdir(SCRATCH OLD, 0700) == -1) return krx_fail_errno(err, "mkdir(\"" SCRATCH OLD "\")");
    if (mkdir(SCRATCH NEW, 0700) == -1) return krx_fail_errno(err, "mkdir(\"" SCRATCH NEW "\")");
    if (syscall(SYS_pivot_root, SCRATCH, SCRATCH OLD) == -1)
        return krx_fail_errno(err, "pivot_root(\"" SCRATCH "\", \"" SCRATCH OLD "\")");
    if (chdir("/") == -1) return krx_fail_errno(err, "chdir(\"/\") after pivot_root");
    return 0;
}

/* 3. Room for the files (at most 16 x 64 KiB) and the mount points. */
static int new_root(struct krx_err *err) {
    if (mount("tmpfs", NEW, "tmpfs", KRX_MNT_SAFE, "size=2m,mode=0755") == -1)
        return krx_fail_errno(err, "mount(\"tmpfs\", \"" NEW "\", \"tmpfs\", "
                                   "MS_NOSUID|MS_NODEV|MS_NOEXEC, \"size=2m,mode=0755\")");
    return 0;
}

/* A host fd as a path the mount syscalls accept: the magic link in the outer procfs. */
static void fd_path(char *buf, size_t cap, int fd) {
    snprintf(buf, cap, OLD "/proc/self/fd/%d", fd);
}

static int bind_host(int fd, const char *host_path, const char *dst, struct krx_err *err) {
    char src[64];
    fd_path(src, sizeof src, fd);
    if (mount(src, dst, NULL, MS_BIND, NULL) == -1)
        return krx_fail_errno(err, "mount(fd of \"%s\", \"%s\", NULL, MS_BIND)", host_path, dst);
    return 0;
}

/* 4. fd: the path itself, opened by the outer process; -1 where it does not exist. */
static int ro_bind(const char *host_path, int fd, struct krx_err *err) {
    char dst[PATH_MAX];
    if (fd < 0) return 0; /* missing on this host: skipped */
    if (join(dst, sizeof dst, NEW, host_path, err) == -1) return -1;
    struct stat st;
    if (fstat(fd, &st) == -1) return krx_fail_errno(err, "fstat(fd of \"%s\")", host_path);
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
        if (n == -1) return krx_fail_errno(err, "readlinkat(fd of \"%s\", \"\")", host_path);
        target[n] = '\0';
        if (mkdir_parent(dst, err) == -1) return -1;
        if (symlink(target, dst) == -1)
            return krx_fail_errno(err, "symlink(\"%s\", \"%s\")", target, dst);
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        if (mkdir_p(dst, err) == -1) return -1;
    } else {
        if (mkdir_parent(dst, err) == -1 || touch(dst, 0644, err) == -1) return -1;
    }
    /* Not MS_REC: submounts of a system dir stay out rather than come in writable. */
    if (bind_host(fd, host_path, dst, err) == -1) return -1;
    return remount_adding(dst, MS_RDONLY | MS_NOSUID | MS_NODEV, err);
}

/* 5. fd: the workspace directory, opened (and checked to be one) by the outer process. */
static int workspace(const char *host_path, int fd, struct krx_err *err) {
    const char *dst = NEW KRX_SANDBOX_WORKSPACE;
    if (fd < 0) return krx_fail(err, "mounts.workspace \"%s\" was not handed over", host_path);
    if (mkdir(dst, 0755) == -1) return krx_fail_errno(err, "mkdir(\"%s\", 0755)", dst);
    if (bind_host(fd, host_path, dst, err) == -1) return -1;
    return remount_adding(dst, MS_NOSUID | MS_NODEV, err);
}

/*
 * 6. The agent owns the workspace and may have planted symlinks to redirect this bind, so the path
 * is opened under the workspace mount with no symlink followed, and both the bind and the remount
 * act on that very file through /proc/self/fd (in the outer procfs, still at /oldroot/proc). It is
 * opened here, as the sandbox's uid, not by the outer process: the walk starts at the workspace
 * mount, so no directory above it is searched, and a tree the agent controls is never walked with
 * the caller's privileges.
 */
static int ro_overlay(int wsfd, const char *path, struct krx_err *err) {
    const char *rel = path + strlen(KRX_SANDBOX_WORKSPACE "/");
    int fd = openat2_strict(wsfd, rel, O_PATH, 0, RESOLVE_STRICT);
    if (fd == -1) {
        if (errno == ENOENT) return 0; /* gone since the launcher looked: nothing to protect */
        return krx_fail_errno(err, "openat2(\"%s\", O_PATH, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)",
                              path);
    }
    int rc = -1;
    int fd2 = -1;
    char fdpath[64], fdpath2[64];
    struct stat st, st2;
    fd_path(fdpath, sizeof fdpath, fd);
    if (fstat(fd, &st) == -1) {
        krx_fail_errno(err, "fstat(\"%s\")", path);
        goto out;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        krx_fail(err, "ro_overlay \"%s\" is neither a file nor a directory", path);
        goto out;
    }
    if (mount(fdpath, fdpath, NULL, MS_BIND, NULL) == -1) {
        krx_fail_errno(err, "mount(\"%s\", itself, NULL, MS_BIND)", path);
        goto out;
    }
    /* Reopen: the same walk now ends on the new mount's root, which is what gets remounted. */
    fd2 = openat2_strict(wsfd, rel, O_PATH, 0, RESOLVE_STRICT);
    if (fd2 == -1) {
        krx_fail_errno(err, "openat2(\"%s\", O_PATH) after binding it", path);
        goto out;
    }
    if (fstat(fd2, &st2) == -1 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
        krx_fail(err, "ro_overlay \"%s\" changed while it was being bound", path);
        goto out;
    }
    fd_path(fdpath2, sizeof fdpath2, fd2);
    if (remount_adding(fdpath2, MS_RDONLY | MS_NOSUID | MS_NODEV, err) == -1) {
        char inner[KRX_DETAIL_MAX];
        memcpy(inner, err->detail, sizeof inner);
        krx_fail(err, "ro_overlay \"%s\": %s", path, inner);
        goto out;
    }
    rc = 0;
out:
    if (fd2 != -1) close(fd2);
    close(fd);
    return rc;
}

/*
 * 7. Created component by component under the root tmpfs: no symlink followed and no crossing
 * into another mount (RESOLVE_NO_XDEV), so a file can never land on a host bind.
 */
static int write_file(int rootfd, const struct krx_spec_file *f, struct krx_err *err) {
    char buf[PATH_MAX];
    if (join(buf, sizeof buf, f->path + 1, "", err) == -1) return -1;
    int dirfd = dup(rootfd);
    if (dirfd == -1) return krx_fail_errno(err, "dup(root fd)");
    char *comp = buf;
    for (char *slash; (slash = strchr(comp, '/')) != NULL; comp = slash + 1) {
        *slash = '\0';
        if (mkdirat(dirfd, comp, 0755) == -1 && errno != EEXIST) {
            krx_fail_errno(err, "mkdirat(\"%s\" of files entry \"%s\", 0755)", comp, f->path);
            close(dirfd);
            return -1;
        }
        int next = openat2_strict(dirfd, comp, O_PATH | O_DIRECTORY, 0,
                                  RESOLVE_STRICT | RESOLVE_NO_XDEV);
        if (next == -1) {
            krx_fail_errno(err,
                           "openat2(\"%s\" of files entry \"%s\", "
                           "RESOLVE_NO_XDEV|RESOLVE_NO_SYMLINKS)",
                           comp, f->path);
            close(dirfd);
            return -1;
        }
        close(dirfd);
        dirfd = next;
    }
    int fd = openat2_strict(dirfd, comp, O_WRONLY | O_CREAT | O_EXCL, 0644,
                            RESOLVE_STRICT | RESOLVE_NO_XDEV);
    close(dirfd);
    if (fd == -1)
        return krx_fail_errno(err, "openat2(\"%s\", O_WRONLY|O_CREAT|O_EXCL, 0644)", f->path);
    if (write_all(fd, f->content, f->content_len) == -1) {
        krx_fail_errno(err, "write(\"%s\", %zu bytes)", f->path, f->content_len);
        close(fd);
        return -1;
    }
    if (close(fd) == -1) return krx_fail_errno(err, "close(\"%s\")", f->path);
    return 0;
}

static int tmpfs_at(const char *target, unsigned long flags, const char *data,
                    struct krx_err *err) {
    if (mount("tmpfs", target, "tmpfs", flags, data) == -1)
        return krx_fail_errno(err, "mount(\"tmpfs\", \"%s\", \"tmpfs\", 0x%lx, \"%s\")", target,
                              flags, data);
    return 0;
}

/* 8. /tmp allows exec (builds run test binaries from it); it is as writable as the workspace. */
static int tmp(unsigned tmp_mb, struct krx_err *err) {
    char data[64];
    snprintf(data, sizeof data, "size=%um,mode=1777", tmp_mb);
    if (mkdir(NEW KRX_SANDBOX_TMP, 0755) == -1)
        return krx_fail_errno(err, "mkdir(\"" NEW KRX_SANDBOX_TMP "\")");
    return tmpfs_at(NEW KRX_SANDBOX_TMP, MS_NOSUID | MS_NODEV, data, err);
}

static int dev(unsigned tmp_mb, struct krx_err *err) {
    char src[64], dst[64], data[64];
    if (mkdir(NEW "/dev", 0755) == -1) return krx_fail_errno(err, "mkdir(\"" NEW "/dev\")");
    /* nodev is fine: the device nodes below are bind mounts of the host's, with their own flags. */
    if (tmpfs_at(NEW "/dev", KRX_MNT_SAFE, "size=64k,mode=0755", err) == -1) return -1;
    for (size_t i = 0; i < sizeof dev_nodes / sizeof dev_nodes[0]; i++) {
        snprintf(src, sizeof src, OLD "/dev/%s", dev_nodes[i]);
        snprintf(dst, sizeof dst, NEW "/dev/%s", dev_nodes[i]);
        if (touch(dst, 0666, err) == -1 || bind_mount(src, dst, 0, err) == -1) return -1;
    }
    for (size_t i = 0; i < sizeof dev_links / sizeof dev_links[0]; i++) {
        snprintf(dst, sizeof dst, NEW "/dev/%s", dev_links[i][0]);
        if (symlink(dev_links[i][1], dst) == -1)
            return krx_fail_errno(err, "symlink(\"%s\", \"%s\")", dev_links[i][1], dst);
    }
    if (mkdir(NEW "/dev/shm", 0755) == -1) return krx_fail_errno(err, "mkdir(\"" NEW "/dev/shm\")");
    snprintf(data, sizeof data, "size=%um,mode=1777", tmp_mb);
    if (tmpfs_at(NEW "/dev/shm", KRX_MNT_SAFE, data, err) == -1) return -1;
    return remount_adding(NEW "/dev", MS_RDONLY | KRX_MNT_SAFE, err);
}

/*
 * 9. A fresh procfs shows only the sandbox's pid namespace. Hardened container runtimes mask parts
 * of their /proc, and the kernel then refuses a new procfs that would reveal them (EPERM); the
 * outer procfs is then bound read-only instead: the sandbox sees the container's processes' pids,
 * but its pid namespace still keeps it from signalling them.
 */
static int proc(bool own_pid_ns, bool *proc_private, struct krx_err *err) {
    static const char *const attempts[] = {"hidepid=invisible", NULL, "subset=pid"};
    const char *dst = NEW "/proc";
    *proc_private = false;
    if (mkdir(dst, 0555) == -1) return krx_fail_errno(err, "mkdir(\"%s\")", dst);
    if (own_pid_ns) {
        for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
            if (mount("proc", dst, "proc", KRX_MNT_SAFE, attempts[i]) == 0) {
                *proc_private = true;
                return 0;
            }
        }
    }
    if (bind_mount(OLD "/proc", dst, MS_REC, err) == -1) return -1;
    return remount_adding(dst, MS_RDONLY | KRX_MNT_SAFE, err);
}

/* 10. pivot_root(".", ".") stacks the old root on the new one; the detach then drops it whole. */
static int pivot_into_new_root(struct krx_err *err) {
    if (chdir(NEW) == -1) return krx_fail_errno(err, "chdir(\"" NEW "\")");
    if (syscall(SYS_pivot_root, ".", ".") == -1)
        return krx_fail_errno(err, "pivot_root(\".\", \".\") in " NEW);
    if (umount2(".", MNT_DETACH) == -1) return krx_fail_errno(err, "umount2(old root, MNT_DETACH)");
    if (chdir("/") == -1) return krx_fail_errno(err, "chdir(\"/\") in the new root");
    return remount_adding("/", MS_RDONLY | KRX_MNT_SAFE, err);
}

void mnt_host_init(struct mnt_host *host) {
    for (size_t i = 0; i < MNT_HOST_MAX; i++) host->fds[i] = -1;
}

void mnt_close_host(struct mnt_host *host) {
    for (size_t i = 0; i < MNT_HOST_MAX; i++) {
        if (host->fds[i] >= 0) close(host->fds[i]);
        host->fds[i] = -1;
    }
}

static int open_workspace(int rootfd, const char *path, int *out, struct krx_err *err) {
    int fd = openat2_strict(rootfd, path, O_PATH, 0, RESOLVE_HOST);
    if (fd == -1)
        return krx_fail_errno(err,
                              "openat2(init's root, \"%s\", O_PATH, "
                              "RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) of mounts.workspace",
                              path);
    struct stat st;
    if (fstat(fd, &st) == -1) {
        krx_fail_errno(err, "fstat(\"%s\") of mounts.workspace", path);
        close(fd);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        close(fd);
        return krx_fail(err, "mounts.workspace \"%s\" is not a directory", path);
    }
    *out = fd;
    return 0;
}

static int open_ro_bind(int rootfd, const char *path, int *out, struct krx_err *err) {
    int fd = openat2_strict(rootfd, path, O_PATH | O_NOFOLLOW, 0, RESOLVE_HOST);
    if (fd == -1) {
        if (errno == ENOENT || errno == ENOTDIR) return 0; /* missing on this host: skipped */
        return krx_fail_errno(err,
                              "openat2(init's root, \"%s\", O_PATH|O_NOFOLLOW, "
                              "RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) of mounts.ro_binds",
                              path);
    }
    *out = fd;
    return 0;
}

int mnt_open_host(pid_t init_pid, const struct krx_spec *spec, struct mnt_host *host,
                  struct krx_err *err) {
    const struct krx_spec_mounts *m = &spec->mounts;
    char root[64];
    snprintf(root, sizeof root, "/proc/%d/root", (int)init_pid);
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd == -1) return krx_fail_errno(err, "open(\"%s\", O_PATH|O_DIRECTORY)", root);
    int rc = open_workspace(rootfd, m->workspace, &host->fds[MNT_HOST_WORKSPACE], err);
    for (size_t i = 0; rc == 0 && i < m->ro_binds_count; i++)
        rc = open_ro_bind(rootfd, m->ro_binds[i], &host->fds[MNT_HOST_RO_BIND(i)], err);
    close(rootfd);
    if (rc == -1) mnt_close_host(host);
    return rc;
}

int mnt_build_root(const struct krx_spec *spec, const struct mnt_host *host, bool *proc_private,
                   struct krx_err *err) {
    const struct krx_spec_mounts *m = &spec->mounts;
    if (mnt_make_private(err) == -1 || enter_scratch(err) == -1 || new_root(err) == -1) return -1;
    for (size_t i = 0; i < m->ro_binds_count; i++)
        if (ro_bind(m->ro_binds[i], host->fds[MNT_HOST_RO_BIND(i)], err) == -1) return -1;
    if (workspace(m->workspace, host->fds[MNT_HOST_WORKSPACE], err) == -1) return -1;

    int wsfd = open(NEW KRX_SANDBOX_WORKSPACE, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (wsfd == -1) return krx_fail_errno(err, "open(\"" NEW KRX_SANDBOX_WORKSPACE "\", O_PATH)");
    for (size_t i = 0; i < m->ro_overlays_count; i++) {
        if (ro_overlay(wsfd, m->ro_overlays[i], err) == -1) {
            close(wsfd);
            return -1;
        }
    }
    close(wsfd);

    int rootfd = open(NEW, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd == -1) return krx_fail_errno(err, "open(\"" NEW "\", O_PATH)");
    for (size_t i = 0; i < m->files_count; i++) {
        if (write_file(rootfd, &m->files[i], err) == -1) {
            close(rootfd);
            return -1;
        }
    }
    close(rootfd);

    if (tmp(m->tmp_mb, err) == -1 || dev(m->tmp_mb, err) == -1 ||
        proc(spec_has_layer(spec, KRX_LAYER_PID), proc_private, err) == -1)
        return -1;
    return pivot_into_new_root(err);
}

int mnt_make_private(struct krx_err *err) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1)
        return krx_fail_errno(err, "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE)");
    return 0;
}

int mnt_tmpfs(const char *target, const char *data, struct krx_err *err) {
    if (mount("tmpfs", target, "tmpfs", KRX_MNT_SAFE, data) == -1)
        return krx_fail_errno(err,
                              "mount(\"tmpfs\", \"%s\", \"tmpfs\", "
                              "MS_NOSUID|MS_NODEV|MS_NOEXEC, \"%s\")",
                              target, data);
    return 0;
}

int mnt_remount_ro(const char *target, struct krx_err *err) {
    if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | KRX_MNT_SAFE, NULL) == -1)
        return krx_fail_errno(err,
                              "mount(NULL, \"%s\", NULL, "
                              "MS_BIND|MS_REMOUNT|MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC)",
                              target);
    return 0;
}

int mnt_probe(struct krx_err *err) {
    const char *target = "/tmp";
    if (mnt_make_private(err) == -1) return -1;
    if (mnt_tmpfs(target, "size=64k,mode=0755", err) == -1) return -1;
    if (mkdir("/tmp/rw", 0700) == -1)
        return krx_fail_errno(err, "mkdir(\"/tmp/rw\") on the new tmpfs");
    if (mnt_remount_ro(target, err) == -1) return -1;
    if (mkdir("/tmp/ro", 0700) == 0)
        return krx_fail(err, "mkdir(\"/tmp/ro\") succeeded on a mount remounted read-only");
    if (errno != EROFS)
        return krx_fail_errno(err, "mkdir(\"/tmp/ro\") on a read-only remount, not EROFS");
    return 0;
}
