/*
 * The Windows poller: one I/O completion port, drained in batches with
 * GetQueuedCompletionStatusEx and dispatched by completion key.  Any
 * number of threads may wait on the port at once, without the poller's
 * lock; each dispatches what it dequeued under the lock.  A completion
 * never outlives its object: the object holds a reference for every
 * operation in flight, so a packet one thread holds while another closes
 * the object still finds it.
 */
#include "config.h"

#include <stdlib.h>

#include "afd.h"
#include "common/bufpool.h"
#include "win.h"

#include <winternl.h>

#define ENTRY_BATCH 64
#define DRAIN_MS 2000
#define POOL_CACHE (4u * 1024u * 1024u) /* bytes of idle buffers kept */

typedef LONG(NTAPI *nt_to_dos_fn)(LONG status);

struct np_poll {
  struct np__poll_core core;
  HANDLE port;
  volatile LONG wake_pending;
  size_t ops_in_flight; /* np__iocp_op_begin minus np__iocp_op_end */
  struct np__afd_group *afd_groups;
  struct np__linger *lingering; /* np__iocp_linger_add */
  struct np__bufpool pool;
  struct np__pipe *deferred; /* np__iocp_deferred */
  int skipped_os; /* the last OS wait was left out (np__backend_poll_os) */
};

static nt_to_dos_fn nt_to_dos;

int np__error_from_win32(DWORD err) { return np__error_from_os((long)err); }

struct np__poll_core *np__poll_core(np_poll *poll) { return &poll->core; }

HANDLE np__iocp_port(np_poll *poll) { return poll->port; }

void np__iocp_op_begin(np_poll *poll) { poll->ops_in_flight++; }

void np__iocp_op_end(np_poll *poll) { poll->ops_in_flight--; }

void np__iocp_linger_add(np_poll *poll, struct np__linger *l) {
  l->prev = NULL;
  l->next = poll->lingering;
  if (poll->lingering != NULL)
    poll->lingering->prev = l;
  poll->lingering = l;
}

void np__iocp_linger_remove(np_poll *poll, struct np__linger *l) {
  if (l->prev != NULL)
    l->prev->next = l->next;
  else
    poll->lingering = l->next;
  if (l->next != NULL)
    l->next->prev = l->prev;
  l->next = l->prev = NULL;
}

struct np__bufpool *np__iocp_bufpool(np_poll *poll) { return &poll->pool; }

struct np__pipe **np__iocp_deferred(np_poll *poll) { return &poll->deferred; }

struct np__afd_group **np__iocp_afd_groups(np_poll *poll) {
  return &poll->afd_groups;
}

uint64_t np__now_ms(void) {
  static LARGE_INTEGER freq;
  LARGE_INTEGER now;

  /* QueryPerformanceFrequency is fixed at boot and never fails on XP+. */
  if (freq.QuadPart == 0)
    QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&now);
  return (uint64_t)(now.QuadPart / (freq.QuadPart / 1000));
}

int np__backend_poll_new(np_poll **out) {
  np_poll *poll = calloc(1, sizeof(*poll));

  if (poll == NULL)
    return NP_ENOMEM;
  if (nt_to_dos == NULL)
    nt_to_dos = (nt_to_dos_fn)(void (*)(void))GetProcAddress(
        GetModuleHandleW(L"ntdll.dll"), "RtlNtStatusToDosError");
  np__core_init(&poll->core);
  np__bufpool_init(&poll->pool, POOL_CACHE);
  /* Concurrency 0 (one per CPU): with 1, a second waiting thread would be
   * held back while the first runs, and threads could not share it. */
  poll->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
  if (poll->port == NULL) {
    int err = np__error_from_win32(GetLastError());

    np__core_fini(&poll->core);
    free(poll);
    return err;
  }
  *out = poll;
  return 0;
}

/* Dispatches completions until every counted operation has come back.
 * Cancelled operations, and those whose handles are closed, return at
 * once; the bound only guards against one that never does (a driver
 * that ignores cancellation). */
static void drain(np_poll *poll) {
  uint64_t deadline = np__now_ms() + DRAIN_MS;

  while (poll->ops_in_flight > 0) {
    uint64_t now = np__now_ms();

    /* A failed wait is retried until the deadline: giving up at once
     * would leak everything in flight over one transient error. */
    if (now >= deadline)
      break;
    (void)np__backend_poll_os(poll, (int)(deadline - now), 0);
  }
}

int np__backend_flushing(np_poll *poll) {
  const struct np__linger *l;

  for (l = poll->lingering; l != NULL; l = l->next)
    if (l->flushing(l))
      return 1;
  return 0;
}

/* What is still in flight belongs to objects already closed: writes
 * being flushed, cancelled reads, connects and AFD polls.  Everything is
 * cancelled and every handle the poller owns is closed before the
 * drain, so that no peer, no pipe name and no socket waits for it.  The
 * drain then frees the objects whose completions come.  One that has
 * not come by the deadline may still be written by the kernel (the
 * OVERLAPPED, and a read's buffer): that object is leaked on purpose,
 * since freeing it would corrupt whatever reuses the memory, and only
 * its memory is, since its handle is closed already.  The port goes
 * last; the kernel keeps it alive for such late completions. */
void np__backend_poll_free(np_poll *poll) {
  struct np__linger *l, *next;

  for (l = poll->lingering; l != NULL; l = next) {
    next = l->next;
    l->cancel(l); /* may free the object, and l with it */
  }
  np__afd_devices_close(poll);
  np__core_lock(&poll->core);
  drain(poll);
  np__lock_release(&poll->core.lock);
  CloseHandle(poll->port);
  np__bufpool_destroy(&poll->pool);
  np__core_fini(&poll->core);
  free(poll);
}

int np__iocp_associate(np_poll *poll, HANDLE handle) {
  if (CreateIoCompletionPort(handle, poll->port, NP__KEY_OP, 0) == NULL)
    return np__error_from_win32(GetLastError());
  return 0;
}

int np__iocp_post(np_poll *poll, struct np__op *op, DWORD err, DWORD bytes) {
  /* The packet carries a Win32 code in OVERLAPPED.Internal, where the
   * kernel's packets carry an NTSTATUS; its key tells dispatch which. */
  op->ov.Internal = err;
  if (!PostQueuedCompletionStatus(poll->port, bytes, NP__KEY_POSTED, &op->ov))
    return np__error_from_win32(GetLastError());
  return 0;
}

/* FILE_COMPLETION_INFORMATION, for FileReplaceCompletionInformation. */
struct completion_info {
  HANDLE port;
  void *key;
};

typedef LONG(NTAPI *set_info_fn)(HANDLE file, IO_STATUS_BLOCK *iosb,
                                 void *info, ULONG len, int info_class);

#define FILE_REPLACE_COMPLETION_INFORMATION 61
#define STATUS_NOT_IMPLEMENTED_ ((LONG)0xC0000002)
#define STATUS_INVALID_INFO_CLASS_ ((LONG)0xC0000003)

int np__iocp_move(np_poll *poll, HANDLE handle) {
  static set_info_fn set_info;
  struct completion_info info = {poll->port, (void *)(ULONG_PTR)NP__KEY_OP};
  IO_STATUS_BLOCK iosb;
  LONG status;

  if (set_info == NULL)
    set_info = (set_info_fn)(void (*)(void))GetProcAddress(
        GetModuleHandleW(L"ntdll.dll"), "NtSetInformationFile");
  if (set_info == NULL)
    return 0;
  status = set_info(handle, &iosb, &info, sizeof(info),
                    FILE_REPLACE_COMPLETION_INFORMATION);
  if (status == STATUS_NOT_IMPLEMENTED_ || status == STATUS_INVALID_INFO_CLASS_)
    return 0;
  if (status < 0)
    return nt_to_dos != NULL ? np__error_from_win32((DWORD)nt_to_dos(status))
                             : NP_EIO;
  return 1;
}

/* A packet of an op that belongs to another poller goes on to its port,
 * untouched: its OVERLAPPED keeps the NTSTATUS.  Posting fails only when
 * the kernel is out of memory; the packet then comes back to this port
 * for another try. */
static void forward(np_poll *poll, const OVERLAPPED_ENTRY *e,
                    np_poll *home) {
  if (!PostQueuedCompletionStatus(home->port, e->dwNumberOfBytesTransferred,
                                  NP__KEY_FORWARDED, e->lpOverlapped))
    (void)PostQueuedCompletionStatus(poll->port,
                                     e->dwNumberOfBytesTransferred,
                                     NP__KEY_OP, e->lpOverlapped);
}

/* The Win32 error code of a dequeued operation.  GetQueuedCompletionStatusEx
 * reports per-entry status only as the NTSTATUS in OVERLAPPED.Internal. */
static DWORD entry_error(const OVERLAPPED *ov) {
  LONG status = (LONG)ov->Internal;

  if (status == 0)
    return 0;
  return nt_to_dos != NULL ? (DWORD)nt_to_dos(status) : ERROR_GEN_FAILURE;
}

static void dispatch(np_poll *poll, const OVERLAPPED_ENTRY *e, int *woken) {
  struct np__op *op;

  switch (e->lpCompletionKey) {
  case NP__KEY_WAKE:
    InterlockedExchange(&poll->wake_pending, 0);
    *woken = 1;
    break;
  case NP__KEY_NUDGE:
    np__core_nudge_taken(&poll->core);
    break;
  case NP__KEY_OP:
    op = NP__CONTAINER_OF(e->lpOverlapped, struct np__op, ov);
    if (op->home != NULL && op->home != poll) {
      forward(poll, e, op->home);
      break;
    }
    op->complete(op, entry_error(e->lpOverlapped),
                 e->dwNumberOfBytesTransferred);
    break;
  case NP__KEY_FORWARDED:
    op = NP__CONTAINER_OF(e->lpOverlapped, struct np__op, ov);
    op->complete(op, entry_error(e->lpOverlapped),
                 e->dwNumberOfBytesTransferred);
    break;
  case NP__KEY_POSTED:
    op = NP__CONTAINER_OF(e->lpOverlapped, struct np__op, ov);
    op->complete(op, (DWORD)e->lpOverlapped->Internal,
                 e->dwNumberOfBytesTransferred);
    break;
  default:
    /* A foreign packet on our port (a handle shared with another
     * process): its OVERLAPPED is not ours to touch. */
    break;
  }
}

int np__backend_poll_os(np_poll *poll, int timeout_ms, int batch) {
  OVERLAPPED_ENTRY entries[ENTRY_BATCH];
  ULONG n = 0, i;
  int woken = 0;

  /* Deferred reads start now; one that completes at once makes its
   * stream ready, and then this wait must not block.  When that is all
   * there is to report, the port is not even asked (under Wine an empty
   * look is two wineserver round trips), but only every other time, so
   * that streams whose reads keep completing at once cannot starve the
   * completions queued for the others; never over a posted wake-up,
   * which this wait takes; and never in a look that may not block, which
   * promises to take what the port holds (np_poll_flush with 0). */
  if (poll->deferred != NULL) {
    int was_queued = np__core_has_queued(&poll->core);

    np__pipe_read_deferred(poll);
    if (np__core_has_queued(&poll->core)) {
      if (!was_queued && !poll->skipped_os && !poll->wake_pending &&
          timeout_ms != 0) {
        poll->skipped_os = 1;
        return 0;
      }
      timeout_ms = 0;
    }
  }
  poll->skipped_os = 0;
  /* Nothing in flight and no wake-up posted: no packet of ours can be in
   * the port, and a look that may not wait is left out (under Wine it is
   * two wineserver round trips, which an event loop that polls after
   * closing its last stream would pay for nothing). */
  if (timeout_ms == 0 && poll->ops_in_flight == 0 && !poll->wake_pending)
    return 0;
  np__core_os_wait_begin(&poll->core);
  if (batch <= 0 || batch > ENTRY_BATCH)
    batch = ENTRY_BATCH;
  if (!GetQueuedCompletionStatusEx(poll->port, entries, (ULONG)batch, &n,
                                   timeout_ms < 0 ? INFINITE
                                                  : (DWORD)timeout_ms,
                                   FALSE)) {
    DWORD err = GetLastError();

    np__core_os_wait_end(&poll->core);
    return err == WAIT_TIMEOUT ? 0 : np__error_from_win32(err);
  }
  np__core_os_wait_end(&poll->core);
  for (i = 0; i < n; i++)
    dispatch(poll, &entries[i], &woken);
  return woken;
}

void np__backend_nudge(struct np__poll_core *core) {
  np_poll *poll = NP__CONTAINER_OF(core, np_poll, core);

  /* Posting fails only when the kernel is out of memory; the nudge is
   * then lost, and the queued work waits for the next completion. */
  if (!PostQueuedCompletionStatus(poll->port, 0, NP__KEY_NUDGE, NULL))
    np__core_nudge_taken(core);
}

int np__backend_wake(np_poll *poll) {
  if (InterlockedExchange(&poll->wake_pending, 1) != 0)
    return 0;
  if (!PostQueuedCompletionStatus(poll->port, 0, NP__KEY_WAKE, NULL)) {
    DWORD err = GetLastError();

    InterlockedExchange(&poll->wake_pending, 0);
    return np__error_from_win32(err);
  }
  return 0;
}
