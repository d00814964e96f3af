/*
 * The yardstick for the broker's durable ingest: the fastest a process can make records durable
 * on this disk with group commit, doing nothing else. C client threads each submit one record
 * (the bytes of a framed event) and wait until it is durable; one committer thread appends every
 * record submitted since its last commit with one write() and one fdatasync(), then wakes their
 * submitters. The broker does the same work plus decoding, SQLite and acks, so the ratio of its
 * rate to this one is the overhead of everything that is not the disk.
 *
 * The fsync discipline is the broker's: SQLite appends to its write-ahead log until a checkpoint,
 * then starts again at the log's beginning and overwrites it (journal_size_limit keeps 64 MiB), so
 * in steady state each commit is a write into blocks the file already has plus fdatasync(), which
 * need not commit the file system's journal. By default the yardstick does the same: it fills a
 * 64 MiB file before the clock starts and writes through it in a ring. --append writes at the
 * end of a growing file instead (the first version of this benchmark; fdatasync must then also
 * make the new size durable, which costs a journal commit each time on ext4).
 *
 * usage: raw_group_commit DIR RECORD_BYTES RECORDS CONCURRENCY [--append]
 * prints: raw_group_commit concurrency=C records=N seconds=S rate=R/s commits=K mode=ring|append
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

struct gc {
    uv_mutex_t mu;
    uv_cond_t submitted_cv;
    uv_cond_t committed;
    int fd;
    size_t record_bytes;
    int append;     /* --append: a growing file; else a ring through RING_BYTES already written */
    off_t offset;   /* the ring's write position */
    long submitted; /* sequence number of the last record submitted */
    long taken;     /* last record taken into a commit */
    long durable;   /* last record made durable */
    long commits;
    int stop;
    char *batch;
    long batch_cap;
};

#define RING_BYTES (64L * 1024 * 1024)

/* Writes all of buf at the ring's position (or appends), retrying short writes. */
static int gc_write(struct gc *gc, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n;

        if (gc->append) {
            n = write(gc->fd, buf, len);
        } else {
            if (gc->offset + (off_t)len > RING_BYTES)
                gc->offset = 0;
            n = pwrite(gc->fd, buf, len, gc->offset);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (!gc->append)
            gc->offset += n;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Fills the ring's file before the clock starts, as the write-ahead log is after a checkpoint. */
static int gc_prefill(struct gc *gc)
{
    static char zeros[1 << 20];
    long done;

    for (done = 0; done < RING_BYTES; done += (long)sizeof(zeros))
        if (write(gc->fd, zeros, sizeof(zeros)) != (ssize_t)sizeof(zeros))
            return -1;
    return fsync(gc->fd);
}

struct client {
    struct gc *gc;
    long count;
    uv_thread_t th;
};

static void committer(void *arg)
{
    struct gc *gc = arg;

    uv_mutex_lock(&gc->mu);
    for (;;) {
        long n;
        size_t bytes;

        long upto;

        while (gc->submitted == gc->taken && !gc->stop)
            uv_cond_wait(&gc->submitted_cv, &gc->mu);
        if (gc->submitted == gc->taken && gc->stop)
            break;
        upto = gc->submitted;
        n = upto - gc->taken;
        gc->taken = upto;
        uv_mutex_unlock(&gc->mu);

        /* The records' bytes: copied into one buffer as a real log writer would. */
        bytes = (size_t)n * gc->record_bytes;
        if (n > gc->batch_cap) {
            gc->batch = realloc(gc->batch, bytes);
            gc->batch_cap = n;
        }
        memset(gc->batch, 'x', bytes);
        if (gc_write(gc, gc->batch, bytes) != 0 || fdatasync(gc->fd) != 0) {
            perror("write/fdatasync");
            exit(1);
        }

        uv_mutex_lock(&gc->mu);
        gc->durable = upto;
        gc->commits++;
        uv_cond_broadcast(&gc->committed);
    }
    uv_mutex_unlock(&gc->mu);
}

static void client(void *arg)
{
    struct client *c = arg;
    struct gc *gc = c->gc;
    long i;

    for (i = 0; i < c->count; i++) {
        long seq;

        uv_mutex_lock(&gc->mu);
        seq = ++gc->submitted;
        uv_cond_signal(&gc->submitted_cv);
        while (gc->durable < seq)
            uv_cond_wait(&gc->committed, &gc->mu);
        uv_mutex_unlock(&gc->mu);
    }
}

int main(int argc, char **argv)
{
    struct gc gc;
    struct client *clients;
    uv_thread_t comm;
    char path[4096];
    long records, conc, i;
    uint64_t t0, t1;
    double secs;

    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "--append") == 0)) {
        fprintf(stderr, "usage: %s DIR RECORD_BYTES RECORDS CONCURRENCY [--append]\n", argv[0]);
        return 2;
    }
    memset(&gc, 0, sizeof(gc));
    gc.append = argc == 6;
    gc.record_bytes = (size_t)atol(argv[2]);
    records = atol(argv[3]);
    conc = atol(argv[4]);
    if (gc.record_bytes == 0 || records <= 0 || conc <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/raw_group_commit.log", argv[1]);
    gc.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (gc.append ? O_APPEND : 0), 0600);
    if (gc.fd < 0) {
        perror(path);
        return 1;
    }
    if (!gc.append && gc_prefill(&gc) != 0) {
        perror("prefill");
        return 1;
    }
    uv_mutex_init(&gc.mu);
    uv_cond_init(&gc.submitted_cv);
    uv_cond_init(&gc.committed);
    clients = calloc((size_t)conc, sizeof(*clients));

    t0 = uv_hrtime();
    uv_thread_create(&comm, committer, &gc);
    for (i = 0; i < conc; i++) {
        clients[i].gc = &gc;
        clients[i].count = records / conc + (i < records % conc ? 1 : 0);
        uv_thread_create(&clients[i].th, client, &clients[i]);
    }
    for (i = 0; i < conc; i++)
        uv_thread_join(&clients[i].th);
    t1 = uv_hrtime();
    uv_mutex_lock(&gc.mu);
    gc.stop = 1;
    uv_cond_signal(&gc.submitted_cv);
    uv_mutex_unlock(&gc.mu);
    uv_thread_join(&comm);

    secs = (double)(t1 - t0) / 1e9;
    printf("raw_group_commit concurrency=%ld records=%ld seconds=%.3f rate=%.0f/s commits=%ld "
           "mode=%s\n",
           conc, records, secs, (double)records / secs, gc.commits, gc.append ? "append" : "ring");
    close(gc.fd);
    unlink(path);
    free(clients);
    free(gc.batch);
    return 0;
}
