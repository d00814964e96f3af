/* Mutexes on Unix (include/certrelay/thread.h): pthread mutexes, aborting on misuse. */
#include <stdlib.h>
#include "certrelay/error.h"
#include "certrelay/thread.h"

int crs_mutex_init(crs_mutex_t *m)
{
    if (m == NULL)
        return CRS_EINVAL;
    return pthread_mutex_init(&m->m, NULL) == 0 ? 0 : CRS_ENOMEM;
}

void crs_mutex_destroy(crs_mutex_t *m)
{
    if (m != NULL && pthread_mutex_destroy(&m->m) != 0)
        abort();
}

void crs_mutex_lock(crs_mutex_t *m)
{
    if (pthread_mutex_lock(&m->m) != 0)
        abort();
}

void crs_mutex_unlock(crs_mutex_t *m)
{
    if (pthread_mutex_unlock(&m->m) != 0)
        abort();
}
