/* Translation of Win32 error codes into the CertRelay error table, done once at the OS boundary. */
#include <windows.h>
#include "certrelay/error.h"

int crs_translate_sys_error(int sys_error)
{
    switch ((DWORD)sys_error) {
    case ERROR_SUCCESS:
        return CRS_OK;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return CRS_ENOMEM;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return CRS_ENOSPC;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        return CRS_ENOENT;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS:
        return CRS_EEXIST;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_WRITE_PROTECT:
        return CRS_EACCES;
    case ERROR_INVALID_PARAMETER:
    case ERROR_INVALID_NAME:
        return CRS_EINVAL;
    case ERROR_SEM_TIMEOUT:
    case WAIT_TIMEOUT:
        return CRS_ETIMEDOUT;
    case ERROR_PIPE_BUSY:
        return CRS_EAGAIN;
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED:
        return CRS_ECLOSED;
    case ERROR_FILENAME_EXCED_RANGE:
        return CRS_ETOOBIG;
    default:
        return CRS_EIO;
    }
}
