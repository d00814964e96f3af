#ifndef CERTRELAY_THREAD_H
#define CERTRELAY_THREAD_H

/*
 * A plain (non-recursive) mutex: a pthread mutex on Unix, an SRWLOCK on Windows (lib/unix/thread.c,
 * lib/win/thread.c). CRS_MUTEX_INIT initializes one statically, so a process-wide lock needs no
 * "once". Locking a mutex that is not initialized, or unlocking one not held, is a bug: the process
 * aborts as libuv's mutexes do.
 */
#ifdef _WIN32
typedef struct crs_mutex {
    void *opaque; /* an SRWLOCK: one pointer, SRWLOCK_INIT is all zero */
} crs_mutex_t;
#define CRS_MUTEX_INIT                                                                             \
    {                                                                                              \
        0                                                                                          \
    }
#else
#include <pthread.h>
typedef struct crs_mutex {
    pthread_mutex_t m;
} crs_mutex_t;
#define CRS_MUTEX_INIT                                                                             \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER                                                                  \
    }
#endif

/* 0 or a negative CRS_E* code. */
int crs_mutex_init(crs_mutex_t *m);
/* Destroys an unlocked mutex; NULL is ok. */
void crs_mutex_destroy(crs_mutex_t *m);
void crs_mutex_lock(crs_mutex_t *m);
void crs_mutex_unlock(crs_mutex_t *m);

#endif
