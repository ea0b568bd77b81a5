/*
 * The POSIX wrappers of the test seam (unix/seam-posix.h).  Compiled
 * without NP_SEAM, so the names below are the C library's.
 */
#include "unix/seam-posix.h"

#include <stdarg.h>
#include <string.h>

enum {
  FN_FIRST_ = NP__SEAM_FREE,
#define NP__SEAM_ID(ret, name, fail, cls, err, params, args, rec) FN_##name,
  NP__SEAM_POSIX_FNS(NP__SEAM_ID)
#undef NP__SEAM_ID
      FN_open,
  FN_close,
  FN_getaddrinfo,
  FN_freeaddrinfo,
  FN_getnameinfo,
  FN_TOTAL_
};

const struct np__seam_fn np__seam_fns[] = {
    NP__SEAM_ALLOC_FNS(ENOMEM),
#define NP__SEAM_ROW(ret, name, fail, cls, err, params, args, rec)            \
  {#name, cls, err},
    NP__SEAM_POSIX_FNS(NP__SEAM_ROW)
#undef NP__SEAM_ROW
        {"open", NP__FDS, EMFILE}, /* O_NONBLOCK files: no EINTR */
    {"close", NP__ANY | NP__INTR | NP__FD | NP__SEAM_CLOSE, EIO},
    {"getaddrinfo", NP__MEM, ENOMEM},
    {"freeaddrinfo", NP__SEAM_NOFAIL, 0},
    {"getnameinfo", NP__MEM, ENOMEM}};
const int np__seam_fn_total = FN_TOTAL_;

/* Ends a call with its result; errno is as the call (or the fault) left
 * it once the observer is done. */
static void leave(struct np__seam_call *c, intptr_t result, int failed,
                  int injected) {
  np__seam_leave(c, result, failed ? errno : 0, injected);
  if (failed)
    errno = (int)c->err;
}

#define NP__SEAM_DEFINE(ret, name, fail, cls, err, params, args, rec)         \
  ret np__seam_##name params {                                                \
    const uintptr_t np__a[] = {rec};                                          \
    struct np__seam_call np__c;                                               \
    long np__inj = np__seam_enter(&np__c, FN_##name, np__a,                   \
                                  (int)(sizeof(np__a) / sizeof(np__a[0])));   \
    ret np__r;                                                                \
                                                                              \
    if (np__inj != 0) {                                                       \
      errno = (int)np__inj;                                                   \
      leave(&np__c, (intptr_t)(fail), 1, 1);                                  \
      return fail;                                                            \
    }                                                                         \
    np__r = name args;                                                        \
    leave(&np__c, (intptr_t)np__r, np__r == (fail), 0);                       \
    return np__r;                                                             \
  }
NP__SEAM_POSIX_FNS(NP__SEAM_DEFINE)
#undef NP__SEAM_DEFINE

int np__seam_open(const char *path, int flags, ...) {
  mode_t mode = 0;
  uintptr_t a[3];
  struct np__seam_call c;
  long inj;
  int fd;

  if (flags & O_CREAT) {
    va_list ap;

    va_start(ap, flags);
    mode = (mode_t)va_arg(ap, int);
    va_end(ap);
  }
  a[0] = (uintptr_t)path;
  a[1] = (uintptr_t)flags;
  a[2] = (uintptr_t)mode;
  inj = np__seam_enter(&c, FN_open, a, 3);
  if (inj != 0) {
    errno = (int)inj;
    leave(&c, -1, 1, 1);
    return -1;
  }
  fd = open(path, flags, mode);
  leave(&c, fd, fd < 0, 0);
  return fd;
}

/* Linux frees the descriptor whatever close(2) reports, so a fault here
 * closes it and then fails. */
int np__seam_close(int fd) {
  uintptr_t a[1];
  struct np__seam_call c;
  long inj;
  int r;

  a[0] = (uintptr_t)fd;
  inj = np__seam_enter(&c, FN_close, a, 1);
  r = close(fd);
  if (inj != 0) {
    errno = (int)inj;
    r = -1;
  }
  leave(&c, r, r < 0, inj != 0);
  return r;
}

/* getaddrinfo reports through its return value: EAI_MEMORY for ENOMEM,
 * else EAI_SYSTEM with errno.  Its list counts as one allocation. */
int np__seam_getaddrinfo(const char *host, const char *port,
                         const struct addrinfo *hints, struct addrinfo **out) {
  uintptr_t a[4];
  struct np__seam_call c;
  long inj;
  int r;

  a[0] = (uintptr_t)host;
  a[1] = (uintptr_t)port;
  a[2] = (uintptr_t)hints;
  a[3] = (uintptr_t)out;
  inj = np__seam_enter(&c, FN_getaddrinfo, a, 4);
  if (inj != 0) {
    errno = (int)inj;
    r = inj == ENOMEM ? EAI_MEMORY : EAI_SYSTEM;
    leave(&c, r, 1, 1);
    return r;
  }
  r = getaddrinfo(host, port, hints, out);
  if (r == 0)
    np__seam_count_alloc(1);
  leave(&c, r, r != 0, 0);
  return r;
}

void np__seam_freeaddrinfo(struct addrinfo *ai) {
  uintptr_t a[1];
  struct np__seam_call c;

  a[0] = (uintptr_t)ai;
  (void)np__seam_enter(&c, FN_freeaddrinfo, a, 1);
  if (ai != NULL)
    np__seam_count_alloc(-1);
  freeaddrinfo(ai);
  leave(&c, 0, 0, 0);
}

/* getnameinfo reports as getaddrinfo does. */
int np__seam_getnameinfo(const struct sockaddr *sa, socklen_t salen,
                         char *host, socklen_t hostlen, char *serv,
                         socklen_t servlen, int flags) {
  const uintptr_t a[] = {
      (uintptr_t)sa,   (uintptr_t)salen,   (uintptr_t)host, (uintptr_t)hostlen,
      (uintptr_t)serv, (uintptr_t)servlen, (uintptr_t)flags};
  struct np__seam_call c;
  long inj = np__seam_enter(&c, FN_getnameinfo, a, 7);
  int r;

  if (inj != 0) {
    errno = (int)inj;
    r = inj == ENOMEM ? EAI_MEMORY : EAI_SYSTEM;
    leave(&c, r, 1, 1);
    return r;
  }
  r = getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
  leave(&c, r, r != 0, 0);
  return r;
}
