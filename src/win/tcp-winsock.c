/*
 * Winsock for the TCP modules: start-up, name resolution, socket
 * creation and address strings.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tcp.h"

/* A failed start is not remembered: returning FALSE leaves the once
 * open, so the next TCP call tries again rather than failing for the
 * life of the process.  param is the caller's error slot (the callback
 * runs in the caller's thread). */
static BOOL CALLBACK wsa_start(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  WSADATA data;
  int rc = WSAStartup(MAKEWORD(2, 2), &data);

  NP__UNUSED(once);
  NP__UNUSED(ctx);
  /* Winsock stays up for the life of the process, as the library has no
   * global tear-down. */
  *(int *)param = rc != 0 ? np__error_from_win32((DWORD)rc) : 0;
  return rc == 0;
}

int np__wsa_init(void) {
  static INIT_ONCE once = INIT_ONCE_STATIC_INIT;
  int err = NP_EIO;

  return InitOnceExecuteOnce(&once, wsa_start, &err, NULL) ? 0 : err;
}

int np__tcp_resolve(const struct np__address *addr, int passive,
                    struct addrinfo **out) {
  struct addrinfo hints;
  char port[8];
  int rc;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  snprintf(port, sizeof(port), "%u", addr->port);
  /* getaddrinfo returns its WSA error code rather than setting one. */
  rc = getaddrinfo(addr->host, port, &hints, out);
  return rc != 0 ? np__error_from_win32((DWORD)rc) : 0;
}

static SOCKET socket_noinherit(int family) {
  SOCKET s = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                        WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);

  /* Windows 7 before SP1 does not know the flag: clear inheritance on
   * the handle instead. */
  if (s == INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
    s = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                   WSA_FLAG_OVERLAPPED);
    if (s != INVALID_SOCKET)
      (void)SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
  }
  return s;
}

int np__tcp_socket(int family, SOCKET *out) {
  u_long on = 1;
  SOCKET s = socket_noinherit(family);

  if (s == INVALID_SOCKET)
    return np__error_from_win32((DWORD)WSAGetLastError());
  if (ioctlsocket(s, FIONBIO, &on) != 0) {
    int err = np__error_from_win32((DWORD)WSAGetLastError());

    closesocket(s);
    return err;
  }
  *out = s;
  return 0;
}

void np__tcp_tune(SOCKET s) {
  BOOL on = TRUE;

  (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&on, sizeof(on));
}

int np__tcp_local_address(SOCKET s, char *buf, size_t len) {
  struct sockaddr_storage ss;
  int sslen = sizeof(ss);
  char host[NI_MAXHOST], port[NI_MAXSERV];
  int n;

  if (getsockname(s, (struct sockaddr *)&ss, &sslen) != 0)
    return np__error_from_win32((DWORD)WSAGetLastError());
  n = getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), port,
                  sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
  if (n != 0)
    return np__error_from_win32((DWORD)n);
  n = snprintf(buf, len,
               ss.ss_family == AF_INET6 ? "tcp:[%s]:%s" : "tcp:%s:%s", host,
               port);
  if (n < 0)
    return NP_EINVAL;
  return (size_t)n < len ? n : NP_ENAMETOOLONG;
}
