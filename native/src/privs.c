#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int privs_no_new_privs(struct krx_err *err) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
        return krx_fail_errno(err, "prctl(PR_SET_NO_NEW_PRIVS, 1)");
    return 0;
}

int privs_probe_no_new_privs(struct krx_err *err) {
    if (privs_no_new_privs(err) == -1) return -1;
    int v = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    if (v == -1) return krx_fail_errno(err, "prctl(PR_GET_NO_NEW_PRIVS)");
    if (v != 1) return krx_fail(err, "prctl(PR_GET_NO_NEW_PRIVS) returned %d after setting it", v);
    return 0;
}

static bool has_effective(unsigned cap) {
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &hdr, data) == -1) return true; /* unknown: treat as a real failure */
    return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

int privs_drop_all(bool change_ids, uid_t uid, gid_t gid, struct krx_err *err) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 && errno != EINVAL)
        return krx_fail_errno(err, "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)");
    /* The kernel answers EINVAL past its last capability; that ends the walk. */
    for (unsigned long cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
        if (errno == EINVAL) break;
        /* Without CAP_SETPCAP (an unprivileged caller with no user namespace) the bounding set
         * cannot shrink; no_new_privs is then what keeps file capabilities from applying. */
        if (errno == EPERM && !has_effective(CAP_SETPCAP)) break;
        return krx_fail_errno(err, "prctl(PR_CAPBSET_DROP, %lu)", cap);
    }
    if (change_ids) {
        if (setgroups(0, NULL) == -1) return krx_fail_errno(err, "setgroups(0, NULL)");
        if (setresgid(gid, gid, gid) == -1)
            return krx_fail_errno(err, "setresgid(%u, %u, %u)", (unsigned)gid, (unsigned)gid,
                                  (unsigned)gid);
        if (setresuid(uid, uid, uid) == -1)
            return krx_fail_errno(err, "setresuid(%u, %u, %u)", (unsigned)uid, (unsigned)uid,
                                  (unsigned)uid);
    }
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0, 0, 0}, {0, 0, 0}};
    if (syscall(SYS_capset, &hdr, data) == -1)
        return krx_fail_errno(err, "capset(v3, {effective 0, permitted 0, inheritable 0})");
    if (syscall(SYS_capget, &hdr, data) == -1) return krx_fail_errno(err, "capget(v3)");
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        if (data[i].effective || data[i].permitted || data[i].inheritable)
            return krx_fail(err, "capget(v3) still shows capabilities after capset() to zero");
    return 0;
}

int privs_new_session(struct krx_err *err) {
    if (setsid() == -1) return krx_fail_errno(err, "setsid()");
    return 0;
}

int privs_close_fds(int keep, struct krx_err *err) {
    bool ok;
    if (keep < 3) {
        ok = syscall(SYS_close_range, 3u, ~0u, 0u) == 0;
    } else {
        unsigned k = (unsigned)keep;
        ok = (k == 3 || syscall(SYS_close_range, 3u, k - 1, 0u) == 0) &&
             syscall(SYS_close_range, k + 1, ~0u, 0u) == 0;
    }
    if (ok) return 0;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) return krx_fail_errno(err, "getrlimit(RLIMIT_NOFILE)");
    rlim_t max = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1u << 20) ? (1u << 20)
                                                                          : rl.rlim_max;
    for (rlim_t fd = 3; fd < max; fd++)
        if ((int)fd != keep) close((int)fd);
    return 0;
}
