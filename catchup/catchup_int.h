/*
 * What the files of catchup/ share and nobody else needs: the column table.
 */
#ifndef CERTRELAY_CATCHUP_INT_H
#define CERTRELAY_CATCHUP_INT_H

#include "certrelay/catchup.h"

/* certsrv's property types, as the row stores them. */
enum catchup_type { CATCHUP_LONG = 1, CATCHUP_DATE = 2, CATCHUP_BINARY = 3, CATCHUP_STRING = 4 };

/* The type of a schema column the row model knows ("Request.Disposition", "RawCertificate"), or 0
 * for a column it ignores. */
int catchup_column_type(const char *column);

#endif
