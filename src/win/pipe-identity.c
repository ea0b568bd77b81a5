/*
 * Who is at the other end of a pipe, and acting as the client.
 *
 * The server end reads the client's token by impersonating the client
 * for an instant (the client opened at identification level, which is
 * enough to read a token and no more), then puts back whatever token the
 * thread had before, so that a caller already impersonating someone
 * keeps doing so.  The client end asks who serves the instance it
 * opened (np__security_server_sid), as the server check does.  Names are looked up after the
 * poller's lock is released (np__peer_id_user), since the lookup may ask
 * a domain controller.
 */
#include "config.h"

#include <winsock2.h>
#include <windows.h>
/* sddl.h needs windows.h first. */
#include <sddl.h>
#include <stdlib.h>
#include <string.h>

#include "win/pipe.h"

#define NAME_MAX_ 256 /* characters of an account or domain name */

/* The client's user, read through its identification token. */
static int client_id(HANDLE pipe, struct np__peer_id *id) {
  HANDLE before = NULL, token = NULL;
  DWORD e = 0;
  int err;

  /* No token before is the usual case (ERROR_NO_TOKEN). */
  if (!OpenThreadToken(GetCurrentThread(), TOKEN_IMPERSONATE, TRUE, &before))
    before = NULL;
  if (!ImpersonateNamedPipeClient(pipe)) {
    e = GetLastError();
  } else {
    if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &token))
      e = GetLastError();
    /* Back to what the thread was before, whatever happened. */
    if (!SetThreadToken(NULL, before))
      (void)RevertToSelf();
  }
  if (before != NULL)
    CloseHandle(before);
  if (e != 0)
    return np__error_from_win32(e);
  err = np__security_token_user(token, (PSID)id->sid);
  CloseHandle(token);
  return err;
}

static struct np__pipe *pipe_of(np_stream *s) {
  return NP__CONTAINER_OF(s, struct np__pipe, stream);
}

int np__pipe_peer_id(np_stream *s, struct np__peer_id *id) {
  struct np__pipe *p = pipe_of(s);

  if (p->handle == INVALID_HANDLE_VALUE)
    return p->werr != 0 ? p->werr : NP_ENOTCONN;
  return p->server ? client_id(p->handle, id)
                   : np__security_server_sid(p->handle, (PSID)id->sid);
}

int np__pipe_impersonate(np_stream *s) {
  struct np__pipe *p = pipe_of(s);

  if (!p->server)
    return NP_ENOTSUP; /* a client cannot act as its server */
  if (p->handle == INVALID_HANDLE_VALUE)
    return p->werr != 0 ? p->werr : NP_ENOTCONN;
  if (!ImpersonateNamedPipeClient(p->handle))
    return np__error_from_win32(GetLastError());
  return 0;
}

int np__backend_revert(void) {
  if (!RevertToSelf())
    return np__error_from_win32(GetLastError());
  return 0;
}

/* UTF-16 to UTF-8 into buf.  Returns the length or NP_ENAMETOOLONG. */
static int narrow(const wchar_t *text, char *buf, size_t len) {
  int n = WideCharToMultiByte(CP_UTF8, 0, text, -1, NULL, 0, NULL, NULL);

  if (n <= 0)
    return NP_EINVAL;
  if ((size_t)n > len)
    return NP_ENAMETOOLONG;
  WideCharToMultiByte(CP_UTF8, 0, text, -1, buf, n, NULL, NULL);
  return n - 1;
}

int np__peer_id_sid(const struct np__peer_id *id, char *buf, size_t len) {
  wchar_t *text;
  int r;

  if (!ConvertSidToStringSidW((PSID)id->sid, &text))
    return np__error_from_win32(GetLastError());
  r = narrow(text, buf, len);
  LocalFree(text);
  return r;
}

int np__peer_id_user(const struct np__peer_id *id, char *buf, size_t len) {
  wchar_t name[NAME_MAX_], domain[NAME_MAX_], both[2 * NAME_MAX_ + 2];
  DWORD nlen = NAME_MAX_, dlen = NAME_MAX_;
  SID_NAME_USE use;

  /* An account the system cannot name (a deleted one, or one of a
   * domain out of reach) is given by its SID, as Windows shows it. */
  if (!LookupAccountSidW(NULL, (PSID)id->sid, name, &nlen, domain, &dlen,
                         &use))
    return np__peer_id_sid(id, buf, len);
  if (domain[0] != L'\0') {
    wcscpy(both, domain);
    wcscat(both, L"\\");
    wcscat(both, name);
  } else {
    wcscpy(both, name);
  }
  return narrow(both, buf, len);
}
