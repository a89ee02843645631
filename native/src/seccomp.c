/*
 * The sandbox's seccomp-BPF filter. Default allow: the namespaces, mounts and Landlock already
 * decide what a program can reach; this filter removes the kernel interfaces that let a program
 * leave those boundaries or attack the kernel itself. It is a superset of Docker's default blocked
 * set (moby profiles/seccomp/default.json, for a container without extra capabilities).
 *
 * Return values:
 *   EPERM         the normal refusal, what the kernel says to an unprivileged caller;
 *   ENOSYS        where programs probe and fall back (clone3 → clone, io_uring → threads) and for
 *                 syscalls newer than this filter, so a kernel interface nobody reviewed is never
 *                 reachable and callers behave as on an older kernel;
 *   EAFNOSUPPORT  socket families the sandbox does not offer, as a kernel without them would;
 *   kill          a foreign audit architecture (i386 via int 0x80) or an x32 syscall number: the
 *                 numbers below only mean something for the native ABI.
 */
#include "seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privs.h"
#include "spec.h"

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

/* x86_64 marks x32 syscalls with this bit; the x32 ABI shares AUDIT_ARCH_X86_64. */
#define KRX_X32_SYSCALL_BIT 0x40000000U

/*
 * Syscalls from 424 on have one number on every architecture. These are newer than the kernel
 * headers of the oldest build host (Debian 12: Linux 6.1).
 */
#ifndef SYS_open_tree_attr
#define SYS_open_tree_attr 467 /* Linux 6.15: open_tree() plus mount_setattr() */
#endif

/*
 * The newest syscall this filter was reviewed against (file_setattr, Linux 6.17). Anything above
 * gets ENOSYS: glibc and every runtime fall back when a new syscall is missing.
 */
#define KRX_SYSCALL_REVIEWED_MAX 469

/* Every clone flag that creates a namespace (CLONE_NEWTIME exists only for unshare/clone3). */
#define KRX_CLONE_NEW_MASK                                                                        \
    (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
     CLONE_NEWNET)

/* personality() values Docker allows: PER_LINUX, PER_LINUX32, UNAME26 variants, and the query. */
static const uint32_t allowed_personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffffU};

#define RET_ERRNO(e) (SECCOMP_RET_ERRNO | ((uint32_t)(e) & SECCOMP_RET_DATA))

struct deny {
    uint32_t nr;
    int err;
};

/*
 * Syscalls refused outright, by group. A name the architecture lacks is skipped by #ifdef; the
 * glibc SYS_ macros exist exactly for the syscalls of this architecture.
 */
static const struct deny deny_list[] = {
/* Kernel code and the running kernel: modules, kexec, reboot. */
#ifdef SYS_init_module
    {SYS_init_module, EPERM},
#endif
#ifdef SYS_finit_module
    {SYS_finit_module, EPERM},
#endif
#ifdef SYS_delete_module
    {SYS_delete_module, EPERM},
#endif
#ifdef SYS_create_module
    {SYS_create_module, EPERM},
#endif
#ifdef SYS_get_kernel_syms
    {SYS_get_kernel_syms, EPERM},
#endif
#ifdef SYS_query_module
    {SYS_query_module, EPERM},
#endif
#ifdef SYS_kexec_load
    {SYS_kexec_load, EPERM},
#endif
#ifdef SYS_kexec_file_load
    {SYS_kexec_file_load, EPERM},
#endif
#ifdef SYS_reboot
    {SYS_reboot, EPERM},
#endif

/* Host-wide state no sandbox owns: swap, accounting, quotas, clocks, kernel log, names, tty. */
#ifdef SYS_swapon
    {SYS_swapon, EPERM},
#endif
#ifdef SYS_swapoff
    {SYS_swapoff, EPERM},
#endif
#ifdef SYS_acct
    {SYS_acct, EPERM},
#endif
#ifdef SYS_quotactl
    {SYS_quotactl, EPERM},
#endif
#ifdef SYS_quotactl_fd
    {SYS_quotactl_fd, EPERM},
#endif
#ifdef SYS_settimeofday
    {SYS_settimeofday, EPERM},
#endif
#ifdef SYS_stime
    {SYS_stime, EPERM},
#endif
#ifdef SYS_clock_settime
    {SYS_clock_settime, EPERM},
#endif
#ifdef SYS_clock_adjtime
    {SYS_clock_adjtime, EPERM},
#endif
#ifdef SYS_syslog
    {SYS_syslog, EPERM},
#endif
#ifdef SYS_sethostname
    {SYS_sethostname, EPERM},
#endif
#ifdef SYS_setdomainname
    {SYS_setdomainname, EPERM},
#endif
#ifdef SYS_vhangup
    {SYS_vhangup, EPERM},
#endif

/* The mount table: the sandbox's file system is fixed before exec, mount API old and new. */
#ifdef SYS_mount
    {SYS_mount, EPERM},
#endif
#ifdef SYS_umount
    {SYS_umount, EPERM},
#endif
#ifdef SYS_umount2
    {SYS_umount2, EPERM},
#endif
#ifdef SYS_pivot_root
    {SYS_pivot_root, EPERM},
#endif
#ifdef SYS_chroot
    {SYS_chroot, EPERM},
#endif
#ifdef SYS_fsopen
    {SYS_fsopen, EPERM},
#endif
#ifdef SYS_fsconfig
    {SYS_fsconfig, EPERM},
#endif
#ifdef SYS_fsmount
    {SYS_fsmount, EPERM},
#endif
#ifdef SYS_fspick
    {SYS_fspick, EPERM},
#endif
#ifdef SYS_move_mount
    {SYS_move_mount, EPERM},
#endif
#ifdef SYS_open_tree
    {SYS_open_tree, EPERM},
#endif
    {SYS_open_tree_attr, EPERM},
#ifdef SYS_mount_setattr
    {SYS_mount_setattr, EPERM},
#endif

/*
 * New namespaces: an unprivileged user namespace hands back every capability inside it and with
 * them the kernel's namespaced attack surface. clone() is checked by its flags below; clone3()
 * passes flags in memory a filter cannot read, so it answers ENOSYS and glibc falls back to clone.
 */
#ifdef SYS_unshare
    {SYS_unshare, EPERM},
#endif
#ifdef SYS_setns
    {SYS_setns, EPERM},
#endif
#ifdef SYS_clone3
    {SYS_clone3, ENOSYS},
#endif

/* Other processes' memory and files: debugging, cross-process reads and writes, fd theft. */
#ifdef SYS_ptrace
    {SYS_ptrace, EPERM},
#endif
#ifdef SYS_process_vm_readv
    {SYS_process_vm_readv, EPERM},
#endif
#ifdef SYS_process_vm_writev
    {SYS_process_vm_writev, EPERM},
#endif
#ifdef SYS_process_madvise
    {SYS_process_madvise, EPERM},
#endif
#ifdef SYS_kcmp
    {SYS_kcmp, EPERM},
#endif
#ifdef SYS_pidfd_getfd
    {SYS_pidfd_getfd, EPERM},
#endif

/* Files by handle: open_by_handle_at bypasses path checks (the "shocker" escape). */
#ifdef SYS_name_to_handle_at
    {SYS_name_to_handle_at, EPERM},
#endif
#ifdef SYS_open_by_handle_at
    {SYS_open_by_handle_at, EPERM},
#endif

/*
 * Large kernel attack surface no sandboxed tool needs, each a source of privilege escalations:
 * eBPF, userfaultfd (stalls the kernel mid-copy in exploits), io_uring (ENOSYS: runtimes fall
 * back to threads), perf events, the kernel keyring, fanotify, x86 LDT and port I/O.
 */
#ifdef SYS_bpf
    {SYS_bpf, EPERM},
#endif
#ifdef SYS_userfaultfd
    {SYS_userfaultfd, EPERM},
#endif
#ifdef SYS_io_uring_setup
    {SYS_io_uring_setup, ENOSYS},
#endif
#ifdef SYS_io_uring_enter
    {SYS_io_uring_enter, ENOSYS},
#endif
#ifdef SYS_io_uring_register
    {SYS_io_uring_register, ENOSYS},
#endif
#ifdef SYS_perf_event_open
    {SYS_perf_event_open, EPERM},
#endif
#ifdef SYS_add_key
    {SYS_add_key, EPERM},
#endif
#ifdef SYS_request_key
    {SYS_request_key, EPERM},
#endif
#ifdef SYS_keyctl
    {SYS_keyctl, EPERM},
#endif
#ifdef SYS_fanotify_init
    {SYS_fanotify_init, EPERM},
#endif
#ifdef SYS_lookup_dcookie
    {SYS_lookup_dcookie, EPERM},
#endif
#ifdef SYS_modify_ldt
    {SYS_modify_ldt, EPERM},
#endif
#ifdef SYS_iopl
    {SYS_iopl, EPERM},
#endif
#ifdef SYS_ioperm
    {SYS_ioperm, EPERM},
#endif
#ifdef SYS_vm86
    {SYS_vm86, EPERM},
#endif
#ifdef SYS_vm86old
    {SYS_vm86old, EPERM},
#endif

/* Obsolete interfaces kept only for old binaries. */
#ifdef SYS_uselib
    {SYS_uselib, EPERM},
#endif
#ifdef SYS_ustat
    {SYS_ustat, EPERM},
#endif
#ifdef SYS_sysfs
    {SYS_sysfs, EPERM},
#endif
#ifdef SYS__sysctl
    {SYS__sysctl, EPERM},
#endif
#ifdef SYS_nfsservctl
    {SYS_nfsservctl, EPERM},
#endif

/* NUMA placement: host memory policy, and moving other processes' pages. */
#ifdef SYS_mbind
    {SYS_mbind, EPERM},
#endif
#ifdef SYS_get_mempolicy
    {SYS_get_mempolicy, EPERM},
#endif
#ifdef SYS_set_mempolicy
    {SYS_set_mempolicy, EPERM},
#endif
#ifdef SYS_set_mempolicy_home_node
    {SYS_set_mempolicy_home_node, EPERM},
#endif
#ifdef SYS_move_pages
    {SYS_move_pages, EPERM},
#endif
#ifdef SYS_migrate_pages
    {SYS_migrate_pages, EPERM},
#endif
};
#define DENY_COUNT (sizeof deny_list / sizeof deny_list[0])

/* Room for the deny list (two instructions each) and the argument checks; far below BPF_MAXINSNS. */
#define KRX_FILTER_MAX 512

struct filter {
    struct sock_filter insn[KRX_FILTER_MAX];
    unsigned short len;
    bool overflow;
};

/* seccomp_data.args are 64-bit; every argument checked here is an int or unsigned int. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + (i) * sizeof(uint64_t)))
#else
#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + (i) * sizeof(uint64_t) + 4))
#endif

static void emit(struct filter *f, struct sock_filter insn) {
    if (f->len >= KRX_FILTER_MAX) {
        f->overflow = true;
        return;
    }
    f->insn[f->len++] = insn;
}

static void ret(struct filter *f, uint32_t action) {
    emit(f, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action));
}

static void load(struct filter *f, uint32_t offset) {
    emit(f, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset));
}

/* if (A == k) return action; */
static void ret_if_eq(struct filter *f, uint32_t k, uint32_t action) {
    emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1));
    ret(f, action);
}

/*
 * A block of instructions run only for syscall `nr`: begin() emits "if (nr != A) skip", end()
 * patches the skip length. Blocks always end in a return, so after a skipped block the
 * accumulator still holds the syscall number.
 */
static unsigned short block_begin(struct filter *f, uint32_t nr) {
    unsigned short at = f->len;
    emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 0));
    return at;
}

static void block_end(struct filter *f, unsigned short at) {
    if (f->overflow) return;
    unsigned skip = (unsigned)(f->len - at - 1);
    if (skip > 255) {
        f->overflow = true;
        return;
    }
    f->insn[at].jf = (unsigned char)skip;
}

/* clone(flags, …): a plain fork or thread is fine, a new namespace is not. */
static void clone_block(struct filter *f) {
    unsigned short at = block_begin(f, SYS_clone);
    load(f, ARG_LO(0));
    emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, KRX_CLONE_NEW_MASK, 0, 1));
    ret(f, RET_ERRNO(EPERM));
    ret(f, SECCOMP_RET_ALLOW);
    block_end(f, at);
}

/*
 * socket(domain, type, protocol): unix, IPv4 and IPv6 stream/datagram sockets, and route netlink
 * (how programs list interfaces and addresses). Refused: packet sockets and raw IP sockets
 * (forged traffic, sniffing), netlink families other than route (audit, uevent, xfrm, netfilter:
 * host-wide or kernel-heavy), and every other family, notably AF_VSOCK, which reaches the
 * hypervisor host whatever the network namespace, and AF_ALG, the kernel crypto API.
 */
static void socket_block(struct filter *f) {
    unsigned short at = block_begin(f, SYS_socket);
    load(f, ARG_LO(0));
    ret_if_eq(f, AF_UNIX, SECCOMP_RET_ALLOW);
    ret_if_eq(f, AF_PACKET, RET_ERRNO(EPERM));
    /* AF_INET or AF_INET6 → the type check; AF_NETLINK → the protocol check. */
    emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 3, 0));
    emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 2, 0));
    emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 8, 0));
    ret(f, RET_ERRNO(EAFNOSUPPORT));
    /* type & 0xf (SOCK_NONBLOCK and SOCK_CLOEXEC live above it); AF_INET + SOCK_PACKET is the
     * old spelling of a packet socket. */
    load(f, ARG_LO(1));
    emit(f, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf));
    ret_if_eq(f, SOCK_RAW, RET_ERRNO(EPERM));
    ret_if_eq(f, SOCK_PACKET, RET_ERRNO(EPERM));
    ret(f, SECCOMP_RET_ALLOW);
    /* netlink protocol */
    load(f, ARG_LO(2));
    ret_if_eq(f, NETLINK_ROUTE, SECCOMP_RET_ALLOW);
    ret(f, RET_ERRNO(EPERM));
    block_end(f, at);
}

/* socketpair(): only unix pairs; the same family reasoning as socket(). */
static void socketpair_block(struct filter *f) {
    unsigned short at = block_begin(f, SYS_socketpair);
    load(f, ARG_LO(0));
    ret_if_eq(f, AF_UNIX, SECCOMP_RET_ALLOW);
    ret(f, RET_ERRNO(EAFNOSUPPORT));
    block_end(f, at);
}

/*
 * ioctl(fd, cmd): the command is an unsigned int, so only its low 32 bits count. TIOCSTI pushes
 * input into a terminal another process reads (typing commands into the operator's shell),
 * TIOCLINUX reaches the virtual console (selection paste, same effect), TIOCSETD switches line
 * disciplines (n_gsm and friends: repeated kernel privilege escalations).
 */
static void ioctl_block(struct filter *f) {
    unsigned short at = block_begin(f, SYS_ioctl);
    load(f, ARG_LO(1));
    ret_if_eq(f, TIOCSTI, RET_ERRNO(EPERM));
    ret_if_eq(f, TIOCLINUX, RET_ERRNO(EPERM));
    ret_if_eq(f, TIOCSETD, RET_ERRNO(EPERM));
    ret(f, SECCOMP_RET_ALLOW);
    block_end(f, at);
}

/* personality(): the values Docker allows; ADDR_NO_RANDOMIZE and friends switch off ASLR. */
static void personality_block(struct filter *f) {
    unsigned short at = block_begin(f, SYS_personality);
    load(f, ARG_LO(0));
    for (size_t i = 0; i < sizeof allowed_personalities / sizeof allowed_personalities[0]; i++)
        ret_if_eq(f, allowed_personalities[i], SECCOMP_RET_ALLOW);
    ret(f, RET_ERRNO(EPERM));
    block_end(f, at);
}

static void build(struct filter *f) {
    f->len = 0;
    f->overflow = false;

    load(f, offsetof(struct seccomp_data, arch));
    emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KRX_AUDIT_ARCH, 1, 0));
    ret(f, SECCOMP_RET_KILL_PROCESS);

    load(f, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
    emit(f, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, KRX_X32_SYSCALL_BIT, 0, 1));
    ret(f, SECCOMP_RET_KILL_PROCESS);
#endif
    emit(f,
         (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, KRX_SYSCALL_REVIEWED_MAX, 0, 1));
    ret(f, RET_ERRNO(ENOSYS));

    clone_block(f);
    socket_block(f);
    socketpair_block(f);
    ioctl_block(f);
    personality_block(f);
    for (size_t i = 0; i < DENY_COUNT; i++)
        ret_if_eq(f, deny_list[i].nr, RET_ERRNO(deny_list[i].err));
    ret(f, SECCOMP_RET_ALLOW);
}

int seccomp_install(const struct sock_filter *insns, unsigned short count, struct krx_err *err) {
    struct sock_fprog prog = {.len = count, .filter = (struct sock_filter *)insns};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == -1)
        return krx_fail_errno(err, "seccomp(SECCOMP_SET_MODE_FILTER, 0, {%u insns})", count);
    return 0;
}

int seccomp_apply_sandbox_filter(struct krx_err *err) {
    static struct filter f; /* 4 KiB: kept off the stack */
    build(&f);
    if (f.overflow)
        return krx_fail(err, "seccomp filter does not fit in %d instructions (or a block > 255)",
                        KRX_FILTER_MAX);
    return seccomp_install(f.insn, f.len, err);
}

int seccomp_apply(const struct krx_spec *spec, struct krx_err *err) {
    if (!spec_has_layer(spec, KRX_LAYER_SECCOMP)) return 0;
    return seccomp_apply_sandbox_filter(err);
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
