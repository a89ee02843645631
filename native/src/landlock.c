#include "landlock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privs.h"
#include "spec.h"

/* Landlock syscalls share one number on every architecture. */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

int landlock_abi(struct krx_err *err) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi == -1)
        return krx_fail_errno(err,
                              "landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)");
    return (int)abi;
}

uint64_t landlock_fs_rights(int abi) {
    uint64_t rights = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
    if (abi >= 2) rights |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3) rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5) rights |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return rights;
}

static size_t attr_size(int abi) {
    if (abi >= 6) return sizeof(struct krx_landlock_ruleset_attr);
    if (abi >= 4) return offsetof(struct krx_landlock_ruleset_attr, scoped);
    return offsetof(struct krx_landlock_ruleset_attr, handled_access_net);
}

int landlock_create(const struct krx_landlock_ruleset_attr *attr, int abi, struct krx_err *err) {
    size_t size = attr_size(abi);
    long fd = syscall(SYS_landlock_create_ruleset, attr, size, 0);
    if (fd == -1)
        return krx_fail_errno(err,
                              "landlock_create_ruleset({fs 0x%llx, net 0x%llx, scoped 0x%llx}, %zu, 0)",
                              (unsigned long long)attr->handled_access_fs,
                              (unsigned long long)attr->handled_access_net,
                              (unsigned long long)attr->scoped, size);
    return (int)fd;
}

int landlock_allow_path(int ruleset, const char *path, uint64_t access, struct krx_err *err) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd == -1) return krx_fail_errno(err, "open(\"%s\", O_PATH)", path);
    struct landlock_path_beneath_attr rule = {.allowed_access = access, .parent_fd = fd};
    long rc = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    if (rc == -1) krx_fail_errno(err, "landlock_add_rule(PATH_BENEATH \"%s\", 0x%llx)", path,
                                 (unsigned long long)access);
    close(fd);
    return rc == -1 ? -1 : 0;
}

int landlock_restrict(int ruleset, struct krx_err *err) {
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) == -1)
        return krx_fail_errno(err, "landlock_restrict_self(%d, 0)", ruleset);
    return 0;
}

/* A denial the domain must now produce: `what` has to fail with `want`. */
static int expect_denied(int rc, int want, const char *what, struct krx_err *err) {
    if (rc == 0) return krx_fail(err, "landlock enforced, but %s was still allowed", what);
    if (errno != want)
        return krx_fail_errno(err, "landlock enforced, %s failed with an unexpected errno", what);
    return 0;
}

static int connect_loopback(void) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s == -1) return -2;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(9);
    int rc = connect(s, (struct sockaddr *)&addr, sizeof addr);
    int saved = errno;
    close(s);
    errno = saved;
    return rc;
}

int landlock_probe(int *abi, struct krx_err *err) {
    *abi = landlock_abi(err);
    if (*abi == -1) {
        *abi = 0;
        return -1;
    }
    int level = *abi < KRX_LANDLOCK_ABI_KNOWN ? *abi : KRX_LANDLOCK_ABI_KNOWN;

    struct krx_landlock_ruleset_attr attr = {.handled_access_fs = landlock_fs_rights(level)};
    if (level >= 4)
        attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
    if (level >= 6) attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;

    if (privs_no_new_privs(err) == -1) return -1;
    int ruleset = landlock_create(&attr, level, err);
    if (ruleset == -1) return -1;
    /* Grant reading files but not listing directories, so the check below has a right to miss. */
    if (landlock_allow_path(ruleset, "/", LANDLOCK_ACCESS_FS_READ_FILE, err) == -1 ||
        landlock_restrict(ruleset, err) == -1) {
        close(ruleset);
        return -1;
    }
    close(ruleset);

    int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    if (expect_denied(fd >= 0 ? 0 : -1, EACCES, "open(\"/\", O_DIRECTORY)", err) == -1) return -1;
    if (level >= 4) {
        int rc = connect_loopback();
        if (rc == -2) return krx_fail_errno(err, "socket(AF_INET, SOCK_STREAM)");
        if (expect_denied(rc, EACCES, "connect(127.0.0.1:9)", err) == -1) return -1;
    }
    if (level >= 6 && expect_denied(kill(getppid(), 0), EPERM, "kill(parent, 0)", err) == -1)
        return -1;
    return 0;
}

/* ---- contain()'s step ----------------------------------------------------------------------- */

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_READ_EXEC (FS_READ | LANDLOCK_ACCESS_FS_EXECUTE)
/* The rights that mean something on a file that is not a directory; a rule on such a file may
 * carry no others (EINVAL). */
#define FS_FILE_RIGHTS                                                                      \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define FS_DEVICE_RW                                                                          \
    (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
     LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define FS_DEVICE_RO (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define FS_ALL (~0ULL) /* clamped to what the ruleset handles */

/* Grants that do not depend on the spec (see landlock.h for the whole list). */
static const struct {
    const char *path;
    uint64_t access;
} fixed_rules[] = {
    {"/", LANDLOCK_ACCESS_FS_READ_DIR},
    {"/proc", FS_READ},
    {"/dev", LANDLOCK_ACCESS_FS_READ_DIR},
    {"/dev/null", FS_DEVICE_RW},
    {"/dev/zero", FS_DEVICE_RW},
    {"/dev/full", FS_DEVICE_RW},
    {"/dev/random", FS_DEVICE_RO},
    {"/dev/urandom", FS_DEVICE_RO},
    {KRX_SANDBOX_WORKSPACE, FS_ALL},
    {KRX_SANDBOX_TMP, FS_ALL},
    {"/dev/shm", FS_ALL},
};

/*
 * Allow `access` beneath `path`, limited to what the ruleset handles and, for a file that is not a
 * directory, to file rights. A path missing from the new root is skipped: there is nothing there
 * to grant, and skipping can only take access away.
 */
static int allow_beneath(int ruleset, const char *path, uint64_t access, uint64_t handled,
                         struct krx_err *err) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd == -1) {
        if (errno == ENOENT) return 0;
        return krx_fail_errno(err, "open(\"%s\", O_PATH) for a Landlock rule", path);
    }
    struct stat st;
    if (fstat(fd, &st) == -1) {
        krx_fail_errno(err, "fstat(\"%s\") for a Landlock rule", path);
        close(fd);
        return -1;
    }
    access &= handled;
    if (!S_ISDIR(st.st_mode)) access &= FS_FILE_RIGHTS;
    long rc = 0;
    if (access != 0) {
        struct landlock_path_beneath_attr rule = {.allowed_access = access, .parent_fd = fd};
        rc = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
        if (rc == -1)
            krx_fail_errno(err, "landlock_add_rule(%d, PATH_BENEATH, {\"%s\", 0x%llx}, 0)", ruleset,
                           path, (unsigned long long)access);
    }
    close(fd);
    return rc == -1 ? -1 : 0;
}

static int allow_tcp_connect(int ruleset, unsigned port, struct krx_err *err) {
    struct krx_landlock_net_port_attr rule = {.allowed_access = LANDLOCK_ACCESS_NET_CONNECT_TCP,
                                              .port = port};
    if (syscall(SYS_landlock_add_rule, ruleset, KRX_LANDLOCK_RULE_NET_PORT, &rule, 0) == -1)
        return krx_fail_errno(err, "landlock_add_rule(%d, NET_PORT, {CONNECT_TCP, port %u}, 0)",
                              ruleset, port);
    return 0;
}

static int add_rules(int ruleset, const struct krx_spec *spec, int level, uint64_t handled,
                     struct krx_err *err) {
    for (size_t i = 0; i < sizeof fixed_rules / sizeof fixed_rules[0]; i++)
        if (allow_beneath(ruleset, fixed_rules[i].path, fixed_rules[i].access, handled, err) == -1)
            return -1;
    for (size_t i = 0; i < spec->mounts.ro_binds_count; i++)
        if (allow_beneath(ruleset, spec->mounts.ro_binds[i], FS_READ_EXEC, handled, err) == -1)
            return -1;
    for (size_t i = 0; i < spec->mounts.files_count; i++)
        if (allow_beneath(ruleset, spec->mounts.files[i].path, LANDLOCK_ACCESS_FS_READ_FILE,
                          handled, err) == -1)
            return -1;
    if (level >= 4 && spec->network.enabled &&
        allow_tcp_connect(ruleset, spec->network.relay_port, err) == -1)
        return -1;
    return 0;
}

int landlock_apply(const struct krx_spec *spec, struct krx_err *err) {
    if (!spec_has_layer(spec, KRX_LAYER_LANDLOCK)) return 0;

    int abi = landlock_abi(err);
    if (abi == -1) return -1;
    int level = abi < KRX_LANDLOCK_ABI_KNOWN ? abi : KRX_LANDLOCK_ABI_KNOWN;

    struct krx_landlock_ruleset_attr attr = {.handled_access_fs = landlock_fs_rights(level)};
    /* Bind is handled and never granted; connect only by the relay rule. */
    if (level >= 4)
        attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
    if (level >= 6) attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;

    int ruleset = landlock_create(&attr, level, err);
    if (ruleset == -1) return -1;
    int rc = add_rules(ruleset, spec, level, attr.handled_access_fs, err);
    if (rc == 0) rc = landlock_restrict(ruleset, err);
    close(ruleset);
    return rc;
}
