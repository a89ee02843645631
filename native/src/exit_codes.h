/*
 * Exit codes reserved by kruxos-sandbox: 120-127.
 *
 * When the helper itself fails it exits with one of these and writes exactly one JSON line to
 * stderr, {"error":"<name>","detail":"<text>"}. Once contain() execs the sandboxed program, that
 * program's own exit status passes through unchanged, so a caller must read the stderr line to
 * tell "the helper refused" from "the program happened to exit 12x". 126 and 127 stay unassigned
 * because shells use them for "not executable" and "not found".
 */
#ifndef KRX_EXIT_CODES_H
#define KRX_EXIT_CODES_H

enum krx_exit_code {
    KRX_EXIT_USAGE = 120,    /* "usage": unknown or missing command-line argument */
    KRX_EXIT_SPEC = 121,     /* "spec": the JSON spec is invalid or of an unknown version */
    KRX_EXIT_SETUP = 122,    /* "setup": a sandbox layer could not be applied; nothing ran */
    KRX_EXIT_EXEC = 123,     /* "exec": every layer applied, execve() of the program failed */
    KRX_EXIT_TIMEOUT = 124,  /* "timeout": the wall-clock limit killed the pid namespace */
    KRX_EXIT_INTERNAL = 125, /* "internal": the helper's own plumbing failed (fork, pipe, output) */
};

#endif
