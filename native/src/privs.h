/*
 * The process's own privileges: no_new_privs now; in contain() also closing inherited fds, the
 * new session and the safelisted environment just before execve().
 */
#ifndef KRX_PRIVS_H
#define KRX_PRIVS_H

#include "util.h"

/* prctl(PR_SET_NO_NEW_PRIVS, 1): execve() can never grant privileges again (setuid, file caps). */
int privs_no_new_privs(struct krx_err *err);

/* Set no_new_privs and read it back with PR_GET_NO_NEW_PRIVS. */
int privs_probe_no_new_privs(struct krx_err *err);

#endif
