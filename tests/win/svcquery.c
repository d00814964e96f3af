/*
 * Prints what the Service Control Manager reports about one service, for
 * tests/win/installer_test.py: QueryServiceConfig and each QueryServiceConfig2 level that
 * `certrelay install` sets. One "key=value" line each; a level the system does not implement
 * prints "key=unsupported (error N)", so the test can say exactly what Wine cannot show.
 *
 *   svcquery SERVICE
 *   svcquery --control CODE SERVICE
 *
 * The second form sends a control code (decimal) with ControlService and prints the result;
 * the test uses it for SERVICE_CONTROL_PRESHUTDOWN (15), which Windows itself sends at shutdown.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_BYTES 8192

static BYTE buf[BUF_BYTES];

static int query2(SC_HANDLE svc, DWORD level, const char *key)
{
    DWORD need = 0;

    memset(buf, 0, sizeof(buf));
    if (QueryServiceConfig2W(svc, level, buf, sizeof(buf), &need))
        return 1;
    printf("%s=unsupported (error %lu)\n", key, (unsigned long)GetLastError());
    return 0;
}

static int control(const WCHAR *name, DWORD code)
{
    SERVICE_STATUS st;
    SC_HANDLE scm, svc;
    int ok;

    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    svc = scm != NULL ? OpenServiceW(scm, name, SERVICE_ALL_ACCESS) : NULL;
    if (svc == NULL) {
        printf("control=failed (open: error %lu)\n", (unsigned long)GetLastError());
        return 1;
    }
    ok = ControlService(svc, code, &st);
    if (ok)
        printf("control=ok state=%lu\n", (unsigned long)st.dwCurrentState);
    else
        printf("control=failed (error %lu)\n", (unsigned long)GetLastError());
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    WCHAR name[256];
    SC_HANDLE scm, svc;
    QUERY_SERVICE_CONFIGW *qc = (QUERY_SERVICE_CONFIGW *)buf;
    SERVICE_DESCRIPTIONW *desc = (SERVICE_DESCRIPTIONW *)buf;
    SERVICE_FAILURE_ACTIONSW *fa = (SERVICE_FAILURE_ACTIONSW *)buf;
    SERVICE_FAILURE_ACTIONS_FLAG *flag = (SERVICE_FAILURE_ACTIONS_FLAG *)buf;
    SERVICE_DELAYED_AUTO_START_INFO *delayed = (SERVICE_DELAYED_AUTO_START_INFO *)buf;
    SERVICE_PRESHUTDOWN_INFO *preshutdown = (SERVICE_PRESHUTDOWN_INFO *)buf;
    SERVICE_STATUS status;
    DWORD need, i;

    if (argc == 4 && strcmp(argv[1], "--control") == 0 &&
        MultiByteToWideChar(CP_ACP, 0, argv[3], -1, name, 256) > 0)
        return control(name, (DWORD)strtoul(argv[2], NULL, 10));
    if (argc != 2 || MultiByteToWideChar(CP_ACP, 0, argv[1], -1, name, 256) <= 0) {
        fprintf(stderr, "usage: svcquery SERVICE | svcquery --control CODE SERVICE\n");
        return 2;
    }
    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    svc = scm != NULL ? OpenServiceW(scm, name, SERVICE_QUERY_CONFIG | SERVICE_QUERY_STATUS) : NULL;
    if (svc == NULL) {
        printf("service=absent (error %lu)\n", (unsigned long)GetLastError());
        return 1;
    }
    if (QueryServiceStatus(svc, &status))
        printf("state=%lu\ncontrols_accepted=0x%lx\n", (unsigned long)status.dwCurrentState,
               (unsigned long)status.dwControlsAccepted);
    if (QueryServiceConfigW(svc, qc, sizeof(buf), &need))
        printf("binary=%ls\nstart_type=%lu\naccount=%ls\n", qc->lpBinaryPathName,
               (unsigned long)qc->dwStartType,
               qc->lpServiceStartName != NULL ? qc->lpServiceStartName : L"");
    if (query2(svc, SERVICE_CONFIG_DESCRIPTION, "description"))
        printf("description=%ls\n", desc->lpDescription != NULL ? desc->lpDescription : L"");
    if (query2(svc, SERVICE_CONFIG_FAILURE_ACTIONS, "failure_actions")) {
        printf("failure_reset=%lu\nfailure_actions=", (unsigned long)fa->dwResetPeriod);
        for (i = 0; i < fa->cActions && fa->lpsaActions != NULL; i++)
            printf("%s%d:%lu", i > 0 ? "," : "", (int)fa->lpsaActions[i].Type,
                   (unsigned long)fa->lpsaActions[i].Delay);
        printf("\n");
    }
    if (query2(svc, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, "failure_actions_flag"))
        printf("failure_actions_flag=%d\n", (int)flag->fFailureActionsOnNonCrashFailures);
    if (query2(svc, SERVICE_CONFIG_DELAYED_AUTO_START_INFO, "delayed_auto_start"))
        printf("delayed_auto_start=%d\n", (int)delayed->fDelayedAutostart);
    if (query2(svc, SERVICE_CONFIG_PRESHUTDOWN_INFO, "preshutdown_timeout"))
        printf("preshutdown_timeout=%lu\n", (unsigned long)preshutdown->dwPreshutdownTimeout);
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return 0;
}
