/*
 * Who the peer is, in words: the login name for the uid that
 * SO_PEERCRED gave.  POSIX has no SIDs and no impersonation.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unix.h"

#define PW_BUF_MIN 1024
#define PW_BUF_MAX (1024 * 1024)

/* Copies text into buf; returns its length or NP_ENAMETOOLONG. */
static int put(char *buf, size_t len, const char *text) {
  size_t n = strlen(text);

  if (n >= len)
    return NP_ENAMETOOLONG;
  memcpy(buf, text, n + 1);
  return (int)n;
}

int np__peer_id_user(const struct np__peer_id *id, char *buf, size_t len) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  size_t cap = hint > PW_BUF_MIN ? (size_t)hint : PW_BUF_MIN;
  char number[24];

  /* A uid without an entry (a container's, say) is named by its number,
   * as ls(1) does. */
  for (;;) {
    struct passwd pw, *found = NULL;
    char *mem = malloc(cap);
    int rc, r;

    if (mem == NULL)
      return NP_ENOMEM;
    rc = getpwuid_r((uid_t)id->uid, &pw, mem, cap, &found);
    if (rc == 0 && found != NULL) {
      r = put(buf, len, found->pw_name);
      free(mem);
      return r;
    }
    free(mem);
    if (rc != ERANGE || cap >= PW_BUF_MAX)
      break;
    cap *= 2;
  }
  snprintf(number, sizeof(number), "%lld", (long long)id->uid);
  return put(buf, len, number);
}

int np__peer_id_sid(const struct np__peer_id *id, char *buf, size_t len) {
  NP__UNUSED(id);
  NP__UNUSED(buf);
  NP__UNUSED(len);
  return NP_ENOTSUP;
}

int np__backend_revert(void) { return NP_ENOTSUP; }
