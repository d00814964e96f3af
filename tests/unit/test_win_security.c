/*
 * Tests of CertRelay's Windows security descriptors, run under Wine in the Windows build:
 * the service SID computation (lib/win/svcacct.c), the pipe's descriptor (broker/win/pipe_auth.c)
 * and the private directories and their checks (lib/win/secdir.c).
 *
 * Wine keeps the descriptors given to pipes, and models file security from the Unix mode bits
 * (every file is owned by the one Wine account); the descriptor logic itself is tested on
 * descriptors built from SDDL, where Wine is not involved beyond parsing.
 */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/secret.h"
#include "certrelay/win/secdir.h"
#include "certrelay/win/svcacct.h"
#include "check.h"
#include "win/pipe_auth.h"

/* The SID of NT SERVICE\CertRelay, computed independently (Python: SHA-1 of the upper-cased
 * UTF-16LE name, five little-endian words). */
#define CERTRELAY_SID L"S-1-5-80-3240183533-1807394619-1967779862-2703597511-2939717414"

static void sid_of(const WCHAR *service, WCHAR *out, size_t cap)
{
    BYTE sid[SECURITY_MAX_SID_SIZE];

    out[0] = L'\0';
    CHECK_EQ_INT(crs_win_service_sid(service, (PSID)sid, sizeof(sid)), 0);
    CHECK_EQ_INT(crs_win_sid_string((PSID)sid, out, cap), 0);
}

static void test_service_sid(void)
{
    WCHAR s[192];

    /* TrustedInstaller's SID is a published constant: the algorithm's independent check. */
    sid_of(L"TrustedInstaller", s, 192);
    CHECK(wcscmp(s, L"S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464") == 0);
    sid_of(L"CertRelay", s, 192);
    CHECK(wcscmp(s, CERTRELAY_SID) == 0);
    sid_of(L"certrelay", s, 192); /* the SCM upper-cases the name */
    CHECK(wcscmp(s, CERTRELAY_SID) == 0);
    CHECK_EQ_INT(crs_win_service_sid(L"", (PSID)s, sizeof(s)), CRS_EINVAL);
    CHECK_EQ_INT(crs_win_service_sid(NULL, (PSID)s, sizeof(s)), CRS_EINVAL);
}

static void test_pipe_sddl(void)
{
    WCHAR sddl[512];

    CHECK_EQ_INT(crs_pipe_sddl(L"CertRelay", NULL, sddl, 512), 0);
    CHECK(wcsncmp(sddl, L"D:P", 3) == 0);         /* protected: nothing inherited */
    CHECK(wcsstr(sddl, L"(D;;GA;;;NU)") != NULL); /* no remote client */
    CHECK(wcsstr(sddl, L"(A;;GA;;;SY)") != NULL);
    CHECK(wcsstr(sddl, L"(A;;GA;;;BA)") != NULL);
    CHECK(wcsstr(sddl, L"(A;;GA;;;" CERTRELAY_SID L")") != NULL);
    CHECK(wcsstr(sddl, L";WD)") == NULL && wcsstr(sddl, L";AN)") == NULL);
    CHECK_EQ_INT(crs_pipe_sddl(L"CertRelay", NULL, sddl, 10), CRS_ETOOBIG);
    /* The configured CA account, given as a SID, is admitted too. */
    CHECK_EQ_INT(crs_pipe_sddl(L"CertRelay", "S-1-5-21-1-2-3-1105", sddl, 512), 0);
    CHECK(wcsstr(sddl, L"(A;;GA;;;S-1-5-21-1-2-3-1105)") != NULL);
    CHECK_EQ_INT(crs_pipe_sddl(L"CertRelay", "S-1-bogus", sddl, 512), CRS_EINVAL);
}

/* The descriptor set on a real pipe reads back without Everyone or Anonymous. */
static void test_pipe_lock_down(void)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    WCHAR *text = NULL;
    HANDLE pipe;

    pipe = CreateNamedPipeW(L"\\\\.\\pipe\\CertRelaySecurityTest", PIPE_ACCESS_DUPLEX | WRITE_DAC,
                            PIPE_TYPE_BYTE, 1, 4096, 4096, 0, NULL);
    CHECK(pipe != INVALID_HANDLE_VALUE);
    if (pipe == INVALID_HANDLE_VALUE)
        return;
    CHECK_EQ_INT(crs_pipe_lock_down(pipe, L"CertRelay", NULL), 0);
    CHECK_EQ_INT(GetSecurityInfo(pipe, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL,
                                 NULL, NULL, &sd),
                 ERROR_SUCCESS);
    if (sd != NULL && ConvertSecurityDescriptorToStringSecurityDescriptorW(
                          sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text, NULL)) {
        CHECK(wcsstr(text, CERTRELAY_SID) != NULL);
        CHECK(wcsstr(text, L";WD)") == NULL && wcsstr(text, L";AN)") == NULL);
        LocalFree(text);
    }
    if (sd != NULL)
        LocalFree(sd);
    CloseHandle(pipe);
}

static void test_private_sddl(void)
{
    WCHAR sddl[512];

    CHECK_EQ_INT(crs_win_private_sddl(NULL, sddl, 512), 0);
    CHECK(wcsncmp(sddl, L"D:P", 3) == 0);
    CHECK(wcsstr(sddl, L"(A;OICI;FA;;;SY)") != NULL);
    CHECK(wcsstr(sddl, L"(A;OICI;FA;;;BA)") != NULL);
    CHECK(wcsstr(sddl, L"(A;OICI;0x1301bf;;;" CERTRELAY_SID L")") != NULL); /* modify */
    CHECK(wcsstr(sddl, L";WD)") == NULL && wcsstr(sddl, L";BU)") == NULL &&
          wcsstr(sddl, L";AU)") == NULL);
}

/* crs_win_sd_check on descriptors given as SDDL. */
static void check_sddl(const WCHAR *sddl, int want, const char *why_part)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    const char *why = NULL;
    int rc;

    CHECK(ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL));
    if (sd == NULL)
        return;
    rc = crs_win_sd_check(sd, L"CertRelay", &why);
    if (rc != want)
        fprintf(stderr, "  for %ls\n", sddl);
    CHECK_EQ_INT(rc, want);
    if (why_part != NULL)
        CHECK(why != NULL && strstr(why, why_part) != NULL);
    LocalFree(sd);
}

static void test_sd_check(void)
{
    check_sddl(L"O:SYD:P(A;;FA;;;SY)(A;;FA;;;BA)", 0, NULL);
    check_sddl(L"O:BAD:(A;;FA;;;SY)(A;;0x1200a9;;;WD)", 0, NULL); /* everyone may only read */
    check_sddl(L"O:" CERTRELAY_SID L"D:(A;;0x1301bf;;;" CERTRELAY_SID L")", 0, NULL);
    check_sddl(L"O:SYD:(A;OICIIO;GA;;;CO)(A;;FA;;;SY)", 0, NULL); /* inherit-only: not here */
    check_sddl(L"O:BUD:(A;;FA;;;SY)", CRS_EACCES, "owned");
    check_sddl(L"O:S-1-5-21-1-2-3-1001D:(A;;FA;;;SY)", CRS_EACCES, "owned");
    check_sddl(L"O:SYD:(A;;FA;;;SY)(A;CI;0x2;;;BU)", CRS_EACCES, "write");   /* add file */
    check_sddl(L"O:SYD:(A;;FA;;;SY)(A;;0x40000;;;AU)", CRS_EACCES, "write"); /* WRITE_DAC */
    check_sddl(L"O:SYD:(A;;GW;;;WD)", CRS_EACCES, "write");
    check_sddl(L"O:SYD:(D;;GA;;;WD)(A;;FA;;;SY)", 0, NULL); /* a deny grants nothing */
}

/* A NULL DACL lets everyone do anything. Built by hand: Wine's SDDL parser does not make one from
 * "D:NO_ACCESS_CONTROL". */
static void test_sd_check_null_dacl(void)
{
    SECURITY_DESCRIPTOR sd;
    BYTE system[SECURITY_MAX_SID_SIZE];
    DWORD len = sizeof(system);
    const char *why = NULL;

    CHECK(InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION));
    CHECK(CreateWellKnownSid(WinLocalSystemSid, NULL, system, &len));
    CHECK(SetSecurityDescriptorOwner(&sd, (PSID)system, FALSE));
    CHECK(SetSecurityDescriptorDacl(&sd, TRUE, NULL, FALSE));
    CHECK_EQ_INT(crs_win_sd_check(&sd, L"CertRelay", &why), CRS_EACCES);
    CHECK(why != NULL && strstr(why, "no access control list") != NULL);
}

/* A directory made the service's own passes the check; a pre-created loose one is repaired. */
static void test_dir_own(void)
{
    char dir[MAX_PATH + 32], sub[MAX_PATH + 64];
    WCHAR wtmp[MAX_PATH + 1];
    const char *why = NULL;
    DWORD n = GetTempPathW(MAX_PATH + 1, wtmp);

    CHECK(n > 0 && n <= MAX_PATH);
    snprintf(dir, sizeof(dir), "%lscrs-secdir-%lu", wtmp, (unsigned long)GetCurrentProcessId());
    snprintf(sub, sizeof(sub), "%s\\state", dir);
    CHECK_EQ_INT(crs_win_dir_own(sub, &why), 0);
    CHECK_EQ_INT(crs_win_path_check(sub, NULL, &why), 0);
    CHECK_EQ_INT(crs_win_dir_own(sub, &why), 0); /* again: already ours */
    CHECK_EQ_INT(crs_win_path_check("C:\\no\\such\\dir", NULL, &why), CRS_ENOENT);
    RemoveDirectoryA(sub);
    RemoveDirectoryA(dir);
}

static int contains(const uint8_t *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);

    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    }
    return 0;
}

/* A secret sealed with DPAPI by crs_secret_write_file reads back; the file holds a DPAPI blob,
 * not the secret; a plain file reads as it is. */
static void test_secret_round_trip(void)
{
    static const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    char path[MAX_PATH + 64], plainpath[MAX_PATH + 64];
    WCHAR wtmp[MAX_PATH + 1];
    uint8_t *data = NULL;
    size_t len = 0;
    DWORD n = GetTempPathW(MAX_PATH + 1, wtmp);

    CHECK(n > 0 && n <= MAX_PATH);
    snprintf(path, sizeof(path), "%lscrs-secret-%lu.bin", wtmp,
             (unsigned long)GetCurrentProcessId());
    snprintf(plainpath, sizeof(plainpath), "%lscrs-secret-%lu.txt", wtmp,
             (unsigned long)GetCurrentProcessId());
    CHECK_EQ_INT(crs_secret_write_file(path, (const uint8_t *)secret, strlen(secret)), 0);
    CHECK_EQ_INT(crs_fs_read_all(path, 65536, &data, &len), 0);
    CHECK(len > 24 && data != NULL && memcmp(data, "\1\0\0\0", 4) == 0 &&
          memcmp(data + 20, "\1\0\0\0", 4) == 0);
    CHECK(data == NULL || !contains(data, len, secret));
    crs_free(data);
    data = NULL;
    CHECK_EQ_INT(crs_secret_read_file(path, 65536, &data, &len), 0);
    CHECK(len == strlen(secret) && data != NULL && memcmp(data, secret, len) == 0);
    crs_secret_free(data, len);
    data = NULL;

    CHECK_EQ_INT(crs_secret_write_file("C:\\no\\such\\dir\\x", (const uint8_t *)"x", 1) < 0, 1);
    {
        FILE *f = fopen(plainpath, "wb");
        CHECK(f != NULL);
        if (f != NULL) {
            fputs("plain-token\n", f);
            fclose(f);
        }
    }
    CHECK_EQ_INT(crs_secret_read_file(plainpath, 65536, &data, &len), 0);
    CHECK(len == 12 && data != NULL && memcmp(data, "plain-token\n", 12) == 0);
    crs_secret_free(data, len);
    DeleteFileA(path);
    DeleteFileA(plainpath);
}

/*
 * Writes never follow a reparse point: through a directory symbolic link the atomic write (the
 * spool's and the file drop's) is refused and nothing lands in the link's target. Wine creates
 * such links where its version supports them; otherwise this says so and checks nothing.
 */
static void test_no_reparse_writes(void)
{
    char target[MAX_PATH + 64], link[MAX_PATH + 64], landed[MAX_PATH + 96];
    WCHAR wtmp[MAX_PATH + 1], wtarget[MAX_PATH + 64], wlink[MAX_PATH + 64];
    DWORD n = GetTempPathW(MAX_PATH + 1, wtmp), attr;

    CHECK(n > 0 && n <= MAX_PATH);
    snprintf(target, sizeof(target), "%lscrs-target-%lu", wtmp,
             (unsigned long)GetCurrentProcessId());
    snprintf(link, sizeof(link), "%lscrs-link-%lu", wtmp, (unsigned long)GetCurrentProcessId());
    snprintf(landed, sizeof(landed), "%s\\x.crev", target);
    MultiByteToWideChar(CP_UTF8, 0, target, -1, wtarget, MAX_PATH + 64);
    MultiByteToWideChar(CP_UTF8, 0, link, -1, wlink, MAX_PATH + 64);
    CHECK(CreateDirectoryW(wtarget, NULL));
    if (!CreateSymbolicLinkW(wlink, wtarget, SYMBOLIC_LINK_FLAG_DIRECTORY) ||
        (attr = GetFileAttributesW(wlink)) == INVALID_FILE_ATTRIBUTES ||
        !(attr & FILE_ATTRIBUTE_REPARSE_POINT)) {
        printf("test_no_reparse_writes: this Wine cannot make a directory link (error %lu); "
               "not checked\n",
               (unsigned long)GetLastError());
        RemoveDirectoryW(wlink);
        RemoveDirectoryW(wtarget);
        return;
    }
    CHECK_EQ_INT(crs_fs_write_atomic(link, "x.crev", "event", 5), CRS_EACCES);
    CHECK(GetFileAttributesA(landed) == INVALID_FILE_ATTRIBUTES);
    CHECK_EQ_INT(crs_fs_write_atomic(target, "x.crev", "event", 5), 0);
    DeleteFileA(landed);
    RemoveDirectoryW(wlink);
    RemoveDirectoryW(wtarget);
}

int main(void)
{
    test_service_sid();
    test_pipe_sddl();
    test_pipe_lock_down();
    test_private_sddl();
    test_sd_check();
    test_sd_check_null_dacl();
    test_dir_own();
    test_secret_round_trip();
    test_no_reparse_writes();
    return CHECK_DONE();
}
