/*
 * The open of a remote pipe name on a worker thread.  CreateFileW on
 * \\HOST\pipe\NAME talks SMB to HOST and can stall for as long as the
 * redirector's timeouts (tens of seconds for a host that does not
 * answer), so it must never run on the poller's thread.  A job runs it
 * on the system thread pool and posts the result to the poller's
 * completion port, where it is dispatched like any completion.
 *
 * Ownership.  The job is shared by two threads, and one atomic state
 * decides who frees it: the worker moves it from RUNNING to DONE and
 * then posts (the poller frees it when the packet comes), unless the
 * poller moved it to ABANDONED first (np_close, or a deadline): then the
 * worker closes the handle it may have opened and frees the job itself,
 * and the poller never hears of it again.  So closing never waits for
 * SMB, and nothing leaks whichever side comes first.
 *
 * While the job is RUNNING or DONE it holds a reference on its pipe and
 * counts as an operation in flight (np_poll_free waits for its packet);
 * an abandoned one gives both back at once.  The worker reads only the
 * job and the port handle copied into it; the pipe is the poller's.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "win/pipe.h"

#define POST_TRIES 50 /* about five seconds of retries, see post() */

enum { JOB_RUNNING, JOB_DONE, JOB_ABANDONED };

struct np__remote {
  struct np__op op;    /* its packet: Internal carries the Win32 error */
  volatile LONG state; /* JOB_* */
  HANDLE port;         /* the poller's, for the worker */
  HMODULE module;      /* this library, held while the worker runs */
  HANDLE handle;       /* the worker's result */
  uint32_t flags;      /* np_options flags, for the open */
  /* The poller's side. */
  struct np__pipe *pipe;
  np__remote_cb done;
  unsigned char cancelled; /* given up after the worker finished */
  wchar_t path[1];         /* the rest follows */
};

/* The packet could not be queued: only when the kernel is out of
 * memory.  The poller counts the job and waits for it (np_poll_free
 * for two seconds), so it is tried again for a while; past that it is
 * lost, and the job with it, as poll-iocp.c's drain gives up an
 * operation that never returns. */
static void post(HANDLE port, OVERLAPPED *ov) {
  DWORD ms = 1;
  int i;

  for (i = 0; i < POST_TRIES; i++) {
    if (PostQueuedCompletionStatus(port, 0, NP__KEY_POSTED, ov))
      return;
    Sleep(ms);
    ms = ms < 100 ? ms * 2 : 100;
  }
}

/* The worker.  Sleeping and blocking are allowed here, and only here. */
static void CALLBACK run(PTP_CALLBACK_INSTANCE inst, void *ctx) {
  struct np__remote *r = ctx;
  HMODULE module = r->module;

  /* The open may take long: let the pool start others meanwhile. */
  (void)CallbackMayRunLong(inst);
  r->op.ov.Internal = np__pipe_open_client(r->path, r->flags, &r->handle);
  if (InterlockedCompareExchange(&r->state, JOB_DONE, JOB_RUNNING) ==
      JOB_RUNNING) {
    /* From here the job is the poller's: only locals are used. */
    post(r->port, &r->op.ov);
  } else {
    if (r->handle != INVALID_HANDLE_VALUE)
      CloseHandle(r->handle);
    free(r);
  }
  if (module != NULL)
    FreeLibraryWhenCallbackReturns(inst, module);
}

/* The packet, on the poller's thread. */
static void job_done(struct np__op *op, DWORD err, DWORD bytes) {
  struct np__remote *r = NP__CONTAINER_OF(op, struct np__remote, op);
  struct np__pipe *p = r->pipe;

  NP__UNUSED(bytes);
  if (!r->cancelled)
    r->done(p, err, r->handle);
  else if (r->handle != INVALID_HANDLE_VALUE)
    CloseHandle(r->handle); /* opened after np_close: nobody wants it */
  free(r);
  np__pipe_op_end(p);
}

/* Holds the module that contains run(), so that a program unloading
 * the DLL cannot pull the code from under a worker (linked statically,
 * the program itself is held, which is harmless).  NULL when the call
 * failed: the job runs all the same. */
static HMODULE hold_module(void) {
  HMODULE m = NULL;

  if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
                          (LPCWSTR)(void *)run, &m))
    return NULL;
  return m;
}

int np__remote_start(struct np__pipe *p, const wchar_t *path,
                     uint32_t flags, np__remote_cb done,
                     struct np__remote **out) {
  size_t n = wcslen(path);
  struct np__remote *r = malloc(sizeof(*r) + n * sizeof(wchar_t));

  if (r == NULL)
    return NP_ENOMEM;
  memcpy(r->path, path, (n + 1) * sizeof(wchar_t));
  r->state = JOB_RUNNING;
  r->port = np__iocp_port(p->poll);
  r->handle = INVALID_HANDLE_VALUE;
  r->flags = flags;
  r->op.home = NULL;
  r->pipe = p;
  r->done = done;
  r->cancelled = 0;
  r->op.complete = job_done;
  np__pipe_op_begin(p, &r->op);
  r->module = hold_module();
  if (!TrySubmitThreadpoolCallback(run, r, NULL)) {
    int err = np__error_from_win32(GetLastError());

    if (r->module != NULL)
      FreeLibrary(r->module);
    free(r);
    np__pipe_op_end(p);
    return err;
  }
  *out = r;
  return 0;
}

void np__remote_cancel(struct np__remote *r) {
  struct np__pipe *p = r->pipe;

  if (InterlockedCompareExchange(&r->state, JOB_ABANDONED, JOB_RUNNING) ==
      JOB_RUNNING) {
    /* The worker frees the job: it is no longer in flight here. */
    np__pipe_op_end(p);
    return;
  }
  /* Done already: its packet is on the way and job_done drops it. */
  r->cancelled = 1;
}
