#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "exit_codes.h"
#include "landlock.h"
#include "mounts.h"
#include "namespaces.h"
#include "privs.h"
#include "rlimits.h"
#include "seccomp.h"
#include "util.h"

/* What a probe child sends back over its pipe: one fixed-size record, below PIPE_BUF. */
struct layer_result {
    int ok;
    int abi;
    char detail[KRX_DETAIL_MAX];
};

struct layer {
    const char *name;
    /* Namespace layers run inside a fresh user namespace, exactly as contain() will use them. */
    bool in_user_ns;
    int (*run)(struct layer_result *r, struct krx_err *err);
};

static int probe_user(struct layer_result *r, struct krx_err *err) {
    (void)r;
    if (getuid() != KRX_SANDBOX_UID || getgid() != KRX_SANDBOX_GID)
        return krx_fail(err, "after writing uid_map/gid_map the ids read %u:%u, not %u:%u",
                        (unsigned)getuid(), (unsigned)getgid(), KRX_SANDBOX_UID, KRX_SANDBOX_GID);
    return 0;
}

static int probe_mount(struct layer_result *r, struct krx_err *err) {
    (void)r;
    if (ns_unshare(CLONE_NEWNS, err) == -1) return -1;
    return mnt_probe(err);
}

static int probe_pid(struct layer_result *r, struct krx_err *err) {
    (void)r;
    if (ns_unshare(CLONE_NEWPID, err) == -1) return -1;
    return ns_check_pid_init(err);
}

static int probe_net(struct layer_result *r, struct krx_err *err) {
    (void)r;
    if (ns_unshare(CLONE_NEWNET, err) == -1) return -1;
    return ns_loopback_up(err);
}

static int probe_uts(struct layer_result *r, struct krx_err *err) {
    (void)r;
    if (ns_unshare(CLONE_NEWUTS, err) == -1) return -1;
    return ns_set_hostname("kruxos-sandbox", err);
}

static int probe_ipc(struct layer_result *r, struct krx_err *err) {
    (void)r;
    return ns_unshare(CLONE_NEWIPC, err);
}

static int probe_rlimits(struct layer_result *r, struct krx_err *err) {
    (void)r;
    return rlimits_probe(err);
}

static int probe_cgroup(struct layer_result *r, struct krx_err *err) {
    (void)r;
    return cgroup_probe(err);
}

static int probe_no_new_privs(struct layer_result *r, struct krx_err *err) {
    (void)r;
    return privs_probe_no_new_privs(err);
}

static int probe_landlock(struct layer_result *r, struct krx_err *err) {
    return landlock_probe(&r->abi, err);
}

static int probe_seccomp(struct layer_result *r, struct krx_err *err) {
    (void)r;
    return seccomp_probe(err);
}

/* Report order; the names are the layer names of SPEC §8 and the manifest's [sandbox].require. */
static const struct layer layers[] = {
    {"user", true, probe_user},
    {"mount", true, probe_mount},
    {"pid", true, probe_pid},
    {"net", true, probe_net},
    {"uts", true, probe_uts},
    {"ipc", true, probe_ipc},
    {"rlimits", false, probe_rlimits},
    {"cgroup", false, probe_cgroup},
    {"no_new_privs", false, probe_no_new_privs},
    {"landlock", false, probe_landlock},
    {"seccomp", false, probe_seccomp},
};
#define LAYER_COUNT (sizeof layers / sizeof layers[0])

static _Noreturn void child(const struct layer *l, int out) {
    struct layer_result r;
    struct krx_err err;
    memset(&r, 0, sizeof r);
    memset(&err, 0, sizeof err);
    alarm(KRX_PROBE_CHILD_TIMEOUT_S);

    int rc = 0;
    if (l->in_user_ns && ns_enter_user(KRX_SANDBOX_UID, KRX_SANDBOX_GID, &err) == -1) {
        rc = -1;
        if (strcmp(l->name, "user") != 0) {
            char inner[KRX_DETAIL_MAX];
            memcpy(inner, err.detail, sizeof inner);
            krx_fail(&err, "needs the user namespace: %s", inner);
        }
    }
    if (rc == 0) rc = l->run(&r, &err);
    r.ok = rc == 0;
    if (!r.ok) memcpy(r.detail, err.detail, sizeof r.detail);
    _exit(write_all(out, &r, sizeof r) == 0 ? 0 : 1);
}

static ssize_t read_record(int fd, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n == -1 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static void run_layer(const struct layer *l, struct layer_result *out) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) == -1)
        die(KRX_EXIT_INTERNAL, "internal", "pipe2(O_CLOEXEC): %s", strerror(errno));
    pid_t pid = fork();
    if (pid == -1)
        die(KRX_EXIT_INTERNAL, "internal", "fork() for the %s probe: %s", l->name, strerror(errno));
    if (pid == 0) {
        close(p[0]);
        child(l, p[1]);
    }
    close(p[1]);
    ssize_t got = read_record(p[0], out, sizeof *out);
    close(p[0]);

    int status = 0;
    while (waitpid(pid, &status, 0) == -1) {
        if (errno != EINTR)
            die(KRX_EXIT_INTERNAL, "internal", "waitpid(%d): %s", (int)pid, strerror(errno));
    }
    if (got != (ssize_t)sizeof *out) {
        memset(out, 0, sizeof *out);
        if (WIFSIGNALED(status))
            snprintf(out->detail, sizeof out->detail, "%s probe child killed by signal %d (%s)",
                     l->name, WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            snprintf(out->detail, sizeof out->detail,
                     "%s probe child exited with status %d before reporting", l->name,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    out->detail[sizeof out->detail - 1] = '\0';
}

int probe_main(void) {
    struct layer_result results[LAYER_COUNT];
    for (size_t i = 0; i < LAYER_COUNT; i++) run_layer(&layers[i], &results[i]);

    char storage[LAYER_COUNT * (KRX_DETAIL_MAX + 64) + 128];
    struct jbuf b;
    jb_init(&b, storage, sizeof storage);
    jb_raw(&b, "{\"probe_version\":");
    jb_int(&b, KRX_PROBE_VERSION);
    jb_raw(&b, ",\"uid\":");
    jb_int(&b, (long long)getuid());
    jb_raw(&b, ",\"layers\":{");
    for (size_t i = 0; i < LAYER_COUNT; i++) {
        if (i > 0) jb_raw(&b, ",");
        jb_str(&b, layers[i].name);
        jb_raw(&b, results[i].ok ? ":{\"ok\":true" : ":{\"ok\":false");
        if (results[i].abi > 0) {
            jb_raw(&b, ",\"abi\":");
            jb_int(&b, results[i].abi);
        }
        if (!results[i].ok) {
            jb_raw(&b, ",\"detail\":");
            jb_str(&b, results[i].detail);
        }
        jb_raw(&b, "}");
    }
    jb_raw(&b, "}}");
    if (jb_write_line(&b, STDOUT_FILENO) == -1)
        die(KRX_EXIT_INTERNAL, "internal", "writing the probe report: %s",
            b.overflow ? "report too long" : strerror(errno));
    return 0;
}
