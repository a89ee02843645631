#include "spec.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"

/* Bounds shared with schema/sandbox-spec.schema.json; the helper enforces them on its own. */
#define MAX_ARGV 4096
#define MAX_ENV 256
#define MAX_RO_BINDS KRX_SPEC_MAX_RO_BINDS
#define MAX_RO_OVERLAYS 4096
#define MAX_FILES 16
#define MAX_FILE_BYTES (512 * 1024) /* the CA bundle: system roots and the interception CA */
#define MAX_PATH_LEN 4096
#define MAX_SUN_PATH 107

static const struct {
    const char *name;
    unsigned bit;
} layer_names[] = {
    {"user", KRX_LAYER_USER},
    {"mount", KRX_LAYER_MOUNT},
    {"pid", KRX_LAYER_PID},
    {"net", KRX_LAYER_NET},
    {"uts", KRX_LAYER_UTS},
    {"ipc", KRX_LAYER_IPC},
    {"rlimits", KRX_LAYER_RLIMITS},
    {"cgroup", KRX_LAYER_CGROUP},
    {"no_new_privs", KRX_LAYER_NO_NEW_PRIVS},
    {"landlock", KRX_LAYER_LANDLOCK},
    {"seccomp", KRX_LAYER_SECCOMP},
};
#define LAYER_NAME_COUNT (sizeof layer_names / sizeof layer_names[0])

const char *spec_layer_name(unsigned layer) {
    for (size_t i = 0; i < LAYER_NAME_COUNT; i++)
        if (layer_names[i].bit == layer) return layer_names[i].name;
    return "?";
}

/* --- field checks; `where` is the field's dotted name, as the error detail shows it --- */

static int type_error(const char *where, const char *want, const struct json *v,
                      struct krx_err *err) {
    return krx_fail(err, "%s: must be %s, not %s", where, want,
                    v == NULL ? "missing" : json_type_name(v->type));
}

/* Every key of obj must be in allowed (NULL-terminated). */
static int only_keys(const struct json *obj, const char *where, const char *const *allowed,
                     struct krx_err *err) {
    for (const struct json *m = obj->u.items.first; m != NULL; m = m->next) {
        bool known = false;
        for (const char *const *k = allowed; *k != NULL; k++)
            if (strcmp(m->key, *k) == 0) known = true;
        if (!known) return krx_fail(err, "%s: unknown key \"%.64s\"", where, m->key);
    }
    return 0;
}

static const struct json *need(const struct json *obj, const char *key, enum json_type type,
                               const char *where, struct krx_err *err) {
    const struct json *v = json_get(obj, key);
    if (v == NULL || v->type != type) {
        type_error(where, json_type_name(type), v, err);
        return NULL;
    }
    return v;
}

static int get_uint(const struct json *obj, const char *key, const char *where,
                    unsigned long long min, unsigned long long max, unsigned long long *out,
                    struct krx_err *err) {
    const struct json *v = json_get(obj, key);
    if (v == NULL || v->type != JSON_INT || v->u.i < 0 || (unsigned long long)v->u.i < min ||
        (unsigned long long)v->u.i > max)
        return krx_fail(err, "%s: must be an integer in %llu..%llu", where, min, max);
    *out = (unsigned long long)v->u.i;
    return 0;
}

/* Absolute, canonical, bounded: no "//", no "." or ".." component, no trailing "/". */
static int check_path(const char *p, const char *where, struct krx_err *err) {
    size_t len = strlen(p);
    if (p[0] != '/') return krx_fail(err, "%s: \"%.64s\" is not an absolute path", where, p);
    if (len > MAX_PATH_LEN) return krx_fail(err, "%s: longer than %d bytes", where, MAX_PATH_LEN);
    if (len > 1 && p[len - 1] == '/')
        return krx_fail(err, "%s: \"%.64s\" ends with '/'", where, p);
    for (const char *c = p; *c != '\0';) {
        /* c is at a '/'; the component runs to the next '/' or the end. */
        const char *comp = c + 1;
        const char *slash = strchr(comp, '/');
        size_t n = slash == NULL ? strlen(comp) : (size_t)(slash - comp);
        if ((n == 0 && len > 1) || (n == 1 && comp[0] == '.') ||
            (n == 2 && comp[0] == '.' && comp[1] == '.'))
            return krx_fail(err, "%s: \"%.64s\" is not canonical (empty, \".\" or \"..\" part)",
                            where, p);
        if (slash == NULL) break;
        c = slash;
    }
    return 0;
}

/* Whether path is dir itself or lies beneath it (both canonical). */
static bool path_within(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int get_path(const struct json *obj, const char *key, const char *where, const char **out,
                    struct krx_err *err) {
    const struct json *v = need(obj, key, JSON_STRING, where, err);
    if (v == NULL || check_path(v->u.str.s, where, err) == -1) return -1;
    *out = v->u.str.s;
    return 0;
}

/* A string array with at most max items; returns a NULL-terminated copy of the pointers. */
static int get_strings(const struct json *obj, const char *key, const char *where, size_t max,
                       char ***out, size_t *count, struct krx_err *err) {
    const struct json *arr = need(obj, key, JSON_ARRAY, where, err);
    if (arr == NULL) return -1;
    if (arr->u.items.count > max)
        return krx_fail(err, "%s: more than %zu entries", where, max);
    char **list = calloc(arr->u.items.count + 1, sizeof *list);
    if (list == NULL) return krx_fail(err, "%s: out of memory", where);
    size_t i = 0;
    for (const struct json *e = arr->u.items.first; e != NULL; e = e->next, i++) {
        if (e->type != JSON_STRING) {
            free(list);
            return krx_fail(err, "%s[%zu]: must be a string, not %s", where, i,
                            json_type_name(e->type));
        }
        list[i] = e->u.str.s;
    }
    *out = list;
    *count = i;
    return 0;
}

static int get_paths(const struct json *obj, const char *key, const char *where, size_t max,
                     const char ***out, size_t *count, struct krx_err *err) {
    char **list;
    if (get_strings(obj, key, where, max, &list, count, err) == -1) return -1;
    for (size_t i = 0; i < *count; i++) {
        char item[64];
        snprintf(item, sizeof item, "%s[%zu]", where, i);
        if (check_path(list[i], item, err) == -1) goto bad;
        for (size_t j = 0; j < i; j++)
            if (strcmp(list[i], list[j]) == 0) {
                krx_fail(err, "%s: \"%.64s\" is listed twice", item, list[i]);
                goto bad;
            }
    }
    *out = (const char **)list;
    return 0;
bad:
    free(list);
    return -1;
}

/* --- sections --- */

static int parse_layers(const struct json *doc, struct krx_spec *s, struct krx_err *err) {
    const struct json *arr = need(doc, "layers", JSON_ARRAY, "layers", err);
    if (arr == NULL) return -1;
    size_t i = 0;
    for (const struct json *e = arr->u.items.first; e != NULL; e = e->next, i++) {
        if (e->type != JSON_STRING)
            return krx_fail(err, "layers[%zu]: must be a string, not %s", i,
                            json_type_name(e->type));
        unsigned bit = 0;
        for (size_t k = 0; k < LAYER_NAME_COUNT; k++)
            if (strcmp(e->u.str.s, layer_names[k].name) == 0) bit = layer_names[k].bit;
        if (bit == 0) return krx_fail(err, "layers[%zu]: unknown layer \"%.64s\"", i, e->u.str.s);
        if (s->layers & bit)
            return krx_fail(err, "layers[%zu]: \"%s\" is listed twice", i, e->u.str.s);
        s->layers |= bit;
    }
    return 0;
}

static int parse_argv_env(const struct json *doc, struct krx_spec *s, struct krx_err *err) {
    if (get_strings(doc, "argv", "argv", MAX_ARGV, &s->argv, &s->argc, err) == -1) return -1;
    if (s->argc == 0) return krx_fail(err, "argv: must not be empty");
    if (check_path(s->argv[0], "argv[0]", err) == -1) return -1;

    if (get_strings(doc, "env", "env", MAX_ENV, &s->env, &s->envc, err) == -1) return -1;
    for (size_t i = 0; i < s->envc; i++) {
        const char *e = s->env[i];
        size_t n = 0;
        while ((e[n] >= 'A' && e[n] <= 'Z') || (e[n] >= 'a' && e[n] <= 'z') || e[n] == '_' ||
               (n > 0 && e[n] >= '0' && e[n] <= '9'))
            n++;
        if (n == 0 || e[n] != '=')
            return krx_fail(err, "env[%zu]: \"%.32s\" is not NAME=value", i, e);
    }
    return 0;
}

static int parse_ids(const struct json *doc, struct krx_spec *s, struct krx_err *err) {
    unsigned long long uid, gid, host_uid, host_gid;
    if (get_uint(doc, "uid", "uid", 1, 65534, &uid, err) == -1 ||
        get_uint(doc, "gid", "gid", 1, 65534, &gid, err) == -1 ||
        /* Never root outside: mapping the sandbox to host root would undo the user namespace. */
        get_uint(doc, "host_uid", "host_uid", 1, 4294967294ULL, &host_uid, err) == -1 ||
        get_uint(doc, "host_gid", "host_gid", 1, 4294967294ULL, &host_gid, err) == -1)
        return -1;
    s->uid = (uid_t)uid;
    s->gid = (gid_t)gid;
    s->host_uid = (uid_t)host_uid;
    s->host_gid = (gid_t)host_gid;
    return 0;
}

static int parse_hostname(const struct json *doc, struct krx_spec *s, struct krx_err *err) {
    const struct json *v = need(doc, "hostname", JSON_STRING, "hostname", err);
    if (v == NULL) return -1;
    const char *h = v->u.str.s;
    size_t n = strlen(h);
    bool ok = n >= 1 && n <= 63 && ((h[0] >= 'a' && h[0] <= 'z') || (h[0] >= '0' && h[0] <= '9'));
    for (size_t i = 0; ok && i < n; i++)
        ok = (h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9') || h[i] == '-';
    if (!ok) return krx_fail(err, "hostname: must match [a-z0-9][a-z0-9-]{0,62}");
    s->hostname = h;
    return 0;
}

static int parse_files(const struct json *mounts, struct krx_spec *s, struct krx_err *err) {
    static const char *const file_keys[] = {"path", "content", NULL};
    static const char *const not_under[] = {KRX_SANDBOX_WORKSPACE, KRX_SANDBOX_TMP, "/dev",
                                            "/proc"};
    const struct json *arr = need(mounts, "files", JSON_ARRAY, "mounts.files", err);
    if (arr == NULL) return -1;
    if (arr->u.items.count > MAX_FILES)
        return krx_fail(err, "mounts.files: more than %d entries", MAX_FILES);
    s->mounts.files = calloc(arr->u.items.count + 1, sizeof *s->mounts.files);
    if (s->mounts.files == NULL) return krx_fail(err, "mounts.files: out of memory");
    size_t i = 0;
    for (const struct json *f = arr->u.items.first; f != NULL; f = f->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "mounts.files[%zu]", i);
        if (f->type != JSON_OBJECT) return type_error(where, "an object", f, err);
        if (only_keys(f, where, file_keys, err) == -1) return -1;
        struct krx_spec_file *out = &s->mounts.files[i];
        char field[80];
        snprintf(field, sizeof field, "%s.path", where);
        if (get_path(f, "path", field, &out->path, err) == -1) return -1;
        if (strcmp(out->path, "/") == 0) return krx_fail(err, "%s: must name a file", field);
        for (size_t k = 0; k < sizeof not_under / sizeof not_under[0]; k++)
            if (path_within(out->path, not_under[k]))
                return krx_fail(err, "%s: \"%.64s\" is inside %s, which is its own mount", field,
                                out->path, not_under[k]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(out->path, s->mounts.files[j].path) == 0)
                return krx_fail(err, "%s: \"%.64s\" is listed twice", field, out->path);
        snprintf(field, sizeof field, "%s.content", where);
        const struct json *c = need(f, "content", JSON_STRING, field, err);
        if (c == NULL) return -1;
        if (c->u.str.len > MAX_FILE_BYTES)
            return krx_fail(err, "%s: longer than %d bytes", field, MAX_FILE_BYTES);
        out->content = c->u.str.s;
        out->content_len = c->u.str.len;
    }
    s->mounts.files_count = i;
    return 0;
}

static int parse_mounts(const struct json *doc, struct krx_spec *s, struct krx_err *err) {
    static const char *const keys[] = {"workspace", "ro_binds", "ro_overlays", "files", "tmp_mb",
                                       NULL};
    const struct json *m = need(doc, "mounts", JSON_OBJECT, "mounts", err);
    if (m == NULL || only_keys(m, "mounts", keys, err) == -1) return -1;
    if (get_path(m, "workspace", "mounts.workspace", &s->mounts.workspace, err) == -1) return -1;
    if (strcmp(s->mounts.workspace, "/") == 0)
        return krx_fail(err, "mounts.workspace: must not be \"/\"");
    if (get_paths(m, "ro_binds", "mounts.ro_binds", MAX_RO_BINDS, &s->mounts.ro_binds,
                  &s->mounts.ro_binds_count, err) == -1)
        return -1;
    for (size_t i = 0; i < s->mounts.ro_binds_count; i++) {
        const char *p = s->mounts.ro_binds[i];
        /* These are the sandbox's own mounts; a host path there would be hidden or would hide. */
        if (strcmp(p, "/") == 0 || path_within(p, KRX_SANDBOX_WORKSPACE) ||
            path_within(p, KRX_SANDBOX_TMP) || path_within(p, "/dev") || path_within(p, "/proc"))
            return krx_fail(err, "mounts.ro_binds[%zu]: \"%.64s\" may not be bound", i, p);
    }
    if (get_paths(m, "ro_overlays", "mounts.ro_overlays", MAX_RO_OVERLAYS, &s->mounts.ro_overlays,
                  &s->mounts.ro_overlays_count, err) == -1)
        return -1;
    for (size_t i = 0; i < s->mounts.ro_overlays_count; i++) {
        const char *p = s->mounts.ro_overlays[i];
        if (!path_within(p, KRX_SANDBOX_WORKSPACE) || strcmp(p, KRX_SANDBOX_WORKSPACE) == 0)
            return krx_fail(err, "mounts.ro_overlays[%zu]: \"%.64s\" is not under /workspace/",
                            i, p);
    }
    if (parse_files(m, s, err) == -1) return -1;
    unsigned long long tmp_mb;
    if (get_uint(m, "tmp_mb", "mounts.tmp_mb", 1, 65536, &tmp_mb, err) == -1) return -1;
    s->mounts.tmp_mb = (unsigned)tmp_mb;
    return 0;
}

static int parse_network(const struct json *doc, struct krx_spec *s, struct krx_err *err) {
    static const char *const keys[] = {"relay_port", "proxy_socket", NULL};
    const struct json *n = json_get(doc, "network");
    if (n != NULL && n->type == JSON_NULL) return 0;
    if (n == NULL || n->type != JSON_OBJECT)
        return type_error("network", "null or an object", n, err);
    if (only_keys(n, "network", keys, err) == -1) return -1;
    unsigned long long port;
    if (get_uint(n, "relay_port", "network.relay_port", 1, 65535, &port, err) == -1) return -1;
    if (get_path(n, "proxy_socket", "network.proxy_socket", &s->network.proxy_socket, err) == -1)
        return -1;
    if (strlen(s->network.proxy_socket) > MAX_SUN_PATH)
        return krx_fail(err, "network.proxy_socket: longer than %d bytes (sun_path)", MAX_SUN_PATH);
    s->network.enabled = true;
    s->network.relay_port = (unsigned)port;
    return 0;
}

static int parse_limits(const struct json *doc, struct krx_spec *s, struct krx_err *err) {
    static const char *const keys[] = {"wall_ms",    "cpu_s",           "memory_bytes", "pids",
                                       "open_files", "file_size_bytes", NULL};
    const struct json *l = need(doc, "limits", JSON_OBJECT, "limits", err);
    if (l == NULL || only_keys(l, "limits", keys, err) == -1) return -1;
    struct krx_spec_limits *o = &s->limits;
    if (get_uint(l, "wall_ms", "limits.wall_ms", 1, 86400000ULL, &o->wall_ms, err) == -1 ||
        get_uint(l, "cpu_s", "limits.cpu_s", 1, 86400, &o->cpu_s, err) == -1 ||
        get_uint(l, "memory_bytes", "limits.memory_bytes", 16ULL << 20, 64ULL << 30,
                 &o->memory_bytes, err) == -1 ||
        get_uint(l, "pids", "limits.pids", 1, 32768, &o->pids, err) == -1 ||
        get_uint(l, "open_files", "limits.open_files", 16, 65536, &o->open_files, err) == -1 ||
        get_uint(l, "file_size_bytes", "limits.file_size_bytes", 1, 64ULL << 30,
                 &o->file_size_bytes, err) == -1)
        return -1;
    return 0;
}

static int parse_cgroup(const struct json *doc, struct krx_spec *s, struct krx_err *err) {
    const struct json *c = json_get(doc, "cgroup");
    if (c != NULL && c->type == JSON_NULL) return 0;
    if (c == NULL || c->type != JSON_STRING)
        return type_error("cgroup", "null or a string", c, err);
    if (get_path(doc, "cgroup", "cgroup", &s->cgroup, err) == -1) return -1;
    if (!path_within(s->cgroup, "/sys/fs/cgroup") || strcmp(s->cgroup, "/sys/fs/cgroup") == 0)
        return krx_fail(err, "cgroup: \"%.64s\" is not a directory under /sys/fs/cgroup/",
                        s->cgroup);
    return 0;
}

/* Rules that tie fields together: what one layer needs from another. */
static int check_coherence(const struct krx_spec *s, struct krx_err *err) {
    if (s->network.enabled && !spec_has_layer(s, KRX_LAYER_NET))
        return krx_fail(err, "network: a relay needs the \"net\" layer (its own namespace)");
    if ((s->cgroup != NULL) != spec_has_layer(s, KRX_LAYER_CGROUP))
        return krx_fail(err, "cgroup: set exactly when \"cgroup\" is in layers");
    /* Landlock and seccomp filters can only be installed without privilege after no_new_privs. */
    if ((spec_has_layer(s, KRX_LAYER_LANDLOCK) || spec_has_layer(s, KRX_LAYER_SECCOMP)) &&
        !spec_has_layer(s, KRX_LAYER_NO_NEW_PRIVS))
        return krx_fail(err, "layers: \"landlock\" and \"seccomp\" need \"no_new_privs\"");
    if (!path_within(s->cwd, KRX_SANDBOX_WORKSPACE))
        return krx_fail(err, "cwd: \"%.64s\" is not /workspace or below", s->cwd);
    return 0;
}

int spec_parse(const char *text, size_t len, struct krx_spec *s, struct krx_err *err) {
    static const char *const keys[] = {"version",  "argv",     "env",    "cwd",    "uid",
                                       "gid",      "host_uid", "host_gid", "hostname", "layers",
                                       "mounts",   "network",  "limits", "cgroup", NULL};
    memset(s, 0, sizeof *s);
    /* The document is never freed: the spec points into it for the life of the process. */
    struct json *doc = json_parse(text, len, err);
    if (doc == NULL) return -1;
    if (doc->type != JSON_OBJECT) return type_error("spec", "an object", doc, err);

    /* The version first: a future format should be reported as such, not as unknown keys. */
    const struct json *version = json_get(doc, "version");
    if (version == NULL || version->type != JSON_INT || version->u.i != KRX_SPEC_VERSION)
        return krx_fail(err, "version: this helper reads spec version %d only", KRX_SPEC_VERSION);
    s->version = KRX_SPEC_VERSION;

    if (only_keys(doc, "spec", keys, err) == -1 || parse_argv_env(doc, s, err) == -1 ||
        get_path(doc, "cwd", "cwd", &s->cwd, err) == -1 || parse_ids(doc, s, err) == -1 ||
        parse_hostname(doc, s, err) == -1 || parse_layers(doc, s, err) == -1 ||
        parse_mounts(doc, s, err) == -1 || parse_network(doc, s, err) == -1 ||
        parse_limits(doc, s, err) == -1 || parse_cgroup(doc, s, err) == -1 ||
        check_coherence(s, err) == -1)
        return -1;
    return 0;
}

int spec_read(int fd, struct krx_spec *spec, struct krx_err *err) {
    char *buf = malloc(KRX_SPEC_MAX_BYTES + 1);
    if (buf == NULL) return krx_fail(err, "malloc(%d) for the spec", KRX_SPEC_MAX_BYTES + 1);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, KRX_SPEC_MAX_BYTES + 1 - len);
        if (n == -1 && errno == EINTR) continue;
        if (n == -1) {
            krx_fail_errno(err, "read(%d) of the spec", fd);
            free(buf);
            return -1;
        }
        if (n == 0) break;
        len += (size_t)n;
        if (len > KRX_SPEC_MAX_BYTES) {
            free(buf);
            return krx_fail(err, "spec on fd %d is longer than %d bytes", fd, KRX_SPEC_MAX_BYTES);
        }
    }
    int rc = spec_parse(buf, len, spec, err);
    free(buf);
    return rc;
}
