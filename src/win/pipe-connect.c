/*
 * np_connect to a pipe name: open the client end, waiting for a busy or
 * absent name when asked, within the deadline and without spinning.
 *
 * Waiting.  WaitNamedPipeW blocks until an instance listens, but it is
 * only a hint: under Wine it often returns FALSE at once (error 676)
 * while the server replaces instances, and the instance it saw can be
 * taken by another client before the open.  So the open is retried
 * whatever it said, in slices of at most WAIT_SLICE_MS, with a sleep
 * that backs off from 1 to BACKOFF_MAX_MS whenever it did not really
 * wait.  An absent name has nothing to wait on: sleeps only.
 */
#include "config.h"

#include <stdlib.h>

#include "win/pipe.h"

#define WAIT_SLICE_MS 250
#define BACKOFF_MAX_MS 50

/* Opens the client end: overlapped, not inheritable, and with SQOS
 * lowered to identification so the server cannot act as this process.
 * Returns 0 or a Win32 error. */
static DWORD open_client(const wchar_t *path, HANDLE *h) {
  SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, FALSE};

  *h = CreateFileW(
      path, GENERIC_READ | GENERIC_WRITE, 0, &sa, OPEN_EXISTING,
      FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
      NULL);
  return *h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
}

struct waiter {
  int forever;
  uint64_t deadline;
  DWORD backoff;
  int seen_busy; /* the name existed: a later "not found" is a gap */
  int said_free; /* the last WaitNamedPipeW returned TRUE */
};

/* Milliseconds to wait now: up to a slice, 0 when time is up. */
static DWORD next_slice(const struct waiter *w) {
  uint64_t now = np__now_ms();

  if (w->forever)
    return WAIT_SLICE_MS;
  if (now >= w->deadline)
    return 0;
  return w->deadline - now < WAIT_SLICE_MS ? (DWORD)(w->deadline - now)
                                           : WAIT_SLICE_MS;
}

static void back_off(struct waiter *w, DWORD slice) {
  Sleep(w->backoff < slice ? w->backoff : slice);
  if (w->backoff < BACKOFF_MAX_MS)
    w->backoff *= 2;
}

/* Waits a while for a busy name to free an instance. */
static void wait_busy(const wchar_t *path, struct waiter *w, DWORD slice) {
  uint64_t start = np__now_ms();
  int said_free = WaitNamedPipeW(path, slice) != 0;
  int at_once = np__now_ms() - start < 1;

  /* An instance was free: try again at once, unless the last answer was
   * the same and the open still found none (another client was faster,
   * or the wait is not waiting).  An early FALSE never spins either. */
  if (said_free ? w->said_free && at_once : np__now_ms() - start < slice)
    back_off(w, slice);
  else if (said_free)
    w->backoff = 1;
  w->said_free = said_free;
}

/* Opens path as opts allow.  Returns 0 with *h set, or NP_E*. */
static int open_waiting(const wchar_t *path, const struct np__opts *o,
                        HANDLE *h) {
  struct waiter w = {0, 0, 1, 0, 0};

  /* One more millisecond: the clock's ticks must not cut a wait short. */
  w.forever = o->timeout_ms < 0;
  if (!w.forever)
    w.deadline = np__now_ms() + (uint64_t)o->timeout_ms + 1;
  for (;;) {
    DWORD err = open_client(path, h), slice;
    int busy = err == ERROR_PIPE_BUSY && (o->flags & NP_OPT_WAIT_BUSY);
    int absent = err == ERROR_FILE_NOT_FOUND &&
                 ((o->flags & NP_OPT_WAIT_ABSENT) || w.seen_busy);

    if (err == 0)
      return 0;
    if (!busy && !absent)
      return np__error_from_win32(err);
    w.seen_busy |= busy;
    if ((slice = next_slice(&w)) == 0)
      return NP_ETIMEDOUT;
    if (busy)
      wait_busy(path, &w, slice);
    else
      back_off(&w, slice);
  }
}

int np__pipe_connect(np_poll *poll, const struct np__address *addr,
                     const struct np__opts *opts, uint64_t token,
                     uint32_t interest, np_stream **out) {
  struct np__pipe *p;
  wchar_t *path;
  HANDLE h;
  int err;

  if ((err = np__pipe_path(addr, &path)) != 0)
    return err;
  err = open_waiting(path, opts, &h);
  free(path);
  if (err != 0)
    return err;
  if (opts->flags & NP_OPT_MESSAGE) {
    DWORD mode = PIPE_READMODE_MESSAGE;

    /* Fails (ERROR_INVALID_PARAMETER) when the server is in byte mode. */
    if (!SetNamedPipeHandleState(h, &mode, NULL, NULL)) {
      err = np__error_from_win32(GetLastError());
      CloseHandle(h);
      return err;
    }
  }
  if ((err = np__pipe_new(poll, h, opts->flags, opts->write_limit, 0, &p))) {
    CloseHandle(h);
    return err;
  }
  np__pipe_open(p, token, interest);
  *out = &p->stream;
  return 0;
}
