/*
 * The yardstick for the file-drop sink: the fastest a process can drop files durably in one
 * directory, with the same number of threads and the same durability as the sink and nothing else.
 * Each thread writes events; an event is a set of files of the sizes the sink writes for it (for a
 * certificate, the DER and the JSON document; for a CRL, the CRL and the JSON). Each file is made
 * exactly as crs_fs_write_new makes it: open a temporary name with O_EXCL, write, fsync, close,
 * link it to its final name, unlink the temporary, fsync the directory. The sink does that plus
 * rendering, name checks and the dispatcher's bookkeeping, so the ratio of its rate to this one is
 * the cost of everything that is not the disk.
 *
 * usage: raw_file_drop DIR THREADS EVENTS SIZE[,SIZE...]
 * prints: raw_file_drop threads=T events=N files_per_event=F bytes_per_event=B seconds=S rate=R/s
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define MAX_FILES 8

struct drop {
    const char *dir;
    size_t sizes[MAX_FILES];
    size_t nsizes;
    char *payload; /* the largest size, shared read-only by every thread */
    uv_mutex_t mu;
    long next;  /* next event number to take */
    long total; /* events to write */
    int failed;
};

struct worker {
    struct drop *d;
    uv_thread_t th;
};

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int drop_file(const struct drop *d, long ev, size_t k)
{
    char tmp[4096], final[4096];
    int fd, dfd, rc = 0;

    snprintf(final, sizeof(final), "%s/%ld-issued.%zu", d->dir, ev, k);
    snprintf(tmp, sizeof(tmp), "%s/.%ld-issued.%zu.%lx.tmp", d->dir, ev, k, (long)random());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (write_all(fd, d->payload, d->sizes[k]) != 0 || fsync(fd) != 0)
        rc = -1;
    if (close(fd) != 0)
        rc = -1;
    if (rc == 0 && link(tmp, final) != 0)
        rc = -1;
    unlink(tmp);
    if (rc != 0)
        return rc;
    dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    if (fsync(dfd) != 0)
        rc = -1;
    close(dfd);
    return rc;
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    struct drop *d = w->d;

    for (;;) {
        long ev;
        size_t k;

        uv_mutex_lock(&d->mu);
        ev = d->next < d->total && !d->failed ? d->next++ : -1;
        uv_mutex_unlock(&d->mu);
        if (ev < 0)
            return;
        for (k = 0; k < d->nsizes; k++) {
            if (drop_file(d, ev, k) != 0) {
                perror("raw_file_drop");
                uv_mutex_lock(&d->mu);
                d->failed = 1;
                uv_mutex_unlock(&d->mu);
                return;
            }
        }
    }
}

int main(int argc, char **argv)
{
    struct drop d;
    struct worker *w;
    size_t max = 0, bytes = 0, k;
    unsigned threads, i;
    char *sizes, *tok, *save = NULL;
    uint64_t t0;
    double secs;

    if (argc != 5) {
        fprintf(stderr, "usage: raw_file_drop DIR THREADS EVENTS SIZE[,SIZE...]\n");
        return 2;
    }
    memset(&d, 0, sizeof(d));
    d.dir = argv[1];
    threads = (unsigned)strtoul(argv[2], NULL, 10);
    d.total = strtol(argv[3], NULL, 10);
    sizes = argv[4];
    for (tok = strtok_r(sizes, ",", &save); tok != NULL && d.nsizes < MAX_FILES;
         tok = strtok_r(NULL, ",", &save)) {
        d.sizes[d.nsizes] = (size_t)strtoul(tok, NULL, 10);
        if (d.sizes[d.nsizes] > max)
            max = d.sizes[d.nsizes];
        bytes += d.sizes[d.nsizes++];
    }
    if (threads == 0 || threads > 256 || d.total <= 0 || d.nsizes == 0 || max > (1u << 30)) {
        fprintf(stderr, "raw_file_drop: bad arguments\n");
        return 2;
    }
    d.payload = malloc(max ? max : 1);
    w = calloc(threads, sizeof(*w));
    if (d.payload == NULL || w == NULL) {
        fprintf(stderr, "raw_file_drop: out of memory\n");
        return 1;
    }
    for (k = 0; k < max; k++)
        d.payload[k] = (char)('a' + k % 26);
    if (mkdir(d.dir, 0700) != 0 && errno != EEXIST) {
        perror(d.dir);
        return 1;
    }
    uv_mutex_init(&d.mu);
    t0 = uv_hrtime();
    for (i = 0; i < threads; i++) {
        w[i].d = &d;
        uv_thread_create(&w[i].th, worker_main, &w[i]);
    }
    for (i = 0; i < threads; i++)
        uv_thread_join(&w[i].th);
    secs = (double)(uv_hrtime() - t0) / 1e9;
    if (d.failed)
        return 1;
    printf("raw_file_drop threads=%u events=%ld files_per_event=%zu bytes_per_event=%zu "
           "seconds=%.3f rate=%.1f/s\n",
           threads, d.total, d.nsizes, bytes, secs, (double)d.total / secs);
    uv_mutex_destroy(&d.mu);
    free(d.payload);
    free(w);
    return 0;
}
