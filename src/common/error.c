/*
 * Error names and messages, from the one table in npipe.h, and the
 * library version.
 */
#include "config.h"

#include "internal.h"

const char *np_strerror(int err) {
  switch (err) {
#define NP_STRERROR_CASE_(name, value, msg)                                   \
  case NP_##name:                                                             \
    return msg;
    NP_ERRNO_MAP(NP_STRERROR_CASE_)
#undef NP_STRERROR_CASE_
  default:
    return "unknown error";
  }
}

const char *np_errname(int err) {
  switch (err) {
#define NP_ERRNAME_CASE_(name, value, msg)                                    \
  case NP_##name:                                                             \
    return "NP_" #name;
    NP_ERRNO_MAP(NP_ERRNAME_CASE_)
#undef NP_ERRNAME_CASE_
  default:
    return "NP_UNKNOWN";
  }
}

int np__error_from_os(long code) {
  size_t i;

  for (i = 0; i < np__os_error_map_len; i++)
    if (np__os_error_map[i].os == code)
      return np__os_error_map[i].np;
  return NP_EIO;
}

unsigned np_version(void) { return NPIPE_VERSION_HEX; }

const char *np_version_string(void) { return NPIPE_VERSION_STRING; }
