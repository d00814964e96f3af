/* UUIDv7: format, version and variant bits, and strict ordering across threads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "check.h"
#include "certrelay/uuid.h"

#define PER_THREAD 5000
#define THREADS    4

static char ids[THREADS][PER_THREAD][CRS_UUID_STRLEN + 1];

static void worker(void *arg)
{
    intptr_t t = (intptr_t)arg;
    int i;

    for (i = 0; i < PER_THREAD; i++)
        crs_uuid7(ids[t][i]);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

int main(void)
{
    uv_thread_t th[THREADS];
    char *all;
    long t;
    int i, dups = 0, unordered = 0;

    for (t = 0; t < THREADS; t++)
        uv_thread_create(&th[t], worker, (void *)(intptr_t)t);
    for (t = 0; t < THREADS; t++)
        uv_thread_join(&th[t]);

    CHECK(crs_uuid_valid(ids[0][0]));
    CHECK(ids[0][0][14] == '7');
    CHECK(strchr("89ab", ids[0][0][19]) != NULL);
    for (t = 0; t < THREADS; t++)
        for (i = 1; i < PER_THREAD; i++)
            if (strcmp(ids[t][i - 1], ids[t][i]) >= 0)
                unordered++;
    CHECK_EQ_INT(unordered, 0);

    all = malloc(sizeof(ids));
    memcpy(all, ids, sizeof(ids));
    qsort(all, THREADS * PER_THREAD, CRS_UUID_STRLEN + 1, cmp);
    for (i = 1; i < THREADS * PER_THREAD; i++)
        if (strcmp(all + (size_t)(i - 1) * (CRS_UUID_STRLEN + 1),
                   all + (size_t)i * (CRS_UUID_STRLEN + 1)) == 0)
            dups++;
    CHECK_EQ_INT(dups, 0);
    free(all);

    CHECK(!crs_uuid_valid(NULL));
    CHECK(!crs_uuid_valid(""));
    CHECK(!crs_uuid_valid("../../etc/passwd-0000-0000-0000-00000"));
    CHECK(!crs_uuid_valid("0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f101"));
    CHECK(!crs_uuid_valid("0190a0b0xc0d0-7e0f-8a0b-0c0d0e0f1011"));
    CHECK(crs_uuid_valid("0190A0B0-C0D0-7E0F-8A0B-0C0D0E0F1011"));
    return CHECK_DONE();
}
