/*
 * kruxos-sandbox: the native helper that puts one capability call into a kernel sandbox.
 *
 * Today it answers two questions:
 *   --version  {"name":"kruxos-sandbox","version":1,"spec_versions":[1]}
 *   --probe    which sandbox layers actually work on this host (probe.h)
 *
 * contain() arrives with the spec-driven run mode. It reads a validated, versioned JSON spec from
 * an fd and then applies, in this order, one step per kernel facility. The order is the argument:
 * each step still holds the privilege the next one needs, and each later step narrows what an
 * escape from an earlier one could reach.
 *
 *    1. user namespace   namespaces.c  uid/gid 1100 inside, mapped to the caller; a root caller is
 *                                      mapped to an unprivileged host uid, never root (those maps
 *                                      are written by the parent, which holds CAP_SETUID outside).
 *                                      Everything below needs only the capabilities this grants.
 *    2. mount namespace  mounts.c      private tree; fresh tmpfs root; system dirs bound read-only;
 *                                      workspace subtree read-write; private /tmp; minimal /dev;
 *                                      no /data, no /run; pivot_root and detach the old root.
 *    3. pid namespace    namespaces.c  the helper is pid 1 and reaps; when it dies, all die. No new
 *                                      /proc where the host refuses one (hardened containers).
 *    4. net namespace    namespaces.c  empty but for lo; with network granted, netrelay.c listens
 *                                      on 127.0.0.1:3128 and forwards to the egress unix socket.
 *    5. uts, ipc         namespaces.c  own hostname, own SysV IPC and POSIX message queues.
 *    6. limits           rlimits.c     AS, CPU, NOFILE, FSIZE, NPROC, CORE=0;
 *                        cgroup.c      memory/pids cgroup v2 limits where delegated.
 *    7. no_new_privs     privs.c       from here on execve() can never gain privilege.
 *    8. Landlock         landlock.c    filesystem rules; TCP connect only to the relay; scoping.
 *    9. seccomp          seccomp.c     last of the restrictions, so the setup syscalls above need
 *                                      not be allowed; kill on a foreign arch (and x32 numbers).
 *   10. hygiene          privs.c       close inherited fds, setsid, safelisted environment.
 *   11. execve
 *
 * Any failure is one JSON line on stderr and a reserved exit code (exit_codes.h); nothing runs
 * with fewer layers than the spec asked for.
 */
#include <string.h>
#include <unistd.h>

#include "exit_codes.h"
#include "probe.h"
#include "util.h"

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

int main(int argc, char **argv) {
    if (argc != 2)
        die(KRX_EXIT_USAGE, "usage", "expected exactly one argument: --version or --probe");
    if (strcmp(argv[1], "--version") == 0) return print_version();
    if (strcmp(argv[1], "--probe") == 0) return probe_main();
    die(KRX_EXIT_USAGE, "usage", "unknown argument \"%.64s\": expected --version or --probe",
        argv[1]);
}
