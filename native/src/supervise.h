/*
 * The helper's outer process once the sandbox is released: one poll() loop over a signalfd, the
 * error pipe, the channel from the sandbox's init and the egress relay, with the wall-clock
 * deadline as poll's timeout. It writes the status lines on fd 4 (docs/sandbox.md):
 *   {"event":"started","pid":N,"proc":"private"|"shared"}   the program passed every layer
 *   {"event":"exit","exit_code":N,"signal":S|null,"timed_out":B,"limit":L|null,"cpu_ms":N,
 *    "max_rss_kb":N}
 * or, when the sandbox reported a failure before its program ran, the error line (via die()).
 */
#ifndef KRX_SUPERVISE_H
#define KRX_SUPERVISE_H

#include <sys/types.h>
#include <time.h>

struct krx_spec;

struct supervise_args {
    const struct krx_spec *spec;
    pid_t init_pid;           /* the sandbox's init as the outer process sees it */
    int chan;                 /* the outer end of the channel (chan.h) */
    int errpipe;              /* read end of the error pipe (O_CLOEXEC on both ends) */
    int out;                  /* read end of the program's stdout pipe, copied to fd 1 */
    int err;                  /* read end of the program's stderr pipe, copied to fd 2 */
    int status_fd;            /* fd 4 */
    const char *cgroup_path;  /* the call's cgroup, or NULL */
    struct timespec deadline; /* CLOCK_MONOTONIC: when the wall-clock limit passes */
};

/*
 * Run until the sandbox's init has exited and been reaped and the program's output is drained
 * (pump.h); returns the helper's exit code (the program's status, 128+N for a signal, 124 on the
 * wall-clock limit). The exit line is written only after the last byte of output, so a launcher
 * that sees it has all of it. With a pid namespace the output pipes reach EOF the moment init is
 * reaped (its death ends every process in the namespace); without one, a process that escaped the
 * program's group may keep them open, and they are cut off after a second of silence.
 * SIGTERM, SIGINT and SIGHUP (blocked by the caller before the sandbox was cloned) kill the
 * sandbox and still end with the exit line; once the sandbox is gone they also stop the drain at
 * the first moment the launcher is not taking output. Does not return when the sandbox reported a
 * setup or exec failure: die() reports it.
 */
int supervise(const struct supervise_args *a);

/*
 * For a failure in the outer process after the clone, once init is reaped: if the sandbox had
 * already reported its own failure on the error pipe (the likelier cause), die() with that report;
 * otherwise return and let the caller report its own.
 */
void supervise_report_pending(int errpipe, const char *cgroup_path);

#endif
