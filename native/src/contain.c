/*
 * contain(): the order of the sandbox's steps, which is its security argument. Three processes:
 *
 *   outer (the helper as started, in the caller's namespaces)
 *     └─ init     clone()d into the new namespaces; pid 1 of the new pid namespace
 *          └─ workload   drops what is left of privilege, then execve()s the program
 *
 * The outer process keeps what only the outside may do — open the host paths with the caller's
 * credentials, write the id maps, join the cgroup, reach the egress proxy's socket, copy the
 * program's output to the caller, enforce the wall clock — and never runs sandboxed code. init
 * builds the namespaces' contents with the capabilities its user namespace gives it, then stays as
 * the reaper so that its death takes the whole pid namespace with it. The workload gives up every
 * capability and narrows itself (no_new_privs, Landlock, seccomp) last, so each of those steps only
 * has to allow what comes after it.
 *
 * Failures inside the sandbox travel as one JSON line over an O_CLOEXEC error pipe; the pipe
 * closing with nothing written is how the outer process learns the program was exec'd.
 */
#include "contain.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "chan.h"
#include "exit_codes.h"
#include "landlock.h"
#include "mounts.h"
#include "namespaces.h"
#include "netrelay.h"
#include "privs.h"
#include "rlimits.h"
#include "seccomp.h"
#include "spec.h"
#include "supervise.h"
#include "util.h"

/* What the three processes share: the spec and the fds between them. */
struct run {
    const struct krx_spec *spec;
    int status_fd;
    int chan[2];    /* [0] the outer end, [1] init's end */
    int errpipe[2]; /* [0] read by the outer process, [1] written by init and the workload */
    int out[2];     /* the program's stdout: [0] drained by the outer process, [1] its fd 1 */
    int err[2];     /* the program's stderr: the same, [1] its fd 2 */
    pid_t init_pid; /* as the outer process sees it */
    char cgroup_path[PATH_MAX];
    bool in_cgroup;
};

/* In init and the workload: report over the error pipe (die_report_to) and exit. */
static _Noreturn void inner_fail(int code, const char *error, const struct krx_err *err) {
    die(code, error, "%s", err->detail);
}

static int clone_flags(const struct krx_spec *spec) {
    int flags = 0;
    if (spec_has_layer(spec, KRX_LAYER_USER)) flags |= CLONE_NEWUSER;
    if (spec_has_layer(spec, KRX_LAYER_MOUNT)) flags |= CLONE_NEWNS;
    if (spec_has_layer(spec, KRX_LAYER_PID)) flags |= CLONE_NEWPID;
    if (spec_has_layer(spec, KRX_LAYER_NET)) flags |= CLONE_NEWNET;
    if (spec_has_layer(spec, KRX_LAYER_UTS)) flags |= CLONE_NEWUTS;
    if (spec_has_layer(spec, KRX_LAYER_IPC)) flags |= CLONE_NEWIPC;
    return flags;
}

static int exit_code_of(int status) {
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* ---------------------------------------- workload ---------------------------------------- */

static int reset_signals(struct krx_err *err) {
    sigset_t none;
    sigemptyset(&none);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) (void)signal(sig, SIG_DFL);
    if (sigprocmask(SIG_SETMASK, &none, NULL) == -1)
        return krx_fail_errno(err, "sigprocmask(SIG_SETMASK, {})");
    return 0;
}

/* Without a mount namespace there is no /workspace: the same place is the host's workspace. */
static int enter_cwd(const struct krx_spec *spec, struct krx_err *err) {
    char path[PATH_MAX];
    const char *cwd = spec->cwd;
    if (!spec_has_layer(spec, KRX_LAYER_MOUNT)) {
        int n = snprintf(path, sizeof path, "%s%s", spec->mounts.workspace,
                         spec->cwd + strlen(KRX_SANDBOX_WORKSPACE));
        if (n < 0 || (size_t)n >= sizeof path) return krx_fail(err, "cwd: path too long");
        cwd = path;
    }
    if (chdir(cwd) == -1) return krx_fail_errno(err, "chdir(\"%s\")", cwd);
    return 0;
}

static int die_with_init(struct krx_err *err) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1)
        return krx_fail_errno(err, "prctl(PR_SET_PDEATHSIG, SIGKILL)");
    return 0;
}

static _Noreturn void workload(const struct run *r) {
    const struct krx_spec *spec = r->spec;
    struct krx_err err;
    /* Only a root caller without a user namespace still has ids to give up. */
    bool change_ids = !spec_has_layer(spec, KRX_LAYER_USER) && geteuid() == 0;

    /* a. The program starts with default signal dispositions and nothing blocked (init blocks
     *    the signals it waits for, and a blocked mask survives execve). */
    if (reset_signals(&err) == -1) inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* b. Its own session: no controlling terminal shared with the caller (TIOCSTI), and one
     *    process group to kill when there is no pid namespace. */
    if (privs_new_session(&err) == -1) inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* c. The working directory, resolved in the sandbox's own tree. */
    if (enter_cwd(spec, &err) == -1) inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* d. Every capability gone, bounding set included: nothing after this can mount, unshare
     *    or change ids, and the Landlock and seccomp steps apply to an unprivileged process. */
    if (privs_drop_all(change_ids, spec->host_uid, spec->host_gid, &err) == -1)
        inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* e. Without a pid namespace init's death would not end this process; the parent-death
     *    signal does (set after the id change above, which clears it). */
    if (!spec_has_layer(spec, KRX_LAYER_PID) && die_with_init(&err) == -1)
        inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* f. no_new_privs: execve() can never grant privilege again; Landlock and seccomp need it. */
    if (spec_has_layer(spec, KRX_LAYER_NO_NEW_PRIVS) && privs_no_new_privs(&err) == -1)
        inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* g. Landlock: the file system and TCP rules, enforced on the program and its children. */
    if (landlock_apply(spec, &err) == -1) inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* h. seccomp last among the restrictions: the filter need not allow the setup above. */
    if (seccomp_apply(spec, &err) == -1) inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* i. Nothing inherited beyond stdin, stdout and stderr (and the error pipe, O_CLOEXEC). */
    if (privs_close_fds(r->errpipe[1], &err) == -1) inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* j. The program, with exactly the spec's environment. */
    execve(spec->argv[0], spec->argv, spec->env);
    krx_fail_errno(&err, "execve(\"%s\")", spec->argv[0]);
    inner_fail(KRX_EXIT_EXEC, "exec", &err);
}

/* ------------------------------------------ init ------------------------------------------ */

/* The outer process hands over the host paths (CHAN_HOST, one fd each), then releases init. */
static int wait_for_go(int chan, struct mnt_host *host, struct krx_err *err) {
    for (;;) {
        struct chan_msg msg;
        int fd;
        int rc = chan_recv(chan, &msg, &fd, 0, err);
        if (rc == -1) return -1;
        if (rc == 1 && msg.kind == CHAN_GO && fd < 0) return 0;
        if (rc == 1 && msg.kind == CHAN_HOST && fd >= 0 && msg.value >= 0 &&
            msg.value < MNT_HOST_MAX && host->fds[msg.value] < 0) {
            host->fds[msg.value] = fd;
            continue;
        }
        if (fd >= 0) close(fd);
        if (rc == 0)
            return krx_fail(err,
                            "the helper's outer process went away before releasing the sandbox");
        return krx_fail(err, "unexpected message '%c' %d from the helper's outer process",
                        msg.kind, msg.value);
    }
}

/* The program's stdout and stderr are pipes the outer process drains, never the caller's own fds:
 * a socket (what a launcher's "pipe" usually is) cannot be reopened through /dev/stdout. */
static int take_output_pipes(const struct run *r, struct krx_err *err) {
    if (dup2(r->out[1], STDOUT_FILENO) == -1)
        return krx_fail_errno(err, "dup2(stdout pipe, %d)", STDOUT_FILENO);
    if (dup2(r->err[1], STDERR_FILENO) == -1)
        return krx_fail_errno(err, "dup2(stderr pipe, %d)", STDERR_FILENO);
    close(r->out[0]);
    close(r->out[1]);
    close(r->err[0]);
    close(r->err[1]);
    return 0;
}

/* pid 1 of the sandbox: reap everything, pass on termination requests, end with the program. */
static _Noreturn void init_loop(const struct run *r, pid_t child) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig == -1) continue;
        if (sig != SIGCHLD) {
            (void)kill(child, sig);
            continue;
        }
        int status;
        pid_t p;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
            if (p != child) continue;
            struct krx_err err;
            (void)chan_send(r->chan[1], CHAN_EXIT, status, -1, &err);
            if (!spec_has_layer(r->spec, KRX_LAYER_PID)) (void)kill(-child, SIGKILL);
            /* As pid 1, exiting kills every process left in the namespace. */
            _exit(exit_code_of(status));
        }
    }
}

static _Noreturn void sandbox_init(const struct run *r) {
    const struct krx_spec *spec = r->spec;
    struct krx_err err;
    struct mnt_host host;
    bool proc_private = false;
    int listener = -1;

    /* i. Report over the error pipe from here on, and let go of the outer process's fds: the
     *    caller's stdout and stderr give way to the pipes the outer process drains. */
    die_report_to(r->errpipe[1], true, -1);
    close(r->status_fd);
    close(r->chan[0]);
    close(r->errpipe[0]);
    if (take_output_pipes(r, &err) == -1) inner_fail(KRX_EXIT_INTERNAL, "internal", &err);
    /* ii. Die with the outer process: nothing in here may outlive its supervisor. */
    if (die_with_init(&err) == -1) inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* iii. Wait until the outer process has opened the host paths for this process, written the
     *      id maps and joined the cgroup: until then this process is unmapped and outside its
     *      limits, so it does nothing. */
    mnt_host_init(&host);
    if (wait_for_go(r->chan[1], &host, &err) == -1) inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* iv. user: take the sandbox's uid/gid; the namespace's capabilities stay for the steps
     *     below (the id change clears the parent-death signal, so set it again). */
    if (spec_has_layer(spec, KRX_LAYER_USER) &&
        (ns_become(spec->uid, spec->gid, &err) == -1 || die_with_init(&err) == -1))
        inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* v. mount: the fresh root (mounts.h lists its steps), while CAP_SYS_ADMIN over this mount
     *    namespace is still held, from the host fds alone; pivot_root leaves no path back to the
     *    host's tree, and the fds are closed before anything else runs. */
    if (spec_has_layer(spec, KRX_LAYER_MOUNT) &&
        mnt_build_root(spec, &host, &proc_private, &err) == -1)
        inner_fail(KRX_EXIT_SETUP, "setup", &err);
    mnt_close_host(&host);
    /* vi. uts: the sandbox's own hostname. */
    if (spec_has_layer(spec, KRX_LAYER_UTS) && ns_set_hostname(spec->hostname, &err) == -1)
        inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* vii. net: only lo; with network granted, the relay's listener is created here, inside,
     *      and handed out — the one way out of this namespace. */
    if (spec_has_layer(spec, KRX_LAYER_NET)) {
        if (ns_lo_up(&err) == -1) inner_fail(KRX_EXIT_SETUP, "setup", &err);
        if (spec->network.enabled &&
            (listener = netrelay_listen(spec->network.relay_port, &err)) == -1)
            inner_fail(KRX_EXIT_SETUP, "setup", &err);
    }
    /* viii. rlimits, inherited by the workload: set while init may still raise nothing itself. */
    if (spec_has_layer(spec, KRX_LAYER_RLIMITS) && rlimits_apply_spec(&spec->limits, &err) == -1)
        inner_fail(KRX_EXIT_SETUP, "setup", &err);
    /* ix. Tell the outer process which /proc the sandbox got, and give it the listener. */
    if (chan_send(r->chan[1], CHAN_READY, proc_private ? 1 : 0, listener, &err) == -1)
        inner_fail(KRX_EXIT_INTERNAL, "internal", &err);
    if (listener >= 0) close(listener);
    /* x. The workload; init itself keeps only the channel and stays as the reaper. */
    pid_t child = fork();
    if (child == -1) {
        krx_fail_errno(&err, "fork() of the workload");
        inner_fail(KRX_EXIT_SETUP, "setup", &err);
    }
    if (child == 0) workload(r);
    close(r->errpipe[1]);
    die_report_to(-1, false, -1);
    (void)chan_send(r->chan[1], CHAN_WORKLOAD, (int)child, -1, &err);
    init_loop(r, child);
}

/* ------------------------------------------ outer ----------------------------------------- */

/* After the clone: take the sandbox down (it runs nothing yet) and report. */
static _Noreturn void outer_fail(struct run *r, int code, const char *error,
                                 const struct krx_err *err) {
    if (r->init_pid > 0) {
        (void)kill(r->init_pid, SIGKILL);
        while (waitpid(r->init_pid, NULL, 0) == -1 && errno == EINTR) {
        }
    }
    supervise_report_pending(r->errpipe[0], r->in_cgroup ? r->cgroup_path : NULL);
    if (r->in_cgroup) {
        struct krx_err ignored;
        (void)cgroup_remove(r->cgroup_path, &ignored);
    }
    die(code, error, "%s", err->detail);
}

static int tie_to_launcher(struct krx_err *err) {
    pid_t launcher = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) == -1)
        return krx_fail_errno(err, "prctl(PR_SET_PDEATHSIG, SIGTERM)");
    if (getppid() != launcher)
        return krx_fail(err, "the launcher exited before the sandbox started");
    return 0;
}

/* Outside, the sandbox is host_uid/host_gid: never root; a non-root caller maps only itself. */
static int check_host_ids(const struct krx_spec *spec, struct krx_err *err) {
    if (spec->host_uid == 0 || spec->host_gid == 0)
        return krx_fail(err, "host_uid/host_gid: the sandbox is never mapped to root");
    if (geteuid() != 0 && (spec->host_uid != geteuid() || spec->host_gid != getegid()))
        return krx_fail(err,
                        "host_uid/host_gid %u:%u: a caller running as %u:%u may map only itself",
                        (unsigned)spec->host_uid, (unsigned)spec->host_gid, (unsigned)geteuid(),
                        (unsigned)getegid());
    return 0;
}

/* A root caller's supplementary groups (gid 0 among them) would pass into the user namespace,
 * where setgroups is denied and nothing could drop them; the outer process needs none. */
static int drop_own_groups(struct krx_err *err) {
    if (geteuid() == 0 && setgroups(0, NULL) == -1)
        return krx_fail_errno(err, "setgroups(0, NULL)");
    return 0;
}

static int block_signals(struct krx_err *err) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
        return krx_fail_errno(err, "sigprocmask(SIG_BLOCK, {SIGCHLD, SIGTERM, SIGINT, SIGHUP})");
    return 0;
}

/*
 * The program reopens its output pipes by path (/dev/stdout is /proc/self/fd/1), which checks the
 * pipe's owner and mode (0600): they belong to the identity it has outside, not to the caller.
 */
static int output_pipe(int fds[2], const struct krx_spec *spec, const char *what,
                       struct krx_err *err) {
    if (pipe2(fds, O_CLOEXEC) == -1)
        return krx_fail_errno(err, "pipe2(O_CLOEXEC) for the program's %s", what);
    if (fchown(fds[0], spec->host_uid, spec->host_gid) == -1)
        return krx_fail_errno(err, "fchown(the program's %s pipe, %u, %u)", what,
                              (unsigned)spec->host_uid, (unsigned)spec->host_gid);
    return 0;
}

static int open_pipes(struct run *r, struct krx_err *err) {
    if (chan_pair(r->chan, err) == -1) return -1;
    if (pipe2(r->errpipe, O_CLOEXEC) == -1)
        return krx_fail_errno(err, "pipe2(O_CLOEXEC) for the error pipe");
    if (output_pipe(r->out, r->spec, "stdout", err) == -1 ||
        output_pipe(r->err, r->spec, "stderr", err) == -1)
        return -1;
    return 0;
}

/* The outer process keeps no copy of the program's stdin; stdout and stderr it writes itself. */
static int let_go_of_stdin(struct krx_err *err) {
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null == -1) return krx_fail_errno(err, "open(\"/dev/null\", O_RDONLY)");
    if (dup2(null, STDIN_FILENO) == -1) {
        krx_fail_errno(err, "dup2(/dev/null, 0)");
        close(null);
        return -1;
    }
    close(null);
    return 0;
}

/* Open the host paths with the caller's credentials and give them to init, one fd a message. */
static int hand_over_host_paths(struct run *r, struct krx_err *err) {
    struct mnt_host host;
    mnt_host_init(&host);
    if (mnt_open_host(r->init_pid, r->spec, &host, err) == -1) return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < MNT_HOST_MAX; i++)
        if (host.fds[i] >= 0) rc = chan_send(r->chan[0], CHAN_HOST, i, host.fds[i], err);
    mnt_close_host(&host);
    return rc;
}

static int join_cgroup(struct run *r, struct krx_err *err) {
    const struct krx_spec *spec = r->spec;
    if (cgroup_enter(spec->cgroup, (int)r->init_pid, spec->limits.memory_bytes, spec->limits.pids,
                     r->cgroup_path, sizeof r->cgroup_path, err) == -1)
        return -1;
    r->in_cgroup = true;
    return 0;
}

int contain(const struct krx_spec *spec, int status_fd) {
    struct run r = {.spec = spec,
                    .status_fd = status_fd,
                    .chan = {-1, -1},
                    .errpipe = {-1, -1},
                    .out = {-1, -1},
                    .err = {-1, -1}};
    struct krx_err err;
    struct timespec deadline;

    /* 1. The wall clock starts now: setup time counts against the call. */
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(spec->limits.wall_ms / 1000);
    deadline.tv_nsec += (long)(spec->limits.wall_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    /* 2. If the launcher dies, the helper hears of it (SIGTERM) and takes the sandbox down. */
    if (tie_to_launcher(&err) == -1) die(KRX_EXIT_INTERNAL, "internal", "%s", err.detail);
    /* 3. Whom the sandbox may be outside: checked here, where the caller's ids are known. */
    if (check_host_ids(spec, &err) == -1) die(KRX_EXIT_SPEC, "spec", "%s", err.detail);
    /* 4. No supplementary groups to carry into the user namespace. */
    if (drop_own_groups(&err) == -1) die(KRX_EXIT_SETUP, "setup", "%s", err.detail);
    /* 5. Signals the supervisor reads from a signalfd are blocked before any child exists, so
     *    none is lost; init inherits the mask and waits on the same signals. */
    if (block_signals(&err) == -1) die(KRX_EXIT_INTERNAL, "internal", "%s", err.detail);
    /* 6. The channel to init, the error pipe and the program's stdout and stderr pipes, all
     *    close-on-exec. */
    if (open_pipes(&r, &err) == -1) die(KRX_EXIT_INTERNAL, "internal", "%s", err.detail);
    /* 7. clone() into every namespace the spec lists at once: init starts life inside them. */
    r.init_pid = ns_clone(clone_flags(spec), &err);
    if (r.init_pid == -1) die(KRX_EXIT_SETUP, "setup", "%s", err.detail);
    if (r.init_pid == 0) sandbox_init(&r);
    close(r.chan[1]);
    close(r.errpipe[1]);
    close(r.out[1]);
    close(r.err[1]);
    (void)signal(SIGPIPE, SIG_IGN); /* the relay, the output and fd 4 report EPIPE instead */
    if (let_go_of_stdin(&err) == -1) outer_fail(&r, KRX_EXIT_INTERNAL, "internal", &err);
    /* 8. mount: the host paths, opened here with the caller's credentials (init is about to
     *    become the sandbox's uid, which may not search the directories above them). */
    if (spec_has_layer(spec, KRX_LAYER_MOUNT) && hand_over_host_paths(&r, &err) == -1)
        outer_fail(&r, KRX_EXIT_SETUP, "setup", &err);
    /* 9. user: the maps, written from outside where the right to map host ids lives. */
    if (spec_has_layer(spec, KRX_LAYER_USER) &&
        ns_write_maps(r.init_pid, spec->uid, spec->host_uid, spec->gid, spec->host_gid, &err) == -1)
        outer_fail(&r, KRX_EXIT_SETUP, "setup", &err);
    /* 10. cgroup: init joins before it runs a single step, so all it forks is counted. */
    if (spec_has_layer(spec, KRX_LAYER_CGROUP) && join_cgroup(&r, &err) == -1)
        outer_fail(&r, KRX_EXIT_SETUP, "setup", &err);
    /* 11. Release init. */
    if (chan_send(r.chan[0], CHAN_GO, 0, -1, &err) == -1)
        outer_fail(&r, KRX_EXIT_INTERNAL, "internal", &err);
    /* 12. Supervise: status lines, the program's output, the relay, the wall clock, the end. */
    struct supervise_args args = {
        .spec = spec,
        .init_pid = r.init_pid,
        .chan = r.chan[0],
        .errpipe = r.errpipe[0],
        .out = r.out[0],
        .err = r.err[0],
        .status_fd = status_fd,
        .cgroup_path = r.in_cgroup ? r.cgroup_path : NULL,
        .deadline = deadline,
    };
    return supervise(&args);
}
