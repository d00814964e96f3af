/*
 * The yardstick for the broker's durable ingest: the fastest a process can make records durable
 * on this disk with group commit, doing nothing else. C client threads each submit one record
 * (the bytes of a framed event) and wait until it is durable; one committer thread appends every
 * record submitted since its last commit with one write() and one fdatasync(), then wakes their
 * submitters. The broker does the same work plus decoding, SQLite and acks, so the ratio of its
 * rate to this one is the overhead of everything that is not the disk.
 *
 * usage: raw_group_commit DIR RECORD_BYTES RECORDS CONCURRENCY
 * prints: raw_group_commit concurrency=C records=N seconds=S rate=R/s commits=K
 */
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
    long submitted; /* sequence number of the last record submitted */
    long taken;     /* last record taken into a commit */
    long durable;   /* last record made durable */
    long commits;
    int stop;
    char *batch;
    long batch_cap;
};

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
        if (write(gc->fd, gc->batch, bytes) != (ssize_t)bytes || fdatasync(gc->fd) != 0) {
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

    if (argc != 5) {
        fprintf(stderr, "usage: %s DIR RECORD_BYTES RECORDS CONCURRENCY\n", argv[0]);
        return 2;
    }
    memset(&gc, 0, sizeof(gc));
    gc.record_bytes = (size_t)atol(argv[2]);
    records = atol(argv[3]);
    conc = atol(argv[4]);
    if (gc.record_bytes == 0 || records <= 0 || conc <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/raw_group_commit.log", argv[1]);
    gc.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (gc.fd < 0) {
        perror(path);
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
    printf("raw_group_commit concurrency=%ld records=%ld seconds=%.3f rate=%.0f/s commits=%ld\n",
           conc, records, secs, (double)records / secs, gc.commits);
    close(gc.fd);
    unlink(path);
    free(clients);
    free(gc.batch);
    return 0;
}
