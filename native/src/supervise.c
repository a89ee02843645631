#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "chan.h"
#include "exit_codes.h"
#include "json.h"
#include "netrelay.h"
#include "pump.h"
#include "spec.h"
#include "util.h"

/* An error line is a few hundred bytes; anything past this is not from the helper's own code. */
#define ERRBUF_MAX 2048
/* Without a pid namespace, how long output pipes may stay silent after init is reaped. */
#define DRAIN_IDLE_MS 1000

struct state {
    const struct supervise_args *a;
    int chan;    /* -1 once at EOF */
    int errpipe; /* -1 once at EOF */
    char errbuf[ERRBUF_MAX + 1];
    size_t errlen;
    bool ready;        /* CHAN_READY arrived */
    bool proc_private; /* from CHAN_READY */
    bool started;      /* the started line is written */
    pid_t workload;    /* CHAN_WORKLOAD: the program's pid as init sees it, or 0 */
    bool have_exit;    /* CHAN_EXIT arrived */
    int exit_status;   /* the program's wait status, from CHAN_EXIT */
    bool timed_out;
    bool terminated; /* the helper was told to stop */
    bool reaped;
    int init_status;
};

static void kill_sandbox(struct state *st) {
    /* Once reaped, init's pid (and the workload's group) may belong to someone else. */
    if (st->reaped) return;
    /* Killing init ends its whole pid namespace; without one, its process group is all we know. */
    (void)kill(st->a->init_pid, SIGKILL);
    if (!spec_has_layer(st->a->spec, KRX_LAYER_PID) && st->workload > 0)
        (void)kill(-st->workload, SIGKILL);
}

/* Fatal plumbing failure: take the sandbox down first, then report. */
static _Noreturn void fail_internal(struct state *st, const char *what) {
    int saved = errno;
    kill_sandbox(st);
    die(KRX_EXIT_INTERNAL, "internal", "%s: %s", what, strerror(saved));
}

static void read_channel(struct state *st) {
    while (st->chan >= 0) {
        struct chan_msg msg;
        int fd;
        struct krx_err err;
        int rc = chan_recv(st->chan, &msg, &fd, MSG_DONTWAIT, &err);
        if (rc == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (rc <= 0) {
            /* EOF, or the sandbox's init broke protocol: it is gone or untrustworthy. */
            if (rc == -1) kill_sandbox(st);
            close(st->chan);
            st->chan = -1;
            return;
        }
        switch (msg.kind) {
        case CHAN_READY:
            st->ready = true;
            st->proc_private = msg.value == 1;
            if (fd >= 0 && st->a->spec->network.enabled) {
                netrelay_start(fd, st->a->spec->network.proxy_socket);
                fd = -1;
            }
            break;
        case CHAN_WORKLOAD: st->workload = (pid_t)msg.value; break;
        case CHAN_EXIT:
            st->have_exit = true;
            st->exit_status = msg.value;
            break;
        default: break;
        }
        if (fd >= 0) close(fd);
    }
}

static void read_errpipe(struct state *st) {
    while (st->errpipe >= 0) {
        char tmp[512];
        ssize_t n = read(st->errpipe, tmp, sizeof tmp);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            close(st->errpipe);
            st->errpipe = -1;
            return;
        }
        size_t room = ERRBUF_MAX - st->errlen;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(st->errbuf + st->errlen, tmp, take);
        st->errlen += take;
    }
}

static void write_status(int fd, struct jbuf *b) {
    /* A launcher that stopped listening must not stop the helper from ending the sandbox. */
    (void)jb_write_line(b, fd);
}

/* The error pipe closes on the program's execve (O_CLOEXEC) with nothing written: it started. */
static void maybe_started(struct state *st) {
    if (st->started || !st->ready || st->errpipe >= 0 || st->errlen > 0) return;
    /* Once the sandbox is being killed, the pipe also closes on deaths before execve. */
    if (st->timed_out || st->terminated) return;
    st->started = true;
    char storage[128];
    struct jbuf b;
    jb_init(&b, storage, sizeof storage);
    jb_raw(&b, "{\"event\":\"started\",\"pid\":");
    jb_int(&b, st->a->init_pid);
    jb_raw(&b, st->proc_private ? ",\"proc\":\"private\"}" : ",\"proc\":\"shared\"}");
    write_status(st->a->status_fd, &b);
}

static void read_signals(struct state *st, int sfd) {
    struct signalfd_siginfo si;
    for (;;) {
        ssize_t n = read(sfd, &si, sizeof si);
        if (n != (ssize_t)sizeof si) return;
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGHUP) {
            st->terminated = true;
            kill_sandbox(st);
        }
    }
}

static int ms_until(const struct timespec *deadline) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
                   (deadline->tv_nsec - now.tv_nsec) / 1000000;
    if (ms < 0) return 0;
    /* Round up so the deadline has passed when poll() wakes. */
    ms += 1;
    return ms > 60000 ? 60000 : (int)ms;
}

static bool past(const struct timespec *deadline) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

static void reap(struct state *st) {
    int status;
    pid_t p;
    do p = waitpid(st->a->init_pid, &status, WNOHANG);
    while (p == -1 && errno == EINTR);
    if (p == st->a->init_pid) {
        st->reaped = true;
        st->init_status = status;
    } else if (p == -1) {
        fail_internal(st, "waitpid(sandbox init)");
    }
}

static void remove_cgroup(const char *path) {
    struct krx_err err;
    /* The last tasks can take a moment to leave after their pid namespace is reaped. */
    for (int i = 0; i < 50; i++) {
        if (cgroup_remove(path, &err) == 0 || errno != EBUSY) return;
        usleep(10000);
    }
}

/* The sandbox reported a failure before its program ran: report it as the helper's own. */
static _Noreturn void report_sandbox_error(struct state *st) {
    struct krx_err err;
    st->errbuf[st->errlen] = '\0';
    char *nl = memchr(st->errbuf, '\n', st->errlen);
    size_t len = nl != NULL ? (size_t)(nl - st->errbuf) : st->errlen;
    struct json *line = json_parse(st->errbuf, len, &err);
    const struct json *error = json_get(line, "error");
    const struct json *code = json_get(line, "code");
    const struct json *detail = json_get(line, "detail");
    if (st->a->cgroup_path != NULL) remove_cgroup(st->a->cgroup_path);
    if (error == NULL || error->type != JSON_STRING || code == NULL || code->type != JSON_INT ||
        code->u.i < KRX_EXIT_USAGE || code->u.i > KRX_EXIT_INTERNAL || detail == NULL ||
        detail->type != JSON_STRING)
        die(KRX_EXIT_INTERNAL, "internal", "unreadable error report from the sandbox: %.120s",
            st->errbuf);
    die((int)code->u.i, error->u.str.s, "%s", detail->u.str.s);
}

void supervise_report_pending(int errpipe, const char *cgroup_path) {
    static struct state st;
    static struct supervise_args a;
    memset(&st, 0, sizeof st);
    memset(&a, 0, sizeof a);
    a.cgroup_path = cgroup_path;
    st.a = &a;
    st.chan = -1;
    st.errpipe = errpipe;
    int fl = fcntl(errpipe, F_GETFL);
    if (fl == -1 || fcntl(errpipe, F_SETFL, fl | O_NONBLOCK) == -1) return;
    read_errpipe(&st);
    if (st.errlen > 0) report_sandbox_error(&st);
}

static const char *limit_hit(const struct state *st, int sig, long long cpu_ms) {
    const struct krx_spec *spec = st->a->spec;
    if (st->a->cgroup_path != NULL) {
        long long ooms = 0;
        struct krx_err err;
        if (cgroup_oom_kills(st->a->cgroup_path, &ooms, &err) == 0 && ooms > 0) return "memory";
    }
    if (sig == SIGXCPU) return "cpu";
    if (sig == SIGXFSZ) return "file_size";
    /* The hard CPU limit is SIGKILL; no other SIGKILL comes with that much CPU time used. */
    if (sig == SIGKILL && spec_has_layer(spec, KRX_LAYER_RLIMITS) &&
        cpu_ms >= (long long)spec->limits.cpu_s * 1000)
        return "cpu";
    return NULL;
}

static int finish(struct state *st) {
    if (st->errlen > 0) report_sandbox_error(st);
    if (!st->started && !st->timed_out && !st->terminated) {
        int s = st->init_status;
        if (st->a->cgroup_path != NULL) remove_cgroup(st->a->cgroup_path);
        die(KRX_EXIT_INTERNAL, "internal",
            "the sandbox's init (pid %d) ended before its program started: %s %d",
            (int)st->a->init_pid, WIFSIGNALED(s) ? "signal" : "exit status",
            WIFSIGNALED(s) ? WTERMSIG(s) : WEXITSTATUS(s));
    }

    int status = st->have_exit ? st->exit_status : st->init_status;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    int code = sig ? 128 + sig : WEXITSTATUS(status);
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    (void)getrusage(RUSAGE_CHILDREN, &ru);
    long long cpu_ms = ((long long)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                       ((long long)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
    const char *limit = st->timed_out ? NULL : limit_hit(st, sig, cpu_ms);
    if (st->timed_out) code = KRX_EXIT_TIMEOUT;
    if (st->a->cgroup_path != NULL) remove_cgroup(st->a->cgroup_path);

    char storage[256];
    struct jbuf b;
    jb_init(&b, storage, sizeof storage);
    jb_raw(&b, "{\"event\":\"exit\",\"exit_code\":");
    jb_int(&b, code);
    jb_raw(&b, ",\"signal\":");
    if (sig) jb_int(&b, sig);
    else jb_raw(&b, "null");
    jb_raw(&b, st->timed_out ? ",\"timed_out\":true" : ",\"timed_out\":false");
    jb_raw(&b, ",\"limit\":");
    if (limit != NULL) jb_str(&b, limit);
    else jb_raw(&b, "null");
    jb_raw(&b, ",\"cpu_ms\":");
    jb_int(&b, cpu_ms);
    jb_raw(&b, ",\"max_rss_kb\":");
    jb_int(&b, ru.ru_maxrss);
    jb_raw(&b, "}");
    write_status(st->a->status_fd, &b);
    return code;
}

static bool pumps_done(const struct pump *pumps) {
    return pump_done(&pumps[0]) && pump_done(&pumps[1]);
}

/*
 * poll()'s timeout. Before init is reaped: the wall clock. After: the output drains with no limit
 * of its own (the launcher decides how long it reads), except that without a pid namespace silent
 * pipes are given DRAIN_IDLE_MS, and after a termination request nothing is waited for at all.
 */
static int poll_timeout(const struct state *st, const struct pump *pumps) {
    if (!st->reaped) return st->timed_out ? -1 : ms_until(&st->a->deadline);
    if (st->terminated) return 0;
    if (!spec_has_layer(st->a->spec, KRX_LAYER_PID) &&
        (pump_wants_input(&pumps[0]) || pump_wants_input(&pumps[1])))
        return DRAIN_IDLE_MS;
    return -1;
}

/* poll() returned nothing within poll_timeout() after the reap. */
static void drain_idle(const struct state *st, struct pump *pumps) {
    for (int i = 0; i < 2; i++) {
        if (st->terminated) pump_abandon(&pumps[i]);
        else pump_stop_input(&pumps[i]);
    }
}

int supervise(const struct supervise_args *a) {
    struct state st;
    memset(&st, 0, sizeof st);
    st.a = a;
    st.chan = a->chan;
    st.errpipe = a->errpipe;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd == -1) fail_internal(&st, "signalfd(SIGCHLD|SIGTERM|SIGINT|SIGHUP)");
    int fl = fcntl(st.errpipe, F_GETFL);
    if (fl == -1 || fcntl(st.errpipe, F_SETFL, fl | O_NONBLOCK) == -1)
        fail_internal(&st, "fcntl(error pipe, F_SETFL, O_NONBLOCK)");
    static struct pump pumps[2];
    struct krx_err err;
    if (pump_init(&pumps[0], a->out, STDOUT_FILENO, &err) == -1 ||
        pump_init(&pumps[1], a->err, STDERR_FILENO, &err) == -1) {
        kill_sandbox(&st);
        die(KRX_EXIT_INTERNAL, "internal", "%s", err.detail);
    }

    /* Fixed slots first: signals, error pipe, channel, then each pump's pipe and destination. */
    enum { SIG_AT, ERRPIPE_AT, CHAN_AT, PUMPS_AT, RELAY_AT = PUMPS_AT + 2 * PUMP_POLLFDS };
    struct pollfd pfds[RELAY_AT + NETRELAY_MAX_POLLFDS];
    while (!st.reaped || !pumps_done(pumps)) {
        pfds[SIG_AT] = (struct pollfd){.fd = sfd, .events = POLLIN};
        pfds[ERRPIPE_AT] = (struct pollfd){.fd = st.errpipe, .events = POLLIN};
        pfds[CHAN_AT] = (struct pollfd){.fd = st.chan, .events = POLLIN};
        for (int i = 0; i < 2; i++) pump_pollfds(&pumps[i], pfds + PUMPS_AT + i * PUMP_POLLFDS);
        size_t n = RELAY_AT + netrelay_pollfds(pfds + RELAY_AT);
        int rc = poll(pfds, n, poll_timeout(&st, pumps));
        if (rc == -1) {
            if (errno == EINTR) continue; /* revents are not set: look again */
            fail_internal(&st, "poll()");
        }
        if (rc == 0 && st.reaped) drain_idle(&st, pumps);

        if (!st.reaped && !st.timed_out && past(&a->deadline)) {
            st.timed_out = true;
            kill_sandbox(&st);
        }
        if (pfds[SIG_AT].revents) read_signals(&st, sfd);
        if (pfds[CHAN_AT].revents) read_channel(&st);
        if (pfds[ERRPIPE_AT].revents) read_errpipe(&st);
        maybe_started(&st);
        for (int i = 0; i < 2; i++) pump_dispatch(&pumps[i], pfds + PUMPS_AT + i * PUMP_POLLFDS);
        netrelay_dispatch(pfds + RELAY_AT, n - RELAY_AT);
        if (!st.reaped) {
            reap(&st);
            /* Nothing inside is left to connect through the relay. */
            if (st.reaped) netrelay_stop();
        }
    }
    netrelay_stop();
    /* Everything init sent before it exited is still queued; so is a last error line. */
    read_channel(&st);
    read_errpipe(&st);
    maybe_started(&st);
    close(sfd);
    return finish(&st);
}
