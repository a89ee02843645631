/*
 * kruxos-sandbox: the native helper that puts one capability call into a kernel sandbox.
 *
 *   --version  {"name":"kruxos-sandbox","version":1,"spec_versions":[1]}
 *   --probe    which sandbox layers actually work on this host (probe.h)
 *   --run      read a spec (spec.h) from fd 3, run its program in the sandbox, write status lines
 *              on fd 4 (docs/sandbox.md "Run mode"); stdin is the program's, and what it writes
 *              to its stdout and stderr (pipes) is copied to the helper's
 *
 * --run is contain() (contain.c), one step per kernel facility across three processes. The order
 * is the argument: each step still holds the privilege the next one needs, and each later step
 * narrows what an escape from an earlier one could reach.
 *
 *  outer process (the caller's namespaces)
 *    1. spec             spec.c        read whole, parsed strictly, validated; else exit 121
 *    2. host ids         contain.c     never root outside; a non-root caller maps only itself
 *    3. clone            namespaces.c  init is born inside the user, mount, pid, net, uts and ipc
 *                                      namespaces the spec lists, pid 1 of the new pid namespace;
 *                                      its stdout and stderr are pipes of the outer process
 *    4. host paths       mounts.c      workspace and ro_binds opened with the caller's credentials
 *                                      through /proc/<init>/root, handed to init as O_PATH fds
 *    5. id maps          namespaces.c  uid/gid 1100 inside → host_uid/host_gid outside (setgroups
 *                                      denied), written from outside where that right lives
 *    6. cgroup           cgroup.c      call-<pid> under a delegated cgroup v2: memory, pids, cpu
 *  init (pid 1 inside, every capability of its own user namespace)
 *    7. user             namespaces.c  become uid/gid 1100
 *    8. mount            mounts.c      private tree; fresh tmpfs root; system dirs read-only;
 *                                      workspace read-write; ro overlays; private /tmp, minimal
 *                                      /dev, /proc; no /data, /run, /sys; pivot_root, old root
 *                                      detached, "/" read-only
 *    9. uts              namespaces.c  hostname
 *   10. net              namespaces.c  lo only; with network granted the relay listener on
 *                        netrelay.c    127.0.0.1:<relay_port>, handed to the outer process
 *   11. rlimits          rlimits.c     AS, CPU, NPROC, NOFILE, FSIZE, CORE=0
 *  workload (forked by init, which stays as reaper: when it exits the namespace dies)
 *   12. session, cwd     privs.c       setsid(); chdir into the workspace
 *   13. capabilities     privs.c       ambient, bounding, effective/permitted/inheritable all empty
 *   14. no_new_privs     privs.c       from here on execve() can never gain privilege
 *   15. Landlock         landlock.c    file system rules; TCP connect only to the relay; scoping
 *   16. seccomp          seccomp.c     last of the restrictions, so the setup syscalls above need
 *                                      not be allowed; kill on a foreign arch (and x32 numbers)
 *   17. fds              privs.c       close everything above 2
 *   18. execve           the spec's argv and complete environment
 *  outer process, meanwhile (supervise.c): "started" once the program is exec'd; the program's
 *  stdout and stderr copied to fds 1 and 2 (pump.c); the relay to the egress proxy's unix socket;
 *  the wall clock (SIGKILL to init ends the whole pid namespace); once the output is drained,
 *  "exit" with status, limit hit, CPU time and peak RSS.
 *
 * Any failure is one JSON line on stderr (plus an "error" status line in run mode) and a reserved
 * exit code (exit_codes.h); nothing runs with fewer layers than the spec asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "contain.h"
#include "exit_codes.h"
#include "probe.h"
#include "spec.h"
#include "util.h"

#define KRX_SPEC_FD 3
#define KRX_STATUS_FD 4

#define KRX_HELPER_VERSION 1

static int print_version(void) {
    char storage[128];
    struct jbuf b;
    jb_init(&b, storage, sizeof storage);
    jb_raw(&b, "{\"name\":\"kruxos-sandbox\",\"version\":");
    jb_int(&b, KRX_HELPER_VERSION);
    jb_raw(&b, ",\"spec_versions\":[1]}");
    if (jb_write_line(&b, STDOUT_FILENO) == -1)
        die(KRX_EXIT_INTERNAL, "internal", "writing the version");
    return 0;
}

static int run_main(void) {
    struct krx_spec spec;
    struct krx_err err;
    /* Without the spec and status fds the launcher is not following the protocol. */
    if (fcntl(KRX_SPEC_FD, F_GETFD) == -1)
        die(KRX_EXIT_USAGE, "usage", "--run reads the spec from fd 3: fcntl(3, F_GETFD): %s",
            strerror(errno));
    if (fcntl(KRX_STATUS_FD, F_SETFD, FD_CLOEXEC) == -1)
        die(KRX_EXIT_USAGE, "usage", "--run writes status lines to fd 4: fcntl(4, F_SETFD): %s",
            strerror(errno));
    /* From here every failure is also an "error" status line on fd 4. */
    die_report_to(STDERR_FILENO, false, KRX_STATUS_FD);
    /* fds 0-2 must exist, or the pipes opened later could take their numbers. */
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1) continue;
        int null = open("/dev/null", O_RDWR);
        if (null != fd) die(KRX_EXIT_INTERNAL, "internal", "open(\"/dev/null\") for fd %d", fd);
    }
    if (spec_read(KRX_SPEC_FD, &spec, &err) == -1) die(KRX_EXIT_SPEC, "spec", "%s", err.detail);
    close(KRX_SPEC_FD);
    return contain(&spec, KRX_STATUS_FD);
}

int main(int argc, char **argv) {
    if (argc != 2)
        die(KRX_EXIT_USAGE, "usage", "expected exactly one argument: --version, --probe or --run");
    if (strcmp(argv[1], "--version") == 0) return print_version();
    if (strcmp(argv[1], "--probe") == 0) return probe_main();
    if (strcmp(argv[1], "--run") == 0) return run_main();
    die(KRX_EXIT_USAGE, "usage",
        "unknown argument \"%.64s\": expected --version, --probe or --run", argv[1]);
}
