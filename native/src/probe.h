/*
 * --probe: exercise every sandbox layer for real, each in its own forked child so the helper's
 * own process keeps no namespace, limit, filter or domain, and print one JSON line:
 *   {"probe_version":1,"uid":N,"layers":{"user":{"ok":true},…,"landlock":{"ok":true,"abi":7},…}}
 * A failing layer carries "detail": the exact syscall, its arguments and errno.
 */
#ifndef KRX_PROBE_H
#define KRX_PROBE_H

#define KRX_PROBE_VERSION 1

/* Seconds a probe child may take before SIGALRM ends it and its layer is reported failed. */
#define KRX_PROBE_CHILD_TIMEOUT_S 5

/* Run all probes and print the JSON line on stdout; returns the exit code (0). */
int probe_main(void);

#endif
