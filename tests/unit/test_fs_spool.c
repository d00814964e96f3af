/* Durable files and the spool, on a real temporary directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/fs.h"
#include "certrelay/spool.h"
#include "certrelay/uuid.h"

static char base[256];

static void rm_rf(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", path);
}

static void test_atomic_write(void)
{
    char *dir = crs_path_join(base, "a/b/c");
    char *path;
    uint8_t *data = NULL;
    size_t len = 0, n = 0;
    char **list = NULL;

    CHECK_EQ_INT(crs_fs_mkdirs(dir), 0);
    CHECK_EQ_INT(crs_fs_mkdirs(dir), 0);
    CHECK_EQ_INT(crs_fs_write_atomic(dir, "x.json", "{}", 2), 0);
    CHECK_EQ_INT(crs_fs_write_atomic2(dir, "x.json", "hello ", 6, "world", 5), 0);
    path = crs_path_join(dir, "x.json");
    CHECK_EQ_INT(crs_fs_read_all(path, 1024, &data, &len), 0);
    CHECK_EQ_INT(len, 11);
    CHECK(data != NULL && memcmp(data, "hello world", 11) == 0);
    crs_free(data);
    CHECK_EQ_INT(crs_fs_read_all(path, 5, &data, &len), CRS_ETOOBIG);
    CHECK(data == NULL);

    /* No temporary file is left behind, and names with separators are refused. */
    CHECK_EQ_INT(crs_fs_write_atomic(dir, "../escape", "x", 1), CRS_EINVAL);
    CHECK_EQ_INT(crs_fs_list(dir, "", &list, &n), 0);
    CHECK_EQ_INT(n, 1);
    CHECK(list != NULL && strcmp(list[0], "x.json") == 0);
    crs_fs_list_free(list);

    CHECK_EQ_INT(crs_fs_unlink_durable(dir, "x.json"), 0);
    CHECK_EQ_INT(crs_fs_unlink_durable(dir, "x.json"), CRS_ENOENT);
    CHECK_EQ_INT(crs_fs_read_all(path, 1024, &data, &len), CRS_ENOENT);

    /* A directory path that runs through a regular file fails cleanly. */
    CHECK_EQ_INT(crs_fs_write_atomic(dir, "file", "x", 1), 0);
    {
        char *bad = crs_path_join(dir, "file/sub");
        CHECK(crs_fs_mkdirs(bad) != 0);
        CHECK(crs_fs_write_atomic(bad, "y", "x", 1) != 0);
        crs_free(bad);
    }
    crs_free(path);
    crs_free(dir);
}

static void test_spool(void)
{
    Certrelay__V1__Event ev = CERTRELAY__V1__EVENT__INIT;
    Certrelay__V1__Event *back = NULL;
    char id[CRS_UUID_STRLEN + 1];
    char *dir = crs_path_join(base, "spool");
    char **list = NULL;
    uint8_t *packed = NULL, *read = NULL;
    size_t plen, rlen, n = 0;
    char *path;
    FILE *f;

    crs_uuid7(id);
    ev.event_id = id;
    ev.has_kind = 1;
    ev.kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_CRL_ISSUED;
    CHECK_EQ_INT(crs_event_pack(&ev, &packed, &plen), 0);
    CHECK_EQ_INT(crs_spool_write(dir, id, packed, plen), 0);
    /* Spooling the same event again rewrites the same file. */
    CHECK_EQ_INT(crs_spool_write(dir, id, packed, plen), 0);
    CHECK_EQ_INT(crs_spool_write(dir, "../../evil", packed, plen), CRS_EINVAL);
    CHECK_EQ_INT(crs_fs_list(dir, CRS_SPOOL_SUFFIX, &list, &n), 0);
    CHECK_EQ_INT(n, 1);
    path = crs_path_join(dir, list[0]);
    CHECK_EQ_INT(crs_spool_read(path, &read, &rlen), 0);
    CHECK_EQ_INT(crs_event_unpack(read, rlen, &back), 0);
    CHECK(back != NULL && strcmp(back->event_id, id) == 0);
    crs_event_free(back);
    crs_free(read);

    /* A truncated spool file is reported as corrupt, not half-read. */
    f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK_EQ_INT(ftruncate(fileno(f), 6), 0);
        fclose(f);
    }
    CHECK_EQ_INT(crs_spool_read(path, &read, &rlen), CRS_EPROTO);
    CHECK(read == NULL);

    crs_free(path);
    crs_fs_list_free(list);
    crs_free(packed);
    crs_free(dir);
}

static void test_alloc_failures(void)
{
    long n;
    char *dir = crs_path_join(base, "faults");

    for (n = 0; n < 10; n++) {
        int rc;
        crs_alloc_fail_after(n);
        rc = crs_fs_write_atomic(dir, "f", "x", 1);
        crs_alloc_fail_after(-1);
        CHECK(rc == 0 || rc == CRS_ENOMEM || rc == CRS_ENOENT);
        crs_fs_mkdirs(dir);
    }
    crs_free(dir);
}

int main(void)
{
    snprintf(base, sizeof(base), "/tmp/crs-test-fs-%ld", (long)getpid());
    rm_rf(base);
    test_atomic_write();
    test_spool();
    test_alloc_failures();
    rm_rf(base);
    return CHECK_DONE();
}
