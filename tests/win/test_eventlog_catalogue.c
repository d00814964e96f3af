/*
 * The Event Log catalogue against the compiled message tables (under Wine): every id of
 * include/certrelay/msgid.h, with the severity bits lib/win/eventlog.c gives it, resolves in the
 * message table of each binary given on the command line (certrelayd.exe, certrelay_exit.dll),
 * and FormatMessage puts each of its inserts into the text, as Event Viewer does.
 *
 *   test_eventlog_catalogue.exe PATH...
 */
#include <stdio.h>
#include <wchar.h>
#include <windows.h>

#include "certrelay/msgid.h"
#include "check.h"

struct entry {
    const char *name;
    unsigned id, sev, ninserts;
};

static const struct entry entries[] = {
#define ENTRY_(name, id, sev, n) {#name, id, CRS_MSGID_SEV_##sev, n},
    CRS_MSGID_MAP(ENTRY_)
#undef ENTRY_
};

/* A Unix path from CTest becomes a Z: path for Wine. */
static void win_path(const char *in, WCHAR *out, size_t cap)
{
    size_t i = 0, j = 0;

    if (in[0] == '/' && cap > 2) {
        out[j++] = L'Z';
        out[j++] = L':';
    }
    for (; in[i] != '\0' && j + 1 < cap; i++)
        out[j++] = in[i] == '/' ? L'\\' : (WCHAR)(unsigned char)in[i];
    out[j] = L'\0';
}

static void check_module(const char *path)
{
    WCHAR wpath[MAX_PATH];
    HMODULE m;
    size_t i;

    win_path(path, wpath, MAX_PATH);
    m = LoadLibraryExW(wpath, NULL, LOAD_LIBRARY_AS_DATAFILE);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "cannot load %s: %lu\n", path, (unsigned long)GetLastError());
        return;
    }
    for (i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        const struct entry *e = &entries[i];
        WCHAR ins[8][16];
        DWORD_PTR args[8];
        WCHAR *text = NULL;
        DWORD n;
        unsigned k;

        CHECK(e->ninserts <= 8);
        CHECK(crs_msgid_severity(e->id) == e->sev);
        for (k = 0; k < e->ninserts && k < 8; k++) {
            swprintf(ins[k], 16, L"<insert%u>", k + 1);
            args[k] = (DWORD_PTR)ins[k];
        }
        n = FormatMessageW(FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_ALLOCATE_BUFFER |
                               FORMAT_MESSAGE_ARGUMENT_ARRAY,
                           m, (DWORD)e->sev << 30 | e->id, 0, (LPWSTR)&text, 0,
                           (va_list *)args);
        CHECK(n > 0);
        if (n == 0) {
            fprintf(stderr, "%s: message %s (%u) not found: %lu\n", path, e->name, e->id,
                    (unsigned long)GetLastError());
            continue;
        }
        for (k = 0; k < e->ninserts; k++) {
            CHECK(wcsstr(text, ins[k]) != NULL);
            if (wcsstr(text, ins[k]) == NULL)
                fprintf(stderr, "%s: message %s lacks insert %u\n", path, e->name, k + 1);
        }
        /* An insert the table has but the code does not pass would show as "%N". */
        CHECK(wcschr(text, L'%') == NULL);
        LocalFree(text);
    }
    FreeLibrary(m);
}

int main(int argc, char **argv)
{
    int i;

    CHECK(argc >= 2);
    for (i = 1; i < argc; i++)
        check_module(argv[i]);
    return CHECK_DONE();
}
