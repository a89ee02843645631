/*
 * The run spec, version 1 (docs/sandbox.md "Spec v1"): read from fd 3, parsed strictly, validated
 * field by field, then frozen. The launcher validates the same document against
 * schema/sandbox-spec.schema.json, but the helper trusts nothing it did not check itself: unknown
 * keys, wrong types, out-of-range numbers, relative or non-canonical paths all exit 121 "spec".
 *
 * Every string is NUL-terminated and contains no NUL; every path is absolute and canonical (no
 * "//", no "." or ".." component, no trailing "/"). Strings point into the parsed document and
 * live as long as the spec (the whole process).
 */
#ifndef KRX_SPEC_H
#define KRX_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util.h"

#define KRX_SPEC_VERSION 1
/* The spec is read whole before parsing; a longer one is refused, not truncated. */
#define KRX_SPEC_MAX_BYTES (1024 * 1024)
/* At most this many mounts.ro_binds entries (the outer process opens each one, mounts.h). */
#define KRX_SPEC_MAX_RO_BINDS 64

/* The layers of SPEC §8, as named in the spec's "layers" and in the probe report. */
enum krx_layer {
    KRX_LAYER_USER = 1u << 0,
    KRX_LAYER_MOUNT = 1u << 1,
    KRX_LAYER_PID = 1u << 2,
    KRX_LAYER_NET = 1u << 3,
    KRX_LAYER_UTS = 1u << 4,
    KRX_LAYER_IPC = 1u << 5,
    KRX_LAYER_RLIMITS = 1u << 6,
    KRX_LAYER_CGROUP = 1u << 7,
    KRX_LAYER_NO_NEW_PRIVS = 1u << 8,
    KRX_LAYER_LANDLOCK = 1u << 9,
    KRX_LAYER_SECCOMP = 1u << 10,
};

/* The sandbox's own paths: where mounts.workspace appears, and the private tmpfs mounts. */
#define KRX_SANDBOX_WORKSPACE "/workspace"
#define KRX_SANDBOX_TMP "/tmp"

struct krx_spec_file {
    const char *path;    /* absolute, inside the sandbox, not under /workspace, /tmp, /dev, /proc */
    const char *content; /* exactly content_len bytes (no NUL inside), NUL-terminated */
    size_t content_len;
};

struct krx_spec_mounts {
    const char *workspace;    /* host path, bound read-write at /workspace */
    const char **ro_binds;    /* host paths, bound read-only at the same path inside */
    size_t ro_binds_count;
    const char **ro_overlays; /* paths inside the sandbox, each under /workspace/ */
    size_t ro_overlays_count;
    struct krx_spec_file *files;
    size_t files_count;
    unsigned tmp_mb; /* size of /tmp and of /dev/shm, each */
};

struct krx_spec_network {
    bool enabled;             /* false: "network": null, an empty namespace with only lo */
    unsigned relay_port;      /* the relay listens on 127.0.0.1:relay_port inside */
    const char *proxy_socket; /* the egress proxy's unix socket, a path in the helper's own view */
};

struct krx_spec_limits {
    unsigned long long wall_ms;
    unsigned long long cpu_s;
    unsigned long long memory_bytes;
    unsigned long long pids;
    unsigned long long open_files;
    unsigned long long file_size_bytes;
};

struct krx_spec {
    int version;
    char **argv; /* argc entries then NULL; argv[0] is an absolute path inside the sandbox */
    size_t argc;
    char **env;  /* envc "NAME=value" entries then NULL: the complete environment */
    size_t envc;
    const char *cwd; /* /workspace or below */
    uid_t uid;       /* ids inside the user namespace */
    gid_t gid;
    uid_t host_uid;  /* what uid/gid map to outside; never 0 */
    gid_t host_gid;
    const char *hostname;
    unsigned layers; /* enum krx_layer bits */
    struct krx_spec_mounts mounts;
    struct krx_spec_network network;
    struct krx_spec_limits limits;
    const char *cgroup; /* delegated cgroup v2 directory, or NULL */
};

static inline bool spec_has_layer(const struct krx_spec *spec, unsigned layer) {
    return (spec->layers & layer) != 0;
}

/* The layer's name as the spec spells it, e.g. "no_new_privs"; "?" for anything else. */
const char *spec_layer_name(unsigned layer);

/*
 * Read fd to EOF (at most KRX_SPEC_MAX_BYTES), parse and validate it into *spec. On failure the
 * detail says which field is wrong and why, e.g. "limits.cpu_s: must be an integer in 1..86400".
 */
int spec_read(int fd, struct krx_spec *spec, struct krx_err *err);

/* Parse and validate a spec held in memory (spec_read's second half). */
int spec_parse(const char *text, size_t len, struct krx_spec *spec, struct krx_err *err);

#endif
