/*
 * syscall-probe: attempts one dangerous operation for real and says whether the kernel let it
 * through. The security tests run it inside kruxos-sandbox (tests/security/sandbox-syscalls.test.ts
 * and others); it is also handy by hand: `syscall-probe --list`, `syscall-probe ptrace_traceme`.
 *
 *   syscall-probe <name> [args…]
 *
 * prints one JSON line
 *
 *   {"probe":"<name>","ok":<bool>,"errno":"EPERM"|null,"detail":"<what was tried>"[,extras]}
 *
 * where "ok" means the operation SUCCEEDED, and exits 0 when it was refused, 1 when it succeeded
 * (an escape, or for the control probes fork/spawn/netlink_route the expected result), 2 on usage.
 * Extras: "elapsed_ms" (connect_tcp, udp_send), "fds" (fd_scan: [{"fd":3,"target":"pipe:[…]"}]).
 *
 * Every attempt is built so that, should nothing stop it, it still does no harm outside the
 * sandbox: arguments the kernel rejects after its permission checks (kexec_load with a foreign
 * architecture, reboot without the magic, settimeofday with an invalid time), targets in a fresh
 * scratch directory, and anything that did succeed is undone (detach, unmount, restore).
 * libc only, one file, table-driven.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/io_uring.h>
#include <linux/kcmp.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/quota.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef TIOCL_GETSHIFTSTATE
#define TIOCL_GETSHIFTSTATE 6
#endif

#define DETAIL_MAX 512
#define EXTRA_MAX 8192

extern char **environ;

struct result {
    bool ok;   /* the operation succeeded */
    int err;   /* errno of the refusal, 0 when ok */
    char detail[DETAIL_MAX];
    char extra[EXTRA_MAX]; /* ,"key":value pairs appended to the line, already JSON */
};

struct probe {
    const char *name;
    int nargs;
    void (*run)(char **args, struct result *r);
    const char *usage; /* argument names, for --list and usage errors */
};

/* ---- small helpers ---------------------------------------------------------------------- */

/* Record an attempt: rc == -1 means refused with errno, anything else means it went through. */
static void attempt(struct result *r, long rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void attempt(struct result *r, long rc, const char *fmt, ...) {
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
    r->ok = rc != -1;
    r->err = r->ok ? 0 : saved;
}

static void add_detail(struct result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_detail(struct result *r, const char *fmt, ...) {
    size_t len = strlen(r->detail);
    if (len + 1 >= sizeof r->detail) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail + len, sizeof r->detail - len, fmt, ap);
    va_end(ap);
}

static void json_str(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c < 0x20 || c >= 0x7f) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

/* The same escaping into a buffer, for extras. */
static void extra_str(char *buf, size_t cap, const char *s) {
    size_t len = strlen(buf);
    if (len + 2 >= cap) return;
    buf[len++] = '"';
    for (; *s != '\0' && len + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
        } else {
            buf[len++] = (char)c;
        }
    }
    buf[len++] = '"';
    buf[len] = '\0';
}

static void extra_raw(struct result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void extra_raw(struct result *r, const char *fmt, ...) {
    size_t len = strlen(r->extra);
    if (len + 1 >= sizeof r->extra) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->extra + len, sizeof r->extra - len, fmt, ap);
    va_end(ap);
}

#define E(x) {x, #x}
static const struct {
    int code;
    const char *name;
} errno_names[] = {
    E(EPERM),        E(ENOENT),          E(ESRCH),        E(EINTR),       E(EIO),
    E(ENXIO),        E(E2BIG),           E(ENOEXEC),      E(EBADF),       E(ECHILD),
    E(EAGAIN),       E(ENOMEM),          E(EACCES),       E(EFAULT),      E(ENOTBLK),
    E(EBUSY),        E(EEXIST),          E(EXDEV),        E(ENODEV),      E(ENOTDIR),
    E(EISDIR),       E(EINVAL),          E(ENFILE),       E(EMFILE),      E(ENOTTY),
    E(ETXTBSY),      E(EFBIG),           E(ENOSPC),       E(ESPIPE),      E(EROFS),
    E(EMLINK),       E(EPIPE),           E(ERANGE),       E(ENAMETOOLONG), E(ENOSYS),
    E(ELOOP),        E(ENOTSOCK),        E(EPROTOTYPE),   E(ENOPROTOOPT), E(EPROTONOSUPPORT),
    E(ESOCKTNOSUPPORT), E(EOPNOTSUPP),   E(EAFNOSUPPORT), E(EADDRINUSE),  E(EADDRNOTAVAIL),
    E(ENETDOWN),     E(ENETUNREACH),     E(ECONNABORTED), E(ECONNRESET),  E(ENOBUFS),
    E(EISCONN),      E(ENOTCONN),        E(ETIMEDOUT),    E(ECONNREFUSED), E(EHOSTDOWN),
    E(EHOSTUNREACH), E(EALREADY),        E(EINPROGRESS),  E(ESTALE),      E(EDQUOT),
    E(ECANCELED),    E(ENOKEY),          E(EKEYREVOKED),  E(EOVERFLOW),   E(EMSGSIZE),
};
#undef E

static const char *errno_name(int e) {
    for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
        if (errno_names[i].code == e) return errno_names[i].name;
    static char unknown[24];
    snprintf(unknown, sizeof unknown, "E%d", e);
    return unknown;
}

static long elapsed_ms(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* The process this one would most like to attack: its parent (pid 1 when that is outside). */
static pid_t parent_pid(void) {
    pid_t p = getppid();
    return p > 0 ? p : 1;
}

static int parse_pid(const char *s, pid_t *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 0x3fffffff) return -1;
    *out = (pid_t)v;
    return 0;
}

/* A fresh empty directory (under /tmp) as a target nobody else uses; removed at exit. */
static char scratch[64];
static void remove_scratch(void) {
    if (scratch[0] != '\0') rmdir(scratch);
}
static const char *scratch_dir(void) {
    if (scratch[0] != '\0') return scratch;
    snprintf(scratch, sizeof scratch, "/tmp/krx-probe-XXXXXX");
    if (mkdtemp(scratch) == NULL) {
        /* A path that does not exist: a kernel that let the call through would say ENOENT. */
        snprintf(scratch, sizeof scratch, "/nonexistent-krx-probe");
        return scratch;
    }
    atexit(remove_scratch);
    return scratch;
}

/* Wait for a child that exits at once; its exit status, or -1. */
static int reap(pid_t pid) {
    int status;
    while (waitpid(pid, &status, __WALL) == -1)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- other processes --------------------------------------------------------------------- */

static void ptrace_attach(pid_t pid, struct result *r) {
    long rc = ptrace(PTRACE_ATTACH, pid, NULL, NULL);
    attempt(r, rc, "ptrace(PTRACE_ATTACH, %d)", (int)pid);
    if (rc == 0) {
        (void)reap(pid); /* the attach stop */
        ptrace(PTRACE_DETACH, pid, NULL, NULL);
    }
}

static void p_ptrace_attach_parent(char **a, struct result *r) {
    (void)a;
    ptrace_attach(parent_pid(), r);
}

static void p_ptrace_pid(char **a, struct result *r) {
    pid_t pid;
    if (parse_pid(a[0], &pid) == -1) {
        errno = EINVAL;
        attempt(r, -1, "not a pid: %s", a[0]);
        return;
    }
    ptrace_attach(pid, r);
}

static void p_ptrace_traceme(char **a, struct result *r) {
    (void)a;
    /* In a child, so a success leaves no tracer attached to the probe itself. */
    pid_t pid = fork();
    if (pid == 0) _exit(ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0 ? 0 : errno);
    if (pid == -1) {
        attempt(r, -1, "fork()");
        return;
    }
    int code = reap(pid);
    errno = code;
    attempt(r, code == 0 ? 0 : -1, "ptrace(PTRACE_TRACEME) in a child");
}

/* The first mapping of `pid`, from /proc/<pid>/maps, or 0. */
static uintptr_t first_mapping(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) return 0;
    unsigned long start = 0;
    if (fscanf(f, "%lx-", &start) != 1) start = 0;
    fclose(f);
    return (uintptr_t)start;
}

static void p_process_vm_readv(char **a, struct result *r) {
    (void)a;
    pid_t pid = parent_pid();
    char buf[16];
    static const char own = 0;
    uintptr_t addr = first_mapping(pid);
    if (addr == 0) addr = (uintptr_t)&own; /* a parent forked from a similar binary maps it too */
    struct iovec local = {.iov_base = buf, .iov_len = sizeof buf};
    struct iovec remote = {.iov_base = (void *)addr, .iov_len = sizeof buf};
    long rc = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    attempt(r, rc, "process_vm_readv(%d, 0x%lx, %zu bytes)", (int)pid, (unsigned long)addr,
            sizeof buf);
}

static void p_kcmp(char **a, struct result *r) {
    (void)a;
    pid_t other = parent_pid();
    long rc = syscall(SYS_kcmp, getpid(), other, KCMP_VM, 0, 0);
    attempt(r, rc, "kcmp(self, %d, KCMP_VM)", (int)other);
}

static int pidfd_of(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void p_pidfd_getfd(char **a, struct result *r) {
    (void)a;
    pid_t target = parent_pid();
    int pidfd = pidfd_of(target);
    if (pidfd == -1) {
        target = getpid();
        pidfd = pidfd_of(target);
    }
    if (pidfd == -1) {
        attempt(r, -1, "pidfd_open(%d)", (int)target);
        return;
    }
    long fd = syscall(SYS_pidfd_getfd, pidfd, 0, 0);
    attempt(r, fd, "pidfd_getfd(pidfd of %d, fd 0)", (int)target);
    if (fd >= 0) close((int)fd);
    close(pidfd);
}

static void p_read_environ(char **a, struct result *r) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/environ", a[0]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        attempt(r, -1, "open(%s)", path);
        return;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    int saved = errno;
    close(fd);
    if (n == 0) {
        /* An empty read tells nothing: count it as refused, the contents stayed hidden. */
        r->ok = false;
        r->err = 0;
        snprintf(r->detail, sizeof r->detail, "read(%s) returned 0 bytes", path);
        return;
    }
    errno = saved;
    attempt(r, n, "read(%s) = %zd bytes (contents not shown)", path, n);
}

static void p_kill_pid(char **a, struct result *r) {
    pid_t pid;
    if (parse_pid(a[0], &pid) == -1) {
        errno = EINVAL;
        attempt(r, -1, "not a pid: %s", a[0]);
        return;
    }
    /* Signal 0: the kernel's full permission check for a signal, without delivering one. */
    attempt(r, kill(pid, 0), "kill(%d, 0)", (int)pid);
}

/* ---- namespaces and processes -------------------------------------------------------------- */

static void unshare_one(int flag, const char *name, struct result *r) {
    /* In a child: a success must not change the probe's own view. */
    pid_t pid = fork();
    if (pid == 0) _exit(unshare(flag) == 0 ? 0 : errno);
    if (pid == -1) {
        attempt(r, -1, "fork()");
        return;
    }
    int code = reap(pid);
    errno = code;
    attempt(r, code == 0 ? 0 : -1, "unshare(%s)", name);
}

static void p_unshare_user(char **a, struct result *r) {
    (void)a;
    unshare_one(CLONE_NEWUSER, "CLONE_NEWUSER", r);
}
static void p_unshare_net(char **a, struct result *r) {
    (void)a;
    unshare_one(CLONE_NEWNET, "CLONE_NEWNET", r);
}
static void p_unshare_mount(char **a, struct result *r) {
    (void)a;
    unshare_one(CLONE_NEWNS, "CLONE_NEWNS", r);
}

static void p_setns(char **a, struct result *r) {
    (void)a;
    /* Join the network namespace we are already in: the one setns a kernel would always allow. */
    int fd = pidfd_of(getpid());
    const char *what = "pidfd of self";
    if (fd == -1) {
        fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        what = "/proc/self/ns/net";
    }
    if (fd == -1) what = "fd -1 (no pidfd, no /proc/self/ns/net)";
    attempt(r, setns(fd, CLONE_NEWNET), "setns(%s, CLONE_NEWNET)", what);
    if (fd >= 0) close(fd);
}

static void p_clone_newuser(char **a, struct result *r) {
    (void)a;
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    attempt(r, pid, "clone(CLONE_NEWUSER | SIGCHLD)");
    if (pid > 0) reap((pid_t)pid);
}

/* struct clone_args up to CLONE_ARGS_SIZE_VER0; glibc does not export it everywhere. */
struct probe_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static void p_clone3(char **a, struct result *r) {
    (void)a;
    struct probe_clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) _exit(0);
    attempt(r, pid, "clone3({exit_signal SIGCHLD}): a plain fork through the flags-in-memory call");
    if (pid > 0) reap((pid_t)pid);
}

static void p_fork(char **a, struct result *r) {
    (void)a;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid == -1) {
        attempt(r, -1, "fork()");
        return;
    }
    int code = reap(pid);
    errno = ECHILD;
    attempt(r, code == 0 ? 0 : -1, "fork(), child exited %d", code);
}

static void p_spawn(char **a, struct result *r) {
    (void)a;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        attempt(r, -1, "readlink(/proc/self/exe)");
        return;
    }
    self[n] = '\0';
    char *argv[] = {self, "noop", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, self, NULL, NULL, argv, environ);
    if (rc != 0) {
        errno = rc;
        attempt(r, -1, "posix_spawn(%s noop)", self);
        return;
    }
    int code = reap(pid);
    errno = ECHILD;
    attempt(r, code == 0 ? 0 : -1, "posix_spawn(%s noop), child exited %d", self, code);
}

static void p_personality(char **a, struct result *r) {
    (void)a;
    int old = personality(0xffffffff);
    long rc = personality(ADDR_NO_RANDOMIZE);
    attempt(r, rc, "personality(ADDR_NO_RANDOMIZE)");
    if (rc != -1 && old != -1) personality((unsigned long)old);
}

/* ---- mounts --------------------------------------------------------------------------------- */

static void p_mount(char **a, struct result *r) {
    (void)a;
    const char *dir = scratch_dir();
    long rc = mount("krx-probe", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k");
    attempt(r, rc, "mount(tmpfs, %s)", dir);
    if (rc == 0) umount2(dir, MNT_DETACH);
}

static void p_umount2(char **a, struct result *r) {
    (void)a;
    /* Not a mount point: a kernel that let the call through answers EINVAL. */
    const char *dir = scratch_dir();
    attempt(r, umount2(dir, 0), "umount2(%s, 0)", dir);
}

static void p_pivot_root(char **a, struct result *r) {
    (void)a;
    const char *dir = scratch_dir();
    attempt(r, syscall(SYS_pivot_root, dir, dir), "pivot_root(%s, %s)", dir, dir);
}

static void p_fsopen(char **a, struct result *r) {
    (void)a;
    long fd = syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    attempt(r, fd, "fsopen(\"tmpfs\")");
    if (fd >= 0) close((int)fd);
}

static void p_open_tree(char **a, struct result *r) {
    (void)a;
    long fd = syscall(SYS_open_tree, AT_FDCWD, "/tmp", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    attempt(r, fd, "open_tree(/tmp, OPEN_TREE_CLONE)");
    if (fd >= 0) close((int)fd);
}

static void p_move_mount(char **a, struct result *r) {
    (void)a;
    /* Not a mount: a kernel that let the call through answers EINVAL. */
    const char *dir = scratch_dir();
    attempt(r, syscall(SYS_move_mount, AT_FDCWD, dir, AT_FDCWD, dir, 0), "move_mount(%s, %s)",
            dir, dir);
}

static void p_swapon(char **a, struct result *r) {
    (void)a;
    char path[96];
    snprintf(path, sizeof path, "%s/swap", scratch_dir());
    attempt(r, swapon(path, 0), "swapon(%s)", path);
}

static void p_acct(char **a, struct result *r) {
    (void)a;
    attempt(r, acct("/nonexistent-krx-probe/acct"), "acct(/nonexistent-krx-probe/acct)");
}

static void p_quotactl(char **a, struct result *r) {
    (void)a;
    attempt(r, quotactl(QCMD(Q_QUOTAON, USRQUOTA), "/dev/null", QFMT_VFS_V0,
                        (caddr_t) "/nonexistent-krx-probe"),
            "quotactl(Q_QUOTAON, /dev/null)");
}

/* ---- files by handle, own executable, inherited fds ---------------------------------------- */

struct handle {
    struct file_handle fh;
    unsigned char bytes[MAX_HANDLE_SZ];
};

static void p_name_to_handle_at(char **a, struct result *r) {
    (void)a;
    struct handle h;
    memset(&h, 0, sizeof h);
    h.fh.handle_bytes = MAX_HANDLE_SZ;
    int mount_id;
    attempt(r, name_to_handle_at(AT_FDCWD, "/", &h.fh, &mount_id, 0), "name_to_handle_at(/)");
}

static void p_open_by_handle_at(char **a, struct result *r) {
    (void)a;
    struct handle h;
    memset(&h, 0, sizeof h);
    h.fh.handle_bytes = MAX_HANDLE_SZ;
    int mount_id;
    const char *which = "the handle of /";
    if (name_to_handle_at(AT_FDCWD, "/", &h.fh, &mount_id, 0) == -1) {
        /* The shocker exploit's guess: inode 2 (an ext4 root) with generation 0. */
        memset(&h, 0, sizeof h);
        h.fh.handle_bytes = 8;
        h.fh.handle_type = 1; /* FILEID_INO32_GEN */
        h.bytes[0] = 2;
        which = "a forged handle for inode 2";
    }
    int fd = open_by_handle_at(AT_FDCWD, &h.fh, O_RDONLY | O_CLOEXEC);
    attempt(r, fd, "open_by_handle_at(%s)", which);
    if (fd >= 0) close(fd);
}

static void p_write_self_exe(char **a, struct result *r) {
    (void)a;
    int fd = open("/proc/self/exe", O_WRONLY | O_CLOEXEC);
    if (fd == -1) {
        attempt(r, -1, "open(/proc/self/exe, O_WRONLY)");
        return;
    }
    /* Write back the ELF magic's first byte: a real write that changes nothing. */
    ssize_t n = pwrite(fd, "\x7f", 1, 0);
    attempt(r, n == 1 ? 0 : -1, "pwrite(/proc/self/exe, 1 byte at 0)");
    close(fd);
}

static void p_fd_scan(char **a, struct result *r) {
    (void)a;
    int count = 0;
    extra_raw(r, ",\"fds\":[");
    DIR *d = opendir("/proc/self/fd");
    for (int fd = 3; fd < 4096; fd++) {
        if (d != NULL && fd == dirfd(d)) continue;
        if (fcntl(fd, F_GETFD) == -1) continue;
        char link[64], target[1024];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n < 0) snprintf(target, sizeof target, "?");
        else target[n] = '\0';
        extra_raw(r, "%s{\"fd\":%d,\"target\":", count > 0 ? "," : "", fd);
        extra_str(r->extra, sizeof r->extra, target);
        extra_raw(r, "}");
        count++;
    }
    if (d != NULL) closedir(d);
    extra_raw(r, "]");
    r->ok = count > 0;
    r->err = 0;
    snprintf(r->detail, sizeof r->detail, "%d open fds above 2", count);
}

/* ---- sockets and networking -------------------------------------------------------------- */

static void try_socket(struct result *r, int domain, int type, int protocol, const char *what) {
    int s = socket(domain, type | SOCK_CLOEXEC, protocol);
    attempt(r, s, "socket(%s)", what);
    if (s >= 0) close(s);
}

static void p_socket_packet(char **a, struct result *r) {
    (void)a;
    try_socket(r, AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), "AF_PACKET, SOCK_RAW, ETH_P_ALL");
}
static void p_socket_raw(char **a, struct result *r) {
    (void)a;
    try_socket(r, AF_INET, SOCK_RAW, IPPROTO_ICMP, "AF_INET, SOCK_RAW, IPPROTO_ICMP");
}
static void p_raw_socket(char **a, struct result *r) {
    (void)a;
    try_socket(r, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, "AF_INET6, SOCK_RAW, IPPROTO_ICMPV6");
}
static void p_netlink_audit(char **a, struct result *r) {
    (void)a;
    try_socket(r, AF_NETLINK, SOCK_RAW, NETLINK_AUDIT, "AF_NETLINK, SOCK_RAW, NETLINK_AUDIT");
}
static void p_netlink_route(char **a, struct result *r) {
    (void)a;
    try_socket(r, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, "AF_NETLINK, SOCK_RAW, NETLINK_ROUTE");
}
static void p_socket_vsock(char **a, struct result *r) {
    (void)a;
    try_socket(r, AF_VSOCK, SOCK_STREAM, 0, "AF_VSOCK, SOCK_STREAM");
}
static void p_socket_alg(char **a, struct result *r) {
    (void)a;
    try_socket(r, AF_ALG, SOCK_SEQPACKET, 0, "AF_ALG, SOCK_SEQPACKET");
}

static void p_connect_unix(char **a, struct result *r) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t len = strlen(a[0]);
    if (len == 0 || len >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        attempt(r, -1, "bad unix socket path");
        return;
    }
    memcpy(addr.sun_path, a[0], len);
    if (a[0][0] == '@') addr.sun_path[0] = '\0'; /* abstract namespace */
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s == -1) {
        attempt(r, -1, "socket(AF_UNIX)");
        return;
    }
    attempt(r, connect(s, (struct sockaddr *)&addr, alen), "connect(unix %s)", a[0]);
    close(s);
}

static int parse_addr(const char *ip, const char *port, struct sockaddr_storage *ss,
                      socklen_t *len) {
    char *end;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || p < 0 || p > 65535) return -1;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}

#define CONNECT_TIMEOUT_MS 5000

static void p_connect_tcp(char **a, struct result *r) {
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_addr(a[0], a[1], &ss, &len) == -1) {
        errno = EINVAL;
        attempt(r, -1, "not an address and port: %s %s", a[0], a[1]);
        return;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s == -1) {
        attempt(r, -1, "socket(%s, SOCK_STREAM)", ss.ss_family == AF_INET ? "AF_INET" : "AF_INET6");
        extra_raw(r, ",\"elapsed_ms\":%ld", elapsed_ms(&start));
        return;
    }
    int rc = connect(s, (struct sockaddr *)&ss, len);
    if (rc == -1 && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = s, .events = POLLOUT};
        int n = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
        if (n == 0) {
            errno = ETIMEDOUT;
        } else if (n > 0) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            rc = soerr == 0 ? 0 : -1;
            errno = soerr;
        }
    }
    attempt(r, rc, "connect(tcp %s port %s)", a[0], a[1]);
    extra_raw(r, ",\"elapsed_ms\":%ld", elapsed_ms(&start));
    close(s);
}

static void p_udp_send(char **a, struct result *r) {
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_addr(a[0], a[1], &ss, &len) == -1) {
        errno = EINVAL;
        attempt(r, -1, "not an address and port: %s %s", a[0], a[1]);
        return;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int s = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s == -1) {
        attempt(r, -1, "socket(SOCK_DGRAM)");
    } else {
        ssize_t n = sendto(s, "krx", 3, 0, (struct sockaddr *)&ss, len);
        attempt(r, n == 3 ? 0 : -1, "sendto(udp %s port %s)", a[0], a[1]);
        close(s);
    }
    extra_raw(r, ",\"elapsed_ms\":%ld", elapsed_ms(&start));
}

/* ---- terminals ------------------------------------------------------------------------------ */

/*
 * TIOCSTI only acts on the caller's controlling terminal, so the attempt needs one: fd 0 when it
 * is a terminal, else a fresh pty made the controlling terminal of a new session in a child.
 * With no terminal reachable at all, the ioctl still goes to fd 0: a filter refuses it before the
 * kernel would look at the fd.
 */
static int tty_ioctl_child(unsigned long cmd, void *arg) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master == -1) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        if (setsid() == -1 || grantpt(master) == -1 || unlockpt(master) == -1) _exit(errno);
        const char *name = ptsname(master);
        if (name == NULL) _exit(errno);
        int slave = open(name, O_RDWR); /* no O_NOCTTY: becomes the controlling terminal */
        if (slave == -1) _exit(errno);
        _exit(ioctl(slave, cmd, arg) == 0 ? 0 : errno);
    }
    close(master);
    if (pid == -1) return -1;
    int code = reap(pid);
    errno = code;
    return code == 0 ? 0 : -1;
}

static void tty_attempt(struct result *r, unsigned long cmd, void *arg, const char *what) {
    if (isatty(STDIN_FILENO)) {
        attempt(r, ioctl(STDIN_FILENO, cmd, arg), "ioctl(0 (a terminal), %s)", what);
        return;
    }
    if (access("/dev/ptmx", F_OK) == 0) {
        int rc = tty_ioctl_child(cmd, arg);
        int saved = errno;
        if (rc == 0 || (saved != ENOENT && saved != EACCES && saved != ENXIO)) {
            errno = saved;
            attempt(r, rc, "ioctl(a new pty as controlling terminal, %s)", what);
            return;
        }
    }
    attempt(r, ioctl(STDIN_FILENO, cmd, arg), "ioctl(0, %s)", what);
    add_detail(r, "; no terminal reachable (fd 0 is not a tty, no usable /dev/ptmx)");
}

static void p_tiocsti(char **a, struct result *r) {
    (void)a;
    char c = '\n';
    tty_attempt(r, TIOCSTI, &c, "TIOCSTI");
}

static void p_tioclinux(char **a, struct result *r) {
    (void)a;
    char sub = TIOCL_GETSHIFTSTATE;
    tty_attempt(r, TIOCLINUX, &sub, "TIOCLINUX");
}

/* ---- kernel interfaces ---------------------------------------------------------------------- */

static void p_bpf(char **a, struct result *r) {
    (void)a;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    attempt(r, fd, "bpf(BPF_MAP_CREATE, array)");
    if (fd >= 0) close((int)fd);
}

static void p_userfaultfd(char **a, struct result *r) {
    (void)a;
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    attempt(r, fd, "userfaultfd(UFFD_USER_MODE_ONLY)");
    if (fd >= 0) close((int)fd);
}

static void p_keyctl(char **a, struct result *r) {
    (void)a;
    attempt(r, syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0),
            "keyctl(KEYCTL_GET_KEYRING_ID, session keyring)");
}

static void p_add_key(char **a, struct result *r) {
    (void)a;
    attempt(r, syscall(SYS_add_key, "user", "krx-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING),
            "add_key(user, krx-probe, process keyring)");
}

static void p_io_uring_setup(char **a, struct result *r) {
    (void)a;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    long fd = syscall(SYS_io_uring_setup, 1, &p);
    attempt(r, fd, "io_uring_setup(1 entry)");
    if (fd >= 0) close((int)fd);
}

static void p_perf_event_open(char **a, struct result *r) {
    (void)a;
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    attempt(r, fd, "perf_event_open(software cpu clock, self)");
    if (fd >= 0) close((int)fd);
}

static void p_fanotify_init(char **a, struct result *r) {
    (void)a;
    int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC, O_RDONLY);
    attempt(r, fd, "fanotify_init(FAN_CLASS_NOTIF)");
    if (fd >= 0) close(fd);
}

static void p_kexec_load(char **a, struct result *r) {
    (void)a;
    /* No segments and a foreign-architecture flag: past the permission check, EINVAL. */
    attempt(r, syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xffff0000UL),
            "kexec_load(0 segments, foreign arch)");
}

static void p_init_module(char **a, struct result *r) {
    (void)a;
    static const unsigned char image[64]; /* not an ELF: past the permission check, ENOEXEC */
    attempt(r, syscall(SYS_init_module, image, sizeof image, ""), "init_module(64 zero bytes)");
}

static void p_reboot(char **a, struct result *r) {
    (void)a;
    /* No magic numbers: past the permission check, EINVAL. */
    attempt(r, syscall(SYS_reboot, 0, 0, LINUX_REBOOT_CMD_CAD_OFF, NULL), "reboot(no magic)");
}

static void p_settimeofday(char **a, struct result *r) {
    (void)a;
    /* An invalid time: a kernel that let the call through answers EINVAL, the clock is safe. */
    struct timeval tv = {.tv_sec = 0, .tv_usec = 2000000};
    attempt(r, syscall(SYS_settimeofday, &tv, NULL), "settimeofday(invalid tv_usec)");
}

/* ---- the table -------------------------------------------------------------------------- */

static const struct probe probes[] = {
    /* other processes */
    {"ptrace_attach_parent", 0, p_ptrace_attach_parent, ""},
    {"ptrace_traceme", 0, p_ptrace_traceme, ""},
    {"ptrace_pid", 1, p_ptrace_pid, "<pid>"},
    {"process_vm_readv", 0, p_process_vm_readv, ""},
    {"kcmp", 0, p_kcmp, ""},
    {"pidfd_getfd", 0, p_pidfd_getfd, ""},
    {"read_environ", 1, p_read_environ, "<pid>"},
    {"kill_pid", 1, p_kill_pid, "<pid>"},
    /* namespaces and processes */
    {"unshare_user", 0, p_unshare_user, ""},
    {"unshare_net", 0, p_unshare_net, ""},
    {"unshare_mount", 0, p_unshare_mount, ""},
    {"setns", 0, p_setns, ""},
    {"clone_newuser", 0, p_clone_newuser, ""},
    {"clone3", 0, p_clone3, ""},
    {"personality", 0, p_personality, ""},
    /* mounts and host-wide state */
    {"mount", 0, p_mount, ""},
    {"umount2", 0, p_umount2, ""},
    {"pivot_root", 0, p_pivot_root, ""},
    {"fsopen", 0, p_fsopen, ""},
    {"open_tree", 0, p_open_tree, ""},
    {"move_mount", 0, p_move_mount, ""},
    {"swapon", 0, p_swapon, ""},
    {"acct", 0, p_acct, ""},
    {"quotactl", 0, p_quotactl, ""},
    {"settimeofday", 0, p_settimeofday, ""},
    {"reboot", 0, p_reboot, ""},
    {"kexec_load", 0, p_kexec_load, ""},
    {"init_module", 0, p_init_module, ""},
    /* files */
    {"name_to_handle_at", 0, p_name_to_handle_at, ""},
    {"open_by_handle_at", 0, p_open_by_handle_at, ""},
    {"write_self_exe", 0, p_write_self_exe, ""},
    {"fd_scan", 0, p_fd_scan, ""},
    /* kernel interfaces */
    {"bpf", 0, p_bpf, ""},
    {"userfaultfd", 0, p_userfaultfd, ""},
    {"keyctl", 0, p_keyctl, ""},
    {"add_key", 0, p_add_key, ""},
    {"io_uring_setup", 0, p_io_uring_setup, ""},
    {"perf_event_open", 0, p_perf_event_open, ""},
    {"fanotify_init", 0, p_fanotify_init, ""},
    /* terminals */
    {"tiocsti", 0, p_tiocsti, ""},
    {"tioclinux", 0, p_tioclinux, ""},
    /* sockets and networking */
    {"socket_packet", 0, p_socket_packet, ""},
    {"socket_raw", 0, p_socket_raw, ""},
    {"raw_socket", 0, p_raw_socket, ""},
    {"netlink_audit", 0, p_netlink_audit, ""},
    {"socket_vsock", 0, p_socket_vsock, ""},
    {"socket_alg", 0, p_socket_alg, ""},
    {"connect_unix", 1, p_connect_unix, "<path | @abstract>"},
    {"connect_tcp", 2, p_connect_tcp, "<ip> <port>"},
    {"udp_send", 2, p_udp_send, "<ip> <port>"},
    /* controls: ordinary things that must keep working (exit 1 = it worked) */
    {"fork", 0, p_fork, ""},
    {"spawn", 0, p_spawn, ""},
    {"netlink_route", 0, p_netlink_route, ""},
};
#define PROBE_COUNT (sizeof probes / sizeof probes[0])

static int usage(const char *why) {
    fprintf(stderr, "syscall-probe: %s\nusage: syscall-probe --list | <name> [args]\n", why);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage("missing probe name");
    const char *name = argv[1];
    if (strcmp(name, "noop") == 0) return 0; /* the program `spawn` starts */
    if (strcmp(name, "--list") == 0) {
        for (size_t i = 0; i < PROBE_COUNT; i++)
            printf("%s%s%s\n", probes[i].name, probes[i].usage[0] ? " " : "", probes[i].usage);
        return 0;
    }
    const struct probe *p = NULL;
    for (size_t i = 0; i < PROBE_COUNT && p == NULL; i++)
        if (strcmp(probes[i].name, name) == 0) p = &probes[i];
    if (p == NULL) return usage("unknown probe name");
    if (argc - 2 != p->nargs) return usage("wrong number of arguments for this probe");

    static struct result r;
    p->run(argv + 2, &r);

    printf("{\"probe\":");
    json_str(stdout, p->name);
    printf(",\"ok\":%s,\"errno\":", r.ok ? "true" : "false");
    if (r.ok || r.err == 0) printf("null");
    else json_str(stdout, errno_name(r.err));
    printf(",\"detail\":");
    json_str(stdout, r.detail);
    printf("%s}\n", r.extra);
    if (fflush(stdout) != 0) return 2;
    return r.ok ? 1 : 0;
}
