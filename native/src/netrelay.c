#include "netrelay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* One direction of a connection: bytes read from fd[from] waiting to be written to fd[1 - from]. */
struct flow {
    char buf[NETRELAY_BUF];
    size_t off;
    size_t len;
    bool eof;  /* the reading side sent FIN */
    bool shut; /* and that FIN was passed on with shutdown(SHUT_WR) */
};

struct conn {
    bool used;
    int fd[2];         /* [0] the sandbox's connection, [1] the proxy's */
    struct flow fl[2]; /* fl[i] carries fd[i] → fd[1 - i] */
    int slot[2];       /* index of fd[i] in the last pollfd array, or -1 */
};

static struct relay {
    int listener;
    int listener_slot;
    bool accept_paused; /* after an accept() failure other than "nothing to accept" */
    const char *proxy_socket;
    size_t used;
    struct conn conns[NETRELAY_MAX_CONNS];
} relay = {.listener = -1, .listener_slot = -1};

int netrelay_listen(unsigned port, struct krx_err *err) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) return krx_fail_errno(err, "socket(AF_INET, SOCK_STREAM) for the relay");
    int one = 1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)port);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1) {
        krx_fail_errno(err, "setsockopt(relay, SO_REUSEADDR)");
    } else if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == -1) {
        krx_fail_errno(err, "bind(127.0.0.1:%u) for the relay", port);
    } else if (listen(fd, NETRELAY_MAX_CONNS) == -1) {
        krx_fail_errno(err, "listen(127.0.0.1:%u, %d)", port, NETRELAY_MAX_CONNS);
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

void netrelay_start(int listener, const char *proxy_socket) {
    int flags = fcntl(listener, F_GETFL);
    if (flags != -1) (void)fcntl(listener, F_SETFL, flags | O_NONBLOCK);
    relay.listener = listener;
    relay.proxy_socket = proxy_socket;
}

static void conn_close(struct conn *c) {
    close(c->fd[0]);
    close(c->fd[1]);
    c->used = false;
    relay.used--;
    relay.accept_paused = false;
}

/* A non-blocking connection to the proxy; unix sockets connect at once or not at all. */
static int connect_proxy(void) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t n = strlen(relay.proxy_socket);
    if (n >= sizeof addr.sun_path) return -1;
    memcpy(addr.sun_path, relay.proxy_socket, n);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}

static void accept_one(void) {
    int in = accept4(relay.listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (in == -1) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            relay.accept_paused = true; /* e.g. EMFILE: retry once a connection frees an fd */
        return;
    }
    int out = connect_proxy();
    if (out == -1) {
        /* The proxy is down or its backlog full: the program sees the connection close. */
        close(in);
        return;
    }
    for (size_t i = 0; i < NETRELAY_MAX_CONNS; i++) {
        struct conn *c = &relay.conns[i];
        if (c->used) continue;
        memset(c, 0, sizeof *c);
        c->used = true;
        c->fd[0] = in;
        c->fd[1] = out;
        c->slot[0] = c->slot[1] = -1;
        relay.used++;
        return;
    }
    close(in);
    close(out);
}

size_t netrelay_pollfds(struct pollfd *pfds) {
    size_t n = 0;
    relay.listener_slot = -1;
    if (relay.listener >= 0 && relay.used < NETRELAY_MAX_CONNS && !relay.accept_paused) {
        relay.listener_slot = (int)n;
        pfds[n++] = (struct pollfd){.fd = relay.listener, .events = POLLIN};
    }
    for (size_t i = 0; i < NETRELAY_MAX_CONNS; i++) {
        struct conn *c = &relay.conns[i];
        if (!c->used) continue;
        for (int s = 0; s < 2; s++) {
            short ev = 0;
            if (c->fl[s].len == 0 && !c->fl[s].eof) ev |= POLLIN;
            if (c->fl[1 - s].len > 0) ev |= POLLOUT;
            /* A negative fd is skipped: no POLLHUP busy loop for a side with nothing to do. */
            c->slot[s] = (int)n;
            pfds[n++] = (struct pollfd){.fd = ev ? c->fd[s] : -1, .events = ev};
        }
    }
    return n;
}

/* Move what can be moved on flow s of c; false when the connection has failed. */
static bool pump(struct conn *c, int s, short revents) {
    struct flow *f = &c->fl[s];
    int from = c->fd[s], to = c->fd[1 - s];
    if (f->len == 0 && !f->eof && (revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = recv(from, f->buf, sizeof f->buf, 0);
        if (n > 0) {
            f->off = 0;
            f->len = (size_t)n;
        } else if (n == 0) {
            f->eof = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return false;
        }
    }
    while (f->len > 0) {
        ssize_t n = send(to, f->buf + f->off, f->len, MSG_NOSIGNAL);
        if (n > 0) {
            f->off += (size_t)n;
            f->len -= (size_t)n;
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        return false;
    }
    if (f->eof && f->len == 0 && !f->shut) {
        f->shut = true;
        if (shutdown(to, SHUT_WR) == -1 && errno != ENOTCONN) return false;
    }
    return true;
}

void netrelay_dispatch(const struct pollfd *pfds, size_t count) {
    for (size_t i = 0; i < NETRELAY_MAX_CONNS; i++) {
        struct conn *c = &relay.conns[i];
        if (!c->used) continue;
        short rev[2] = {0, 0};
        for (int s = 0; s < 2; s++)
            if (c->slot[s] >= 0 && (size_t)c->slot[s] < count && pfds[c->slot[s]].fd >= 0)
                rev[s] = pfds[c->slot[s]].revents;
        if (!rev[0] && !rev[1]) continue;
        /* Flow s reads fd[s] (its revents) and writes fd[1 - s] (ready or not, send() says). */
        bool ok = pump(c, 0, rev[0]) && pump(c, 1, rev[1]);
        if (ok && (rev[0] & POLLERR) && (rev[1] & POLLERR)) ok = false;
        if (!ok || (c->fl[0].shut && c->fl[1].shut)) conn_close(c);
    }
    if (relay.listener_slot >= 0 && (size_t)relay.listener_slot < count &&
        (pfds[relay.listener_slot].revents & POLLIN)) {
        /* A few per round keeps one busy program from starving the loop's other work. */
        for (int k = 0; k < 8 && relay.used < NETRELAY_MAX_CONNS && !relay.accept_paused; k++) {
            size_t before = relay.used;
            accept_one();
            if (relay.used == before) break;
        }
    }
}

void netrelay_stop(void) {
    for (size_t i = 0; i < NETRELAY_MAX_CONNS; i++)
        if (relay.conns[i].used) conn_close(&relay.conns[i]);
    if (relay.listener >= 0) close(relay.listener);
    relay.listener = -1;
}
