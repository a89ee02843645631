#include "seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privs.h"

/* Filters check the architecture first: a syscall number only means something for one ABI. */
#if defined(__x86_64__)
#define KRX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define KRX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "kruxos-sandbox: define KRX_AUDIT_ARCH for this architecture"
#endif

#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif

int seccomp_install(const struct sock_filter *insns, unsigned short count, struct krx_err *err) {
    struct sock_fprog prog = {.len = count, .filter = (struct sock_filter *)insns};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == -1)
        return krx_fail_errno(err, "seccomp(SECCOMP_SET_MODE_FILTER, 0, {%u insns})", count);
    return 0;
}

int seccomp_probe(struct krx_err *err) {
    const struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KRX_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };

    if (privs_no_new_privs(err) == -1) return -1;
    if (seccomp_install(filter, sizeof filter / sizeof filter[0], err) == -1) return -1;

    /* getppid() cannot fail on its own, so -1/EPERM can only come from the filter. */
    errno = 0;
    long rc = syscall(SYS_getppid);
    if (rc != -1 || errno != EPERM)
        return krx_fail(err, "seccomp filter installed, but getppid() returned %ld (errno %d)",
                        rc, errno);
    if (syscall(SYS_getpid) <= 0)
        return krx_fail_errno(err, "seccomp filter also blocked getpid()");
    return 0;
}
