#include "mounts.h"

#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define KRX_MNT_SAFE (MS_NOSUID | MS_NODEV | MS_NOEXEC)

int mnt_make_private(struct krx_err *err) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1)
        return krx_fail_errno(err, "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE)");
    return 0;
}

int mnt_tmpfs(const char *target, const char *data, struct krx_err *err) {
    if (mount("tmpfs", target, "tmpfs", KRX_MNT_SAFE, data) == -1)
        return krx_fail_errno(err,
                              "mount(\"tmpfs\", \"%s\", \"tmpfs\", MS_NOSUID|MS_NODEV|MS_NOEXEC, \"%s\")",
                              target, data);
    return 0;
}

int mnt_remount_ro(const char *target, struct krx_err *err) {
    if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | KRX_MNT_SAFE, NULL) == -1)
        return krx_fail_errno(err,
                              "mount(NULL, \"%s\", NULL, "
                              "MS_BIND|MS_REMOUNT|MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC)",
                              target);
    return 0;
}

int mnt_probe(struct krx_err *err) {
    const char *target = "/tmp";
    if (mnt_make_private(err) == -1) return -1;
    if (mnt_tmpfs(target, "size=64k,mode=0755", err) == -1) return -1;
    if (mkdir("/tmp/rw", 0700) == -1)
        return krx_fail_errno(err, "mkdir(\"/tmp/rw\") on the new tmpfs");
    if (mnt_remount_ro(target, err) == -1) return -1;
    if (mkdir("/tmp/ro", 0700) == 0)
        return krx_fail(err, "mkdir(\"/tmp/ro\") succeeded on a mount remounted read-only");
    if (errno != EROFS)
        return krx_fail_errno(err, "mkdir(\"/tmp/ro\") on a read-only remount, not EROFS");
    return 0;
}
