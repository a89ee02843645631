/*
 * Shared plumbing: step failures as text, the single fatal path die(), small file helpers and a
 * bounded JSON writer. Every sandbox step returns 0 or -1; on -1 it has filled a krx_err naming the
 * exact syscall, its arguments and errno, e.g. "unshare(CLONE_NEWNS): Operation not permitted".
 */
#ifndef KRX_UTIL_H
#define KRX_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define KRX_DETAIL_MAX 256

struct krx_err {
    char detail[KRX_DETAIL_MAX];
};

/* Record "<formatted step>: <strerror(errno)>" and return -1. */
int krx_fail_errno(struct krx_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Record "<formatted text>" (a failed check rather than a failed syscall) and return -1. */
int krx_fail(struct krx_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The one fatal path: one JSON line {"error":error,"detail":…} on stderr, then _exit(code). */
_Noreturn void die(int code, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Where die() reports in run mode. The helper's outer process also writes the status line
 * {"event":"error","error":…,"code":…,"detail":…} on status_fd (-1: none). The sandbox's own
 * processes cannot reach fd 4 or a trustworthy stderr, so they send the line, with its "code", to
 * line_fd (the error pipe) and the outer process reports it.
 */
void die_report_to(int line_fd, bool with_code, int status_fd);

int write_all(int fd, const void *buf, size_t len);
/* Read a small file into buf (NUL-terminated, truncated to cap - 1 bytes). */
int read_small_file(const char *path, char *buf, size_t cap, struct krx_err *err);
/* open(O_WRONLY) + one write() of text, as /proc and cgroupfs control files expect. */
int write_small_file(const char *path, const char *text, struct krx_err *err);

/* A JSON writer into caller-owned storage; overflow is sticky and checked once at the end. */
struct jbuf {
    char *data;
    size_t cap;
    size_t len;
    bool overflow;
};

void jb_init(struct jbuf *b, char *storage, size_t cap);
void jb_raw(struct jbuf *b, const char *s);
void jb_str(struct jbuf *b, const char *s);
void jb_int(struct jbuf *b, long long v);
/* Append "\n" and write the whole line with one write(); -1 on overflow or write failure. */
int jb_write_line(struct jbuf *b, int fd);

#endif
