/*
 * The error table (include/certrelay/error.h). One X-macro produces the enum, the names and the
 * sentences, so they can never disagree.
 */
#include "certrelay/error.h"

const char *crs_strerror(int err)
{
    switch (err) {
    case CRS_OK:
        return "success";
#define CRS_ERR_MSG_(name, msg)                                                                    \
    case CRS_##name:                                                                               \
        return msg;
        CRS_ERRNO_MAP(CRS_ERR_MSG_)
#undef CRS_ERR_MSG_
    default:
        return "unknown error";
    }
}

const char *crs_err_name(int err)
{
    switch (err) {
    case CRS_OK:
        return "CRS_OK";
#define CRS_ERR_NAME_(name, msg)                                                                   \
    case CRS_##name:                                                                               \
        return "CRS_" #name;
        CRS_ERRNO_MAP(CRS_ERR_NAME_)
#undef CRS_ERR_NAME_
    default:
        return "CRS_EUNKNOWN";
    }
}
