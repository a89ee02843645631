#include "namespaces.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *clone_flag_name(int flag) {
    switch (flag) {
    case CLONE_NEWUSER: return "CLONE_NEWUSER";
    case CLONE_NEWNS: return "CLONE_NEWNS";
    case CLONE_NEWPID: return "CLONE_NEWPID";
    case CLONE_NEWNET: return "CLONE_NEWNET";
    case CLONE_NEWUTS: return "CLONE_NEWUTS";
    case CLONE_NEWIPC: return "CLONE_NEWIPC";
    case CLONE_NEWCGROUP: return "CLONE_NEWCGROUP";
    default: return "?";
    }
}

/* "CLONE_NEWUSER|CLONE_NEWNS|…" for a failure text. */
static void clone_flags_text(int flags, char *buf, size_t cap) {
    static const int all[] = {CLONE_NEWUSER, CLONE_NEWNS,  CLONE_NEWPID,   CLONE_NEWNET,
                              CLONE_NEWUTS,  CLONE_NEWIPC, CLONE_NEWCGROUP};
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (!(flags & all[i])) continue;
        int n = snprintf(buf + len, cap - len, "%s%s", len > 0 ? "|" : "", clone_flag_name(all[i]));
        if (n < 0 || (size_t)n >= cap - len) return;
        len += (size_t)n;
    }
    snprintf(buf + len, cap - len, "%sSIGCHLD", len > 0 ? "|" : "");
}

pid_t ns_clone(int flags, struct krx_err *err) {
    long pid = syscall(SYS_clone, (unsigned long)flags | SIGCHLD, 0UL, 0UL, 0UL, 0UL);
    if (pid == -1) {
        char text[160];
        clone_flags_text(flags, text, sizeof text);
        return krx_fail_errno(err, "clone(%s)", text);
    }
    return (pid_t)pid;
}

int ns_write_maps(pid_t pid, uid_t inside_uid, uid_t host_uid, gid_t inside_gid, gid_t host_gid,
                  struct krx_err *err) {
    char path[64];
    char map[64];
    snprintf(path, sizeof path, "/proc/%d/setgroups", (int)pid);
    if (write_small_file(path, "deny", err) == -1) return -1;
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)inside_uid, (unsigned)host_uid);
    if (write_small_file(path, map, err) == -1) return -1;
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)inside_gid, (unsigned)host_gid);
    if (write_small_file(path, map, err) == -1) return -1;
    return 0;
}

int ns_become(uid_t uid, gid_t gid, struct krx_err *err) {
    if (setresgid(gid, gid, gid) == -1)
        return krx_fail_errno(err, "setresgid(%u, %u, %u)", (unsigned)gid, (unsigned)gid,
                              (unsigned)gid);
    if (setresuid(uid, uid, uid) == -1)
        return krx_fail_errno(err, "setresuid(%u, %u, %u)", (unsigned)uid, (unsigned)uid,
                              (unsigned)uid);
    return 0;
}

int ns_unshare(int flag, struct krx_err *err) {
    if (unshare(flag) == -1) return krx_fail_errno(err, "unshare(%s)", clone_flag_name(flag));
    return 0;
}

int ns_enter_user(uid_t inside_uid, gid_t inside_gid, struct krx_err *err) {
    /* Read before unsharing: afterwards the caller's ids read as the overflow id until mapped. */
    uid_t outer_uid = geteuid();
    gid_t outer_gid = getegid();
    char map[64];

    if (ns_unshare(CLONE_NEWUSER, err) == -1) return -1;
    /* Required before an unprivileged gid_map write; also stops dropping groups to dodge a deny. */
    if (write_small_file("/proc/self/setgroups", "deny", err) == -1) return -1;
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)inside_uid, (unsigned)outer_uid);
    if (write_small_file("/proc/self/uid_map", map, err) == -1) return -1;
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)inside_gid, (unsigned)outer_gid);
    if (write_small_file("/proc/self/gid_map", map, err) == -1) return -1;
    return 0;
}

int ns_check_pid_init(struct krx_err *err) {
    pid_t child = fork();
    if (child == -1) return krx_fail_errno(err, "fork() after unshare(CLONE_NEWPID)");
    if (child == 0) _exit(getpid() == 1 ? 0 : 1);

    int status;
    while (waitpid(child, &status, 0) == -1) {
        if (errno != EINTR) return krx_fail_errno(err, "waitpid(%d)", (int)child);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return krx_fail(err, "first child after unshare(CLONE_NEWPID) is not pid 1 (status %d)",
                        status);
    return 0;
}

int ns_lo_up(struct krx_err *err) {
    int rc = -1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1) return krx_fail_errno(err, "socket(AF_INET, SOCK_DGRAM)");

    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == -1) {
        krx_fail_errno(err, "ioctl(SIOCGIFFLAGS, \"lo\")");
        goto out;
    }
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) == -1) {
        krx_fail_errno(err, "ioctl(SIOCSIFFLAGS, \"lo\", IFF_UP)");
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

int ns_loopback_up(struct krx_err *err) {
    int rc = -1;
    if (ns_lo_up(err) == -1) return -1;

    /* The egress relay will listen on loopback; prove a listener can exist here. */
    int lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lst == -1) return krx_fail_errno(err, "socket(AF_INET, SOCK_STREAM)");
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(lst, (struct sockaddr *)&addr, sizeof addr) == -1) {
        krx_fail_errno(err, "bind(127.0.0.1:0)");
        goto out;
    }
    if (listen(lst, 1) == -1) {
        krx_fail_errno(err, "listen(127.0.0.1)");
        goto out;
    }
    rc = 0;
out:
    close(lst);
    return rc;
}

int ns_set_hostname(const char *name, struct krx_err *err) {
    if (sethostname(name, strlen(name)) == -1)
        return krx_fail_errno(err, "sethostname(\"%s\")", name);
    return 0;
}
