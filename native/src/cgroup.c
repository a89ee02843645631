#include "cgroup.h"

#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define FALLBACK "; rlimits used instead"

static bool has_word(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        bool starts = p == list || p[-1] == ' ' || p[-1] == '\n';
        bool ends = p[n] == '\0' || p[n] == ' ' || p[n] == '\n';
        if (starts && ends) return true;
    }
    return false;
}

static void trim_newline(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = '\0';
}

/* Explain a /sys/fs/cgroup that is not cgroup2: hybrid, legacy v1, or absent. */
static int not_unified(const struct statfs *root, struct krx_err *err) {
    struct statfs uni;
    char controllers[256];
    if (statfs(KRX_CGROUP_ROOT "/unified", &uni) == 0 && uni.f_type == CGROUP2_SUPER_MAGIC) {
        if (read_small_file(KRX_CGROUP_ROOT "/unified/cgroup.controllers", controllers,
                            sizeof controllers, err) == -1)
            return -1;
        trim_newline(controllers);
        if (controllers[0] == '\0')
            return krx_fail(err, "hybrid cgroups: cgroup2 at " KRX_CGROUP_ROOT
                            "/unified has no controllers" FALLBACK);
        return krx_fail(err, "hybrid cgroups: cgroup2 at " KRX_CGROUP_ROOT
                        "/unified has only \"%s\", not memory and pids" FALLBACK, controllers);
    }
    if (root->f_type == TMPFS_MAGIC)
        return krx_fail(err, "legacy cgroups: " KRX_CGROUP_ROOT
                        " holds only cgroup v1 hierarchies" FALLBACK);
    return krx_fail(err, KRX_CGROUP_ROOT " is not cgroup2 (statfs f_type 0x%lx)" FALLBACK,
                    (unsigned long)root->f_type);
}

/* The "0::<path>" line of /proc/self/cgroup, i.e. this process's cgroup v2 path. */
static int own_cgroup(char *path, size_t cap, struct krx_err *err) {
    char text[4096];
    if (read_small_file("/proc/self/cgroup", text, sizeof text, err) == -1) return -1;
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        if (strncmp(line, "0::", 3) == 0) {
            int n = snprintf(path, cap, "%s", line + 3);
            if (n < 0 || (size_t)n >= cap)
                return krx_fail(err, "cgroup path too long: %s", line + 3);
            return 0;
        }
        line = next;
    }
    return krx_fail(err, "/proc/self/cgroup has no cgroup v2 (\"0::\") entry" FALLBACK);
}

/* dir + "/" + name into buf, refusing truncation. */
static int cg_path(char *buf, size_t cap, const char *dir, const char *name, struct krx_err *err) {
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return krx_fail(err, "cgroup path too long: %s/%s", dir, name);
    return 0;
}

int cgroup_probe(struct krx_err *err) {
    struct statfs root;
    if (statfs(KRX_CGROUP_ROOT, &root) == -1)
        return krx_fail_errno(err, "statfs(" KRX_CGROUP_ROOT ")");
    if (root.f_type != CGROUP2_SUPER_MAGIC) return not_unified(&root, err);

    char rel[PATH_MAX / 2];
    char dir[PATH_MAX];
    char file[PATH_MAX];
    char controllers[256];
    char probe_name[64];
    if (own_cgroup(rel, sizeof rel, err) == -1) return -1;
    if (cg_path(dir, sizeof dir, KRX_CGROUP_ROOT, rel[0] == '/' ? rel + 1 : rel, err) == -1 ||
        cg_path(file, sizeof file, dir, "cgroup.controllers", err) == -1)
        return -1;
    if (read_small_file(file, controllers, sizeof controllers, err) == -1) return -1;
    trim_newline(controllers);
    if (!has_word(controllers, "memory") || !has_word(controllers, "pids"))
        return krx_fail(err, "cgroup2: own cgroup %s offers \"%s\", not memory and pids" FALLBACK,
                        rel, controllers);

    /* Delegation means the caller may create child cgroups; prove it with one, then remove it. */
    snprintf(probe_name, sizeof probe_name, "kruxos-probe-%ld", (long)getpid());
    if (cg_path(file, sizeof file, dir, probe_name, err) == -1) return -1;
    if (mkdir(file, 0755) == -1)
        return krx_fail_errno(err, "cgroup2 not delegated: mkdir(%s)", file);
    if (rmdir(file) == -1) return krx_fail_errno(err, "rmdir(%s)", file);
    return 0;
}

static int cg_write(const char *dir, const char *file, const char *text, bool optional,
                    struct krx_err *err) {
    char path[PATH_MAX];
    if (cg_path(path, sizeof path, dir, file, err) == -1) return -1;
    if (optional && access(path, F_OK) == -1 && errno == ENOENT) return 0;
    return write_small_file(path, text, err);
}

int cgroup_enter(const char *dir, int pid, unsigned long long memory_bytes,
                 unsigned long long pids, char *path, size_t cap, struct krx_err *err) {
    char name[32], text[64];
    snprintf(name, sizeof name, "call-%d", pid);
    if (cg_path(path, cap, dir, name, err) == -1) return -1;
    if (mkdir(path, 0755) == -1) return krx_fail_errno(err, "mkdir(%s, 0755)", path);

    int rc = -1;
    snprintf(text, sizeof text, "%llu", memory_bytes);
    if (cg_write(path, "memory.max", text, false, err) == -1) goto out;
    /* Without this the memory limit could be dodged into swap. */
    if (cg_write(path, "memory.swap.max", "0", true, err) == -1) goto out;
    snprintf(text, sizeof text, "%llu", pids);
    if (cg_write(path, "pids.max", text, false, err) == -1) goto out;
    if (cg_write(path, "cpu.max", "100000 100000", false, err) == -1) goto out;
    snprintf(text, sizeof text, "%d", pid);
    if (cg_write(path, "cgroup.procs", text, false, err) == -1) goto out;
    rc = 0;
out:
    if (rc == -1) rmdir(path);
    return rc;
}

int cgroup_oom_kills(const char *path, long long *count, struct krx_err *err) {
    char file[PATH_MAX], text[1024];
    if (cg_path(file, sizeof file, path, "memory.events", err) == -1 ||
        read_small_file(file, text, sizeof text, err) == -1)
        return -1;
    *count = 0;
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        if (strncmp(line, "oom_kill ", 9) == 0) *count = strtoll(line + 9, NULL, 10);
        line = next;
    }
    return 0;
}

int cgroup_remove(const char *path, struct krx_err *err) {
    if (rmdir(path) == -1) return krx_fail_errno(err, "rmdir(%s)", path);
    return 0;
}
