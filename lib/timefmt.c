/*
 * Time formatting and parsing, the one module every part uses: RFC 3339 for the JSON document and
 * the log, and the proleptic Gregorian calendar conversion the other formats (HTTP-date, RFC 5322
 * mail dates) are built on. Plain integer arithmetic, so neither time_t's width nor gmtime's
 * availability on Windows matters.
 */
#include <stdio.h>

#include "certrelay/error.h"
#include "certrelay/timefmt.h"

/* ------------------------------------------------------------------------------------------ */
/* RFC 3339 time                                                                               */
/* ------------------------------------------------------------------------------------------ */

#define MS_PER_DAY 86400000LL

/*
 * Days since 1970-01-01 for a proleptic Gregorian date and back (Howard Hinnant's algorithms).
 * They work on plain integers, so neither time_t's width nor gmtime's availability on Windows
 * matters, and dates before 1970 come out right.
 */
int64_t crs_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void crs_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/*
 * RFC 3339 has four-digit years only, so a value outside 0000-01-01 .. 9999-12-31 (a corrupt
 * certsrv DATE, say) is clamped to the nearest end rather than printed in a form parsers reject.
 */
void crs_time_rfc3339(int64_t unix_ms, char *out, size_t outlen)
{
    const int64_t lo = crs_days_from_civil(0, 1, 1) * MS_PER_DAY;
    const int64_t hi = crs_days_from_civil(9999, 12, 31) * MS_PER_DAY + MS_PER_DAY - 1;
    int64_t days, rem, y;
    unsigned m, d;

    if (!out || outlen == 0)
        return;
    if (unix_ms < lo)
        unix_ms = lo;
    if (unix_ms > hi)
        unix_ms = hi;
    days = unix_ms / MS_PER_DAY;
    rem = unix_ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    crs_civil_from_days(days, &y, &m, &d);
    snprintf(out, outlen, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", (int)y, m, d, (int)(rem / 3600000),
             (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}

/* Reads exactly n decimal digits at *p and advances; -1 if any is not a digit. */
static int read_digits(const char **p, int n)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        char c = (*p)[i];

        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * Accepts RFC 3339 section 5.6 date-time: "T" may be "t" or a space (section 5.6's note), the
 * fraction may have any number of digits (milliseconds are kept, the rest truncated), and the
 * offset is "Z", "z" or +hh:mm / -hh:mm. A leap second (:60) is accepted and counts as the next
 * second, as POSIX time does.
 */
int crs_time_parse_rfc3339(const char *s, int64_t *unix_ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, frac = 0, ndig = 0, off = 0;
    int64_t ms;

    if (unix_ms)
        *unix_ms = 0;
    if (!s || !unix_ms)
        return CRS_EINVAL;

    if ((y = read_digits(&s, 4)) < 0 || *s++ != '-' || (mo = read_digits(&s, 2)) < 0 ||
        *s++ != '-' || (d = read_digits(&s, 2)) < 0)
        return CRS_EINVAL;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return CRS_EINVAL;
    s++;
    if ((h = read_digits(&s, 2)) < 0 || *s++ != ':' || (mi = read_digits(&s, 2)) < 0 ||
        *s++ != ':' || (sec = read_digits(&s, 2)) < 0)
        return CRS_EINVAL;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            if (ndig < 3)
                frac = frac * 10 + (*s - '0');
            ndig++;
            s++;
        }
        if (ndig == 0)
            return CRS_EINVAL;
        for (; ndig < 3; ndig++)
            frac *= 10;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om;

        if ((oh = read_digits(&s, 2)) < 0 || *s++ != ':' || (om = read_digits(&s, 2)) < 0 ||
            oh > 23 || om > 59)
            return CRS_EINVAL;
        off = sign * (oh * 60 + om);
    } else {
        return CRS_EINVAL;
    }
    if (*s != '\0')
        return CRS_EINVAL;

    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
        return CRS_EINVAL;
    if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
        return CRS_EINVAL;

    ms = crs_days_from_civil(y, (unsigned)mo, (unsigned)d) * MS_PER_DAY;
    ms += (int64_t)h * 3600000 + (int64_t)mi * 60000 + (int64_t)sec * 1000 + frac;
    ms -= (int64_t)off * 60000;
    *unix_ms = ms;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* RFC 5322 date (mail)                                                                        */
/* ------------------------------------------------------------------------------------------ */

void crs_time_rfc5322(int64_t unix_ms, char *out, size_t outlen)
{
    static const char *const wd[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t days, secs, y;
    unsigned m, d;

    if (!out || outlen == 0)
        return;
    days = unix_ms / MS_PER_DAY;
    if (unix_ms % MS_PER_DAY < 0)
        days--;
    secs = (unix_ms - days * MS_PER_DAY) / 1000;
    crs_civil_from_days(days, &y, &m, &d);
    snprintf(out, outlen, "%s, %02u %s %04lld %02d:%02d:%02d +0000", wd[((days % 7) + 7) % 7], d,
             mon[m - 1], (long long)y, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
}

/* ------------------------------------------------------------------------------------------ */
/* OLE automation dates (VT_DATE)                                                              */
/* ------------------------------------------------------------------------------------------ */

/* Days between the OLE automation epoch (1899-12-30) and the Unix epoch, and the range of OLE
 * dates (0100-01-01 and 9999-12-31 23:59:59.999). */
#define OLE_UNIX_EPOCH_DAYS 25569
#define OLE_DATE_MIN        (-657434.0)
#define OLE_DATE_MAX        2958466.0

/*
 * The whole days and the fraction are split before converting, because before the epoch the
 * fraction still counts forward from midnight while the days count backward. Written without
 * <math.h> so the core needs no libm.
 */
int crs_time_from_ole_date(double date, int64_t *unix_ms)
{
    int64_t days;
    double frac, ms;

    /* The comparison is false for NaN as well. */
    if (!(date >= OLE_DATE_MIN && date < OLE_DATE_MAX))
        return CRS_ERANGE;
    days = (int64_t)date; /* toward zero */
    frac = date - (double)days;
    if (frac < 0)
        frac = -frac;
    ms = frac * (double)MS_PER_DAY + 0.5;
    *unix_ms = (days - OLE_UNIX_EPOCH_DAYS) * MS_PER_DAY + (int64_t)ms;
    return 0;
}

double crs_time_to_ole_date(int64_t unix_ms)
{
    int64_t days = unix_ms / MS_PER_DAY;
    int64_t rem = unix_ms % MS_PER_DAY;
    double frac;

    if (rem < 0) {
        days--;
        rem += MS_PER_DAY;
    }
    days += OLE_UNIX_EPOCH_DAYS;
    frac = (double)rem / (double)MS_PER_DAY;
    return days >= 0 ? (double)days + frac : (double)days - frac;
}
