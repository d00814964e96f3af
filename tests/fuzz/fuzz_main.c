/*
 * Corpus replayer: runs a fuzz target over every file named on the command line (or every file
 * in the directories named), so the corpus in tests/fuzz/corpus doubles as a regression suite
 * under ASan and UBSan without libFuzzer.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (f == NULL)
        return -1;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int i, files = 0, errors = 0;

    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *de;
            while (d != NULL && (de = readdir(d)) != NULL) {
                char path[4096];
                if (de->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                if (run_file(path) == 0)
                    files++;
                else
                    errors++;
            }
            if (d != NULL)
                closedir(d);
        } else if (run_file(argv[i]) == 0) {
            files++;
        } else {
            errors++;
        }
    }
    printf("%d passed, %d failed\n", files, errors);
    return errors || files == 0 ? 1 : 0;
}
