#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int vfail(struct krx_err *err, int saved_errno, const char *fmt, va_list ap) {
    int n = vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    if (saved_errno != 0 && n >= 0 && (size_t)n < sizeof err->detail) {
        snprintf(err->detail + n, sizeof err->detail - (size_t)n, ": %s", strerror(saved_errno));
    }
    return -1;
}

int krx_fail_errno(struct krx_err *err, const char *fmt, ...) {
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    vfail(err, saved, fmt, ap);
    va_end(ap);
    errno = saved;
    return -1;
}

int krx_fail(struct krx_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(err, 0, fmt, ap);
    va_end(ap);
    return -1;
}

static int die_line_fd = STDERR_FILENO;
static bool die_with_code = false;
static int die_status_fd = -1;

void die_report_to(int line_fd, bool with_code, int status_fd) {
    die_line_fd = line_fd;
    die_with_code = with_code;
    die_status_fd = status_fd;
}

_Noreturn void die(int code, const char *error, const char *fmt, ...) {
    char detail[KRX_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);

    char storage[2 * KRX_DETAIL_MAX];
    struct jbuf b;
    if (die_status_fd >= 0) {
        jb_init(&b, storage, sizeof storage);
        jb_raw(&b, "{\"event\":\"error\",\"error\":");
        jb_str(&b, error);
        jb_raw(&b, ",\"code\":");
        jb_int(&b, code);
        jb_raw(&b, ",\"detail\":");
        jb_str(&b, detail);
        jb_raw(&b, "}");
        (void)jb_write_line(&b, die_status_fd);
    }
    jb_init(&b, storage, sizeof storage);
    jb_raw(&b, "{\"error\":");
    jb_str(&b, error);
    if (die_with_code) {
        jb_raw(&b, ",\"code\":");
        jb_int(&b, code);
    }
    jb_raw(&b, ",\"detail\":");
    jb_str(&b, detail);
    jb_raw(&b, "}");
    (void)jb_write_line(&b, die_line_fd);
    _exit(code);
}

int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n == -1 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int read_small_file(const char *path, char *buf, size_t cap, struct krx_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) return krx_fail_errno(err, "open(%s, O_RDONLY)", path);
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1) {
            krx_fail_errno(err, "read(%s)", path);
            close(fd);
            return -1;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    return 0;
}

int write_small_file(const char *path, const char *text, struct krx_err *err) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd == -1) return krx_fail_errno(err, "open(%s, O_WRONLY)", path);
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    if (n == -1 || (size_t)n != len) {
        /* Show the text without its trailing newline: it is what the kernel was asked to accept. */
        int shown = (int)(len > 0 && text[len - 1] == '\n' ? len - 1 : len);
        if (n == -1) krx_fail_errno(err, "write(%s, \"%.*s\")", path, shown, text);
        else krx_fail(err, "write(%s, \"%.*s\"): short write", path, shown, text);
        close(fd);
        return -1;
    }
    if (close(fd) == -1) return krx_fail_errno(err, "close(%s)", path);
    return 0;
}

void jb_init(struct jbuf *b, char *storage, size_t cap) {
    b->data = storage;
    b->cap = cap;
    b->len = 0;
    b->overflow = false;
    if (cap > 0) storage[0] = '\0';
}

static void jb_putc(struct jbuf *b, char c) {
    /* Keep one byte for the terminating NUL. */
    if (b->overflow || b->len + 1 >= b->cap) {
        b->overflow = true;
        return;
    }
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void jb_raw(struct jbuf *b, const char *s) {
    for (; *s != '\0'; s++) jb_putc(b, *s);
}

/*
 * Quoted and escaped. Bytes >= 0x80 become '?': details are built from strerror() and paths, and a
 * path need not be valid UTF-8, while the output must always be valid JSON.
 */
void jb_str(struct jbuf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    jb_putc(b, '"');
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            jb_putc(b, '\\');
            jb_putc(b, (char)c);
        } else if (c == '\n') {
            jb_raw(b, "\\n");
        } else if (c < 0x20 || c == 0x7f) {
            jb_raw(b, "\\u00");
            jb_putc(b, hex[c >> 4]);
            jb_putc(b, hex[c & 0xf]);
        } else if (c >= 0x80) {
            jb_putc(b, '?');
        } else {
            jb_putc(b, (char)c);
        }
    }
    jb_putc(b, '"');
}

void jb_int(struct jbuf *b, long long v) {
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%lld", v);
    jb_raw(b, tmp);
}

int jb_write_line(struct jbuf *b, int fd) {
    jb_putc(b, '\n');
    if (b->overflow) return -1;
    return write_all(fd, b->data, b->len);
}
