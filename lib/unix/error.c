/* Translation of errno values into the CertRelay error table, done once at the OS boundary. */
#include <errno.h>
#include "certrelay/error.h"

int crs_translate_sys_error(int sys_error)
{
    switch (sys_error) {
    case 0:
        return CRS_OK;
    case ENOMEM:
        return CRS_ENOMEM;
    case ENOSPC:
    case EDQUOT:
        return CRS_ENOSPC;
    case ENOENT:
    case ENOTDIR:
        return CRS_ENOENT;
    case EEXIST:
        return CRS_EEXIST;
    case EACCES:
    case EPERM:
    case EROFS:
        return CRS_EACCES;
    case EINVAL:
        return CRS_EINVAL;
    case ETIMEDOUT:
        return CRS_ETIMEDOUT;
    case ECONNREFUSED:
        return CRS_ECONNREFUSED;
    case EPIPE:
    case ECONNRESET:
        return CRS_ECLOSED;
    case EADDRINUSE:
        return CRS_EADDRINUSE;
    case EAGAIN:
        return CRS_EAGAIN;
    case E2BIG:
    case EFBIG:
    case ENAMETOOLONG:
        return CRS_ETOOBIG;
    default:
        return CRS_EIO;
    }
}
