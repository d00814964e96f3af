/*
 * Time formatting and parsing (lib/timefmt.c): one implementation of the calendar for the whole
 * project. Times are Unix milliseconds, UTC.
 */
#ifndef CERTRELAY_TIMEFMT_H
#define CERTRELAY_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for the longest RFC 3339 string crs_time_rfc3339 writes, with its NUL. */
#define CRS_RFC3339_LEN 32

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31), and back. */
int64_t crs_days_from_civil(int64_t y, unsigned m, unsigned d);
void crs_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Formats Unix milliseconds as RFC 3339 UTC with milliseconds ("2026-11-21T18:04:07.123Z").
 * out must hold CRS_RFC3339_LEN bytes. */
void crs_time_rfc3339(int64_t unix_ms, char *out, size_t outlen);
/* Parses RFC 3339 (Z or numeric offset, optional fraction) into Unix ms. 0 or CRS_EINVAL. */
int crs_time_parse_rfc3339(const char *s, int64_t *unix_ms);

/* RFC 5322 date in UTC (the mail Date header): "Tue, 01 Jul 2025 10:00:00 +0000". out must
 * hold 32 bytes. */
void crs_time_rfc5322(int64_t unix_ms, char *out, size_t outlen);

/*
 * OLE automation dates (VT_DATE, what certsrv's COM interfaces hand out): days since 1899-12-30
 * UTC with the time of day as the fraction, whose sign-less meaning holds before the epoch too
 * (-1.25 is 1899-12-29 06:00). crs_time_from_ole_date gives CRS_ERANGE for a value outside the
 * years 100 to 9999 (NaN and infinities included); crs_time_to_ole_date is its inverse.
 */
int crs_time_from_ole_date(double date, int64_t *unix_ms);
double crs_time_to_ole_date(int64_t unix_ms);

#endif
