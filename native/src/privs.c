#include "privs.h"

#include <sys/prctl.h>

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
