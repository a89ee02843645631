#include "rlimits.h"

#include "spec.h"

static rlim_t clamp_to_hard(int resource, rlim_t value) {
    struct rlimit cur;
    if (getrlimit(resource, &cur) == 0 && cur.rlim_max < value) return cur.rlim_max;
    return value;
}

int rlimits_apply(const struct krx_rlimit *limits, size_t count, struct krx_err *err) {
    for (size_t i = 0; i < count; i++) {
        rlim_t hard = clamp_to_hard(limits[i].resource,
                                    limits[i].hard != 0 ? limits[i].hard : limits[i].value);
        rlim_t soft = limits[i].value < hard ? limits[i].value : hard;
        struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
        if (setrlimit(limits[i].resource, &rl) == -1)
            return krx_fail_errno(err, "setrlimit(%s, {%llu, %llu})", limits[i].name,
                                  (unsigned long long)soft, (unsigned long long)hard);
    }
    return 0;
}

int rlimits_apply_spec(const struct krx_spec_limits *l, struct krx_err *err) {
    const struct krx_rlimit limits[] = {
        {RLIMIT_AS, "RLIMIT_AS", (rlim_t)l->memory_bytes, 0},
        {RLIMIT_CPU, "RLIMIT_CPU", (rlim_t)l->cpu_s, (rlim_t)l->cpu_s + 1},
        {RLIMIT_NPROC, "RLIMIT_NPROC", (rlim_t)l->pids, 0},
        {RLIMIT_NOFILE, "RLIMIT_NOFILE", (rlim_t)l->open_files, 0},
        {RLIMIT_FSIZE, "RLIMIT_FSIZE", (rlim_t)l->file_size_bytes, 0},
        {RLIMIT_CORE, "RLIMIT_CORE", 0, 0},
    };
    return rlimits_apply(limits, sizeof limits / sizeof limits[0], err);
}

int rlimits_probe(struct krx_err *err) {
    const struct krx_rlimit probe[] = {
        {RLIMIT_AS, "RLIMIT_AS", (rlim_t)1 << 30, 0},
        {RLIMIT_CPU, "RLIMIT_CPU", 30, 0},
        {RLIMIT_NOFILE, "RLIMIT_NOFILE", 64, 0},
        {RLIMIT_FSIZE, "RLIMIT_FSIZE", (rlim_t)16 << 20, 0},
        {RLIMIT_NPROC, "RLIMIT_NPROC", 64, 0},
        {RLIMIT_CORE, "RLIMIT_CORE", 0, 0},
    };
    const size_t count = sizeof probe / sizeof probe[0];
    rlim_t expected[sizeof probe / sizeof probe[0]];
    for (size_t i = 0; i < count; i++)
        expected[i] = clamp_to_hard(probe[i].resource, probe[i].value);

    if (rlimits_apply(probe, count, err) == -1) return -1;
    for (size_t i = 0; i < count; i++) {
        struct rlimit rl;
        if (getrlimit(probe[i].resource, &rl) == -1)
            return krx_fail_errno(err, "getrlimit(%s)", probe[i].name);
        if (rl.rlim_cur != expected[i] || rl.rlim_max != expected[i])
            return krx_fail(err, "getrlimit(%s) reads {%llu, %llu} after setting %llu",
                            probe[i].name, (unsigned long long)rl.rlim_cur,
                            (unsigned long long)rl.rlim_max, (unsigned long long)expected[i]);
    }
    return 0;
}
