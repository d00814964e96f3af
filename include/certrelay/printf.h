/*
 * GCC's "printf" format archetype means the Microsoft runtime's formats on mingw-w64 targets, but
 * the Windows build uses mingw's C99 stdio (the default with -std=c11), whose formats are GNU's
 * (%zu, %lld): printf-like functions are declared with CRS_PRINTF_ARCHETYPE.
 */
#ifndef CERTRELAY_PRINTF_H
#define CERTRELAY_PRINTF_H

#ifndef CRS_PRINTF_ARCHETYPE
#if defined(__MINGW32__)
#define CRS_PRINTF_ARCHETYPE gnu_printf
#else
#define CRS_PRINTF_ARCHETYPE printf
#endif
#endif

#endif
