/*
 * The Windows wrappers of the test seam (win/seam-win.h).  Compiled
 * without NP_SEAM, so the names below are the system's.
 */
#include "win/seam-win.h"

#include <string.h>

enum {
  FN_FIRST_ = NP__SEAM_FREE,
#define NP__SEAM_ID(ret, name, fail, cls, err, kind, params, args, rec)       \
  FN_##name,
  NP__SEAM_WIN_FNS(NP__SEAM_ID)
#undef NP__SEAM_ID
      FN_CloseHandle,
  FN_closesocket,
  FN_WSAStartup,
  FN_getaddrinfo,
  FN_freeaddrinfo,
  FN_getnameinfo,
  FN_ConvertStringSecurityDescriptorToSecurityDescriptorW,
  FN_ConvertSidToStringSidW,
  FN_LocalFree,
  FN_GetSecurityInfo,
  FN_NtDeviceIoControlFile,
  FN_Sleep,
  FN_TOTAL_
};

const struct np__seam_fn np__seam_fns[] = {
    NP__SEAM_ALLOC_FNS(ERROR_NOT_ENOUGH_MEMORY),
#define NP__SEAM_ROW(ret, name, fail, cls, err, kind, params, args, rec)      \
  {#name, cls, err},
    NP__SEAM_WIN_FNS(NP__SEAM_ROW)
#undef NP__SEAM_ROW
        {"CloseHandle", NP__ANY | NP__H | NP__SEAM_CLOSE,
         ERROR_INVALID_HANDLE},
    {"closesocket", NP__ANY | NP__H | NP__SEAM_CLOSE, WSAENOTSOCK},
    {"WSAStartup", NP__MEM, WSASYSNOTREADY},
    {"getaddrinfo", NP__MEM, WSA_NOT_ENOUGH_MEMORY},
    {"freeaddrinfo", NP__SEAM_NOFAIL, 0},
    {"getnameinfo", NP__MEM, WSA_NOT_ENOUGH_MEMORY},
    {"ConvertStringSecurityDescriptorToSecurityDescriptorW", NP__MEM,
     ERROR_NOT_ENOUGH_MEMORY},
    {"ConvertSidToStringSidW", NP__MEM, ERROR_NOT_ENOUGH_MEMORY},
    {"LocalFree", NP__SEAM_NOFAIL, 0},
    {"GetSecurityInfo", NP__MEM | NP__H, ERROR_NOT_ENOUGH_MEMORY},
    {"NtDeviceIoControlFile", NP__MEM | NP__H, ERROR_NOT_ENOUGH_MEMORY},
    {"Sleep", NP__SEAM_NOFAIL, 0}};
const int np__seam_fn_total = FN_TOTAL_;

/* How each kind of call reports an error.  A fault is given as a Win32
 * code; WSA calls get the matching WSA code for the two the tests use. */
static long W32_get(void) { return (long)GetLastError(); }
static void W32_set(long e) { SetLastError((DWORD)e); }
static long WSA_get(void) { return (long)WSAGetLastError(); }
static void WSA_set(long e) {
  if (e == ERROR_NOT_ENOUGH_MEMORY)
    e = WSAENOBUFS;
  else if (e == ERROR_INVALID_HANDLE)
    e = WSAENOTSOCK;
  WSASetLastError((int)e);
}

static NTSTATUS nt_status(long e) {
  if (e == ERROR_NOT_ENOUGH_MEMORY)
    return (NTSTATUS)0xC0000017L; /* STATUS_NO_MEMORY */
  if (e == ERROR_INVALID_HANDLE)
    return (NTSTATUS)0xC0000008L; /* STATUS_INVALID_HANDLE */
  return (NTSTATUS)0xC000009AL;   /* STATUS_INSUFFICIENT_RESOURCES */
}

/* The last error is captured right after the call and set again after
 * the observer, even on success (CreateFileW reports
 * ERROR_ALREADY_EXISTS that way). */
#define NP__SEAM_DEFINE(ret, name, fail, cls, err, kind, params, args, rec)   \
  ret WINAPI np__seam_##name params {                                         \
    const uintptr_t np__a[] = {rec};                                          \
    struct np__seam_call np__c;                                               \
    long np__inj = np__seam_enter(&np__c, FN_##name, np__a,                   \
                                  (int)(sizeof(np__a) / sizeof(np__a[0])));   \
    long np__e;                                                               \
    ret np__r;                                                                \
                                                                              \
    if (np__inj != 0) {                                                       \
      np__seam_leave(&np__c, (intptr_t)(fail), np__inj, 1);                   \
      kind##_set(np__inj);                                                    \
      return fail;                                                            \
    }                                                                         \
    np__r = name args;                                                        \
    np__e = kind##_get();                                                     \
    np__seam_leave(&np__c, (intptr_t)np__r, np__r == (fail) ? np__e : 0, 0);  \
    kind##_set(np__e);                                                        \
    return np__r;                                                             \
  }
NP__SEAM_WIN_FNS(NP__SEAM_DEFINE)
#undef NP__SEAM_DEFINE

/* A fault in a close closes and then reports the error. */
BOOL WINAPI np__seam_CloseHandle(HANDLE h) {
  const uintptr_t a[] = {(uintptr_t)h};
  struct np__seam_call c;
  long inj = np__seam_enter(&c, FN_CloseHandle, a, 1);
  BOOL ok = CloseHandle(h);
  long e = ok ? 0 : W32_get();

  if (inj != 0)
    ok = FALSE, e = inj;
  np__seam_leave(&c, ok, e, inj != 0);
  W32_set(e);
  return ok;
}

int WINAPI np__seam_closesocket(SOCKET s) {
  const uintptr_t a[] = {(uintptr_t)s};
  struct np__seam_call c;
  long inj = np__seam_enter(&c, FN_closesocket, a, 1);
  int r = closesocket(s);
  long e = r == 0 ? 0 : WSA_get();

  if (inj != 0)
    r = SOCKET_ERROR, e = inj;
  np__seam_leave(&c, r, e, inj != 0);
  WSA_set(e);
  return r;
}

/* WSAStartup returns its error. */
int WINAPI np__seam_WSAStartup(WORD v, LPWSADATA data) {
  const uintptr_t a[] = {(uintptr_t)v, (uintptr_t)data};
  struct np__seam_call c;
  long inj = np__seam_enter(&c, FN_WSAStartup, a, 2);
  int r;

  if (inj != 0) {
    np__seam_leave(&c, inj, inj, 1);
    return (int)inj;
  }
  r = WSAStartup(v, data);
  np__seam_leave(&c, r, r, 0);
  return r;
}

/* Ends a call of the getaddrinfo family, which returns its error (0 or
 * a WSA code) and also sets it. */
static int gai_leave(struct np__seam_call *c, long r, int injected) {
  np__seam_leave(c, r, r, injected);
  WSA_set(r);
  return (int)r;
}

/* getaddrinfo returns its error (and sets it); its list counts as one
 * allocation. */
int WINAPI np__seam_getaddrinfo(const char *host, const char *port,
                                const struct addrinfo *hints,
                                struct addrinfo **out) {
  const uintptr_t a[] = {(uintptr_t)host, (uintptr_t)port, (uintptr_t)hints,
                         (uintptr_t)out};
  struct np__seam_call c;
  long inj = np__seam_enter(&c, FN_getaddrinfo, a, 4);
  int r;

  if (inj != 0)
    return gai_leave(&c, inj, 1);
  r = getaddrinfo(host, port, hints, out);
  if (r == 0)
    np__seam_count_alloc(1);
  return gai_leave(&c, r, 0);
}

void WINAPI np__seam_freeaddrinfo(struct addrinfo *ai) {
  const uintptr_t a[] = {(uintptr_t)ai};
  struct np__seam_call c;

  (void)np__seam_enter(&c, FN_freeaddrinfo, a, 1);
  if (ai != NULL)
    np__seam_count_alloc(-1);
  freeaddrinfo(ai);
  np__seam_leave(&c, 0, 0, 0);
}

/* getnameinfo, too, returns its error (and sets it). */
int WINAPI np__seam_getnameinfo(const struct sockaddr *sa, socklen_t salen,
                                char *host, DWORD hostlen, char *serv,
                                DWORD servlen, int flags) {
  const uintptr_t a[] = {
      (uintptr_t)sa,   (uintptr_t)salen,   (uintptr_t)host, (uintptr_t)hostlen,
      (uintptr_t)serv, (uintptr_t)servlen, (uintptr_t)flags};
  struct np__seam_call c;
  long inj = np__seam_enter(&c, FN_getnameinfo, a, 7);

  if (inj != 0)
    return gai_leave(&c, inj, 1);
  return gai_leave(
      &c, getnameinfo(sa, salen, host, hostlen, serv, servlen, flags), 0);
}

/* The two conversions return LocalAlloc'd memory: one allocation each,
 * given back by LocalFree. */
BOOL WINAPI np__seam_ConvertStringSecurityDescriptorToSecurityDescriptorW(
    LPCWSTR s, DWORD rev, PSECURITY_DESCRIPTOR *sd, PULONG n) {
  const uintptr_t a[] = {(uintptr_t)s, rev, (uintptr_t)sd, (uintptr_t)n};
  struct np__seam_call c;
  long inj = np__seam_enter(
      &c, FN_ConvertStringSecurityDescriptorToSecurityDescriptorW, a, 4);
  BOOL ok;
  long e;

  if (inj != 0) {
    np__seam_leave(&c, FALSE, inj, 1);
    W32_set(inj);
    return FALSE;
  }
  ok = ConvertStringSecurityDescriptorToSecurityDescriptorW(s, rev, sd, n);
  e = ok ? 0 : W32_get();
  if (ok)
    np__seam_count_alloc(1);
  np__seam_leave(&c, ok, e, 0);
  W32_set(e);
  return ok;
}

BOOL WINAPI np__seam_ConvertSidToStringSidW(PSID sid, LPWSTR *s) {
  const uintptr_t a[] = {(uintptr_t)sid, (uintptr_t)s};
  struct np__seam_call c;
  long inj = np__seam_enter(&c, FN_ConvertSidToStringSidW, a, 2);
  BOOL ok;
  long e;

  if (inj != 0) {
    np__seam_leave(&c, FALSE, inj, 1);
    W32_set(inj);
    return FALSE;
  }
  ok = ConvertSidToStringSidW(sid, s);
  e = ok ? 0 : W32_get();
  if (ok)
    np__seam_count_alloc(1);
  np__seam_leave(&c, ok, e, 0);
  W32_set(e);
  return ok;
}

HLOCAL WINAPI np__seam_LocalFree(HLOCAL p) {
  const uintptr_t a[] = {(uintptr_t)p};
  struct np__seam_call c;
  HLOCAL r;

  (void)np__seam_enter(&c, FN_LocalFree, a, 1);
  if (p != NULL)
    np__seam_count_alloc(-1);
  r = LocalFree(p);
  np__seam_leave(&c, (intptr_t)r, 0, 0);
  return r;
}

/* GetSecurityInfo returns its error; the descriptor it hands out is
 * given back by LocalFree.  An observer may rewrite what it returned
 * (a test plays a server of another user so). */
DWORD WINAPI np__seam_GetSecurityInfo(HANDLE h, SE_OBJECT_TYPE type,
                                      SECURITY_INFORMATION what, PSID *owner,
                                      PSID *group, PACL *dacl, PACL *sacl,
                                      PSECURITY_DESCRIPTOR *sd) {
  const uintptr_t a[] = {NP__U8(h, type, what, owner, group, dacl, sacl, sd)};
  struct np__seam_call c;
  long inj = np__seam_enter(&c, FN_GetSecurityInfo, a, 8);
  DWORD r;

  if (inj != 0) {
    np__seam_leave(&c, inj, inj, 1);
    return (DWORD)inj;
  }
  r = GetSecurityInfo(h, type, what, owner, group, dacl, sacl, sd);
  if (r == ERROR_SUCCESS && sd != NULL)
    np__seam_count_alloc(1);
  np__seam_leave(&c, (intptr_t)r, (long)r, 0);
  return r;
}

/* The AFD poll: failures are NTSTATUS values, returned. */
NTSTATUS NTAPI np__seam_NtDeviceIoControlFile(HANDLE h, HANDLE ev,
                                              PIO_APC_ROUTINE apc, PVOID ctx,
                                              PIO_STATUS_BLOCK io, ULONG code,
                                              PVOID in, ULONG inn, PVOID out,
                                              ULONG outn) {
  const uintptr_t a[] = {
      NP__U10(h, ev, apc, ctx, io, code, in, inn, out, outn)};
  struct np__seam_call c;
  long inj = np__seam_enter(&c, FN_NtDeviceIoControlFile, a, 10);
  NTSTATUS st;

  if (inj != 0) {
    st = nt_status(inj);
    np__seam_leave(&c, st, st, 1);
    return st;
  }
  st = NtDeviceIoControlFile(h, ev, apc, ctx, io, code, in, inn, out, outn);
  np__seam_leave(&c, st, st, 0);
  return st;
}

/* Counted and recorded only, so that a test can tell that no path of
 * the poller's thread sleeps. */
void WINAPI np__seam_Sleep(DWORD ms) {
  const uintptr_t a[] = {(uintptr_t)ms};
  struct np__seam_call c;

  (void)np__seam_enter(&c, FN_Sleep, a, 1);
  Sleep(ms);
  np__seam_leave(&c, 0, 0, 0);
}
