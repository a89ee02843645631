#include "chan.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int chan_pair(int sv[2], struct krx_err *err) {
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
        return krx_fail_errno(err, "socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC)");
    return 0;
}

int chan_send(int sock, char kind, int value, int fd, struct krx_err *err) {
    struct chan_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.kind = kind;
    msg.value = value;
    struct iovec iov = {.iov_base = &msg, .iov_len = sizeof msg};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        mh.msg_control = control.buf;
        mh.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n == -1 && errno == EINTR);
    if (n == -1)
        return krx_fail_errno(err, "sendmsg(channel, '%c'%s)", kind, fd >= 0 ? ", fd" : "");
    return 0;
}

int chan_recv(int sock, struct chan_msg *msg, int *fd, int flags, struct krx_err *err) {
    *fd = -1;
    struct iovec iov = {.iov_base = msg, .iov_len = sizeof *msg};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof control.buf,
    };
    ssize_t n;
    do n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
    while (n == -1 && errno == EINTR);
    if (n == -1) return krx_fail_errno(err, "recvmsg(channel)");
    if (n == 0) return 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(c), sizeof *fd);
    }
    if ((size_t)n != sizeof *msg || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        if (*fd >= 0) close(*fd);
        *fd = -1;
        errno = EPROTO;
        return krx_fail(err, "recvmsg(channel): malformed message of %zd bytes", n);
    }
    return 1;
}
