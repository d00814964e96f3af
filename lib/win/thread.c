/* Mutexes on Windows (include/certrelay/thread.h): slim reader/writer locks taken exclusively.
 * They need no cleanup and are statically initialized by zeroing, which CRS_MUTEX_INIT does. */
#include <windows.h>
#include "certrelay/error.h"
#include "certrelay/thread.h"

_Static_assert(sizeof(SRWLOCK) == sizeof(crs_mutex_t), "crs_mutex_t holds one SRWLOCK");

static SRWLOCK *srw(crs_mutex_t *m)
{
    return (SRWLOCK *)(void *)&m->opaque;
}

int crs_mutex_init(crs_mutex_t *m)
{
    if (m == NULL)
        return CRS_EINVAL;
    InitializeSRWLock(srw(m));
    return 0;
}

void crs_mutex_destroy(crs_mutex_t *m)
{
    (void)m; /* an SRWLOCK owns no resources */
}

void crs_mutex_lock(crs_mutex_t *m)
{
    AcquireSRWLockExclusive(srw(m));
}

void crs_mutex_unlock(crs_mutex_t *m)
{
    ReleaseSRWLockExclusive(srw(m));
}
