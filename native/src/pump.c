#include "pump.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int pump_init(struct pump *p, int from, int to, struct krx_err *err) {
    p->from = from;
    p->to = to;
    p->dead = false;
    p->off = p->len = 0;
    int fl = fcntl(from, F_GETFL);
    if (fl == -1 || fcntl(from, F_SETFL, fl | O_NONBLOCK) == -1)
        return krx_fail_errno(err, "fcntl(output pipe, F_SETFL, O_NONBLOCK)");
    struct stat st;
    if (fstat(to, &st) == -1) return krx_fail_errno(err, "fstat(%d)", to);
    p->kind = S_ISSOCK(st.st_mode)  ? PUMP_DEST_SOCKET
              : S_ISFIFO(st.st_mode) ? PUMP_DEST_PIPE
                                     : PUMP_DEST_OTHER;
    return 0;
}

static bool has_pending(const struct pump *p) {
    return !p->dead && p->off < p->len;
}

bool pump_wants_input(const struct pump *p) {
    return p->from >= 0 && (p->dead || p->len < PUMP_BUF);
}

bool pump_done(const struct pump *p) {
    return p->from < 0 && !has_pending(p);
}

void pump_pollfds(const struct pump *p, struct pollfd *pfds) {
    pfds[0] = (struct pollfd){.fd = pump_wants_input(p) ? p->from : -1, .events = POLLIN};
    pfds[1] = (struct pollfd){.fd = has_pending(p) ? p->to : -1, .events = POLLOUT};
}

void pump_stop_input(struct pump *p) {
    if (p->from >= 0) close(p->from);
    p->from = -1;
}

void pump_abandon(struct pump *p) {
    pump_stop_input(p);
    p->off = p->len = 0;
}

static void read_some(struct pump *p) {
    static char sink[PUMP_BUF];
    if (!p->dead && p->off > 0) {
        memmove(p->buf, p->buf + p->off, p->len - p->off);
        p->len -= p->off;
        p->off = 0;
    }
    char *dst = p->dead ? sink : p->buf + p->len;
    size_t room = p->dead ? sizeof sink : PUMP_BUF - p->len;
    if (room == 0) return;
    ssize_t n;
    do n = read(p->from, dst, room);
    while (n == -1 && errno == EINTR);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
        pump_stop_input(p); /* EOF: every write end is closed */
        return;
    }
    if (!p->dead) p->len += (size_t)n;
}

/* One write that cannot block for long: poll() just reported room. */
static void write_some(struct pump *p) {
    size_t want = p->len - p->off;
    ssize_t n;
    do {
        switch (p->kind) {
        case PUMP_DEST_SOCKET:
            n = send(p->to, p->buf + p->off, want, MSG_DONTWAIT | MSG_NOSIGNAL);
            break;
        case PUMP_DEST_PIPE:
            /* A write of at most PIPE_BUF bytes fits in the room poll() saw. */
            n = write(p->to, p->buf + p->off, want < PIPE_BUF ? want : PIPE_BUF);
            break;
        default: n = write(p->to, p->buf + p->off, want); break;
        }
    } while (n == -1 && errno == EINTR);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
        /* EPIPE and the like: nobody will read this; drop it and whatever follows. */
        p->dead = true;
        p->off = p->len = 0;
        return;
    }
    p->off += (size_t)n;
    if (p->off == p->len) p->off = p->len = 0;
}

void pump_dispatch(struct pump *p, const struct pollfd *pfds) {
    if (pfds[1].fd >= 0 && pfds[1].revents != 0) write_some(p);
    if (pfds[0].fd >= 0 && pfds[0].revents != 0 && p->from >= 0) read_some(p);
}
