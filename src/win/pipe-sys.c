/*
 * The one place that turns an address into a Win32 pipe path, and the
 * one that opens a client end.  (The tests record and fail the pipe
 * adapter's system calls through the seam of the test-only build,
 * common/seam.h.)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "win/pipe.h"

/* Converts UTF-8 text to UTF-16 at dst (room for cap characters,
 * terminator included).  Returns the characters written without the
 * terminator, or -1 for invalid UTF-8. */
static int widen(const char *text, wchar_t *dst, int cap) {
  int n =
      MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text, -1, dst, cap);

  return n > 0 ? n - 1 : -1;
}

int np__pipe_path(const struct np__address *addr, wchar_t **out) {
  size_t cap;
  wchar_t *path;
  int n;

  *out = NULL;
  /* Windows has AF_UNIX sockets, but npipe serves only pipes and TCP
   * there: say so rather than look for a pipe of that name. */
  if (addr->kind == NP__ADDR_UNIX)
    return NP_ENOTSUP;
  /* UTF-16 never needs more units than UTF-8 has bytes. */
  cap = strlen(addr->host) + strlen(addr->name) + 16;
  if ((path = malloc(cap * sizeof(wchar_t))) == NULL)
    return NP_ENOMEM;
  wcscpy(path, L"\\\\");
  n = widen(addr->host, path + 2, (int)cap - 2);
  if (n >= 0) {
    wcscpy(path + 2 + n, L"\\pipe\\");
    n = widen(addr->name, path + 8 + n, (int)cap - 8 - n);
  }
  if (n < 0) {
    free(path);
    return NP_EINVAL;
  }
  *out = path;
  return 0;
}

DWORD np__pipe_open_client(const wchar_t *path, uint32_t flags, HANDLE *h) {
  SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, FALSE};
  /* The server may learn who the client is, and act as it only when the
   * client says so. */
  DWORD level = flags & NP_OPT_IMPERSONATE ? SECURITY_IMPERSONATION
                                           : SECURITY_IDENTIFICATION;

  *h = CreateFileW(path, GENERIC_READ | GENERIC_WRITE, 0, &sa, OPEN_EXISTING,
                   FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | level,
                   NULL);
  return *h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
}
