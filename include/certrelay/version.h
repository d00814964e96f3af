#ifndef CERTRELAY_VERSION_H
#define CERTRELAY_VERSION_H
/* Set by CMake from project(VERSION). */
#ifndef CRS_VERSION
#define CRS_VERSION "0.1.0"
#endif
#endif
