/*
 * The AFD device layer (see afd.h): groups of sockets on shared
 * \Device\Afd handles, and per socket a three-state poll: idle, pending,
 * or cancelled and waiting for its completion.  A closed socket's state
 * outlives its cancelled poll and is freed by that poll's completion.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <winsock2.h>
#include <mswsock.h>
#include <windows.h>
#include <winternl.h>

#include "afd.h"

#define IOCTL_AFD_POLL 0x00012024u

enum { POLL_IDLE, POLL_PENDING, POLL_CANCELLED };

/* One AFD handle and the sockets that poll through it.  The poller's
 * groups form a ring whose groups with room come before the full ones, so
 * that the head is the place to join. */
struct np__afd_group {
  HANDLE device; /* NULL once np_poll_free closed it */
  size_t members;
  struct np__afd_group *next, *prev;
};

/* Opens an AFD handle on poll's port.  Every name below \Device\Afd opens
 * the driver; the suffix only labels the handle.  The GLOBALROOT path
 * works through CreateFileW on Windows and under Wine alike. */
static int device_open(np_poll *poll, HANDLE *out) {
  HANDLE h = CreateFileW(L"\\\\.\\GLOBALROOT\\Device\\Afd\\npipe", SYNCHRONIZE,
                         FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                         OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
  int err;

  if (h == INVALID_HANDLE_VALUE)
    return np__error_from_win32(GetLastError());
  err = np__iocp_associate(poll, h);
  /* Nobody waits on the handle itself: spare the kernel the event. */
  if (err == 0 &&
      !SetFileCompletionNotificationModes(h, FILE_SKIP_SET_EVENT_ON_HANDLE))
    err = np__error_from_win32(GetLastError());
  if (err != 0) {
    CloseHandle(h);
    return err;
  }
  *out = h;
  return 0;
}

static void ring_unlink(struct np__afd_group **head, struct np__afd_group *g) {
  if (g->next == g) {
    *head = NULL;
  } else {
    g->prev->next = g->next;
    g->next->prev = g->prev;
    if (*head == g)
      *head = g->next;
  }
  g->next = g->prev = g;
}

/* Inserts g in front of the ring's head and makes it the head. */
static void ring_push_front(struct np__afd_group **head,
                            struct np__afd_group *g) {
  struct np__afd_group *h = *head;

  if (h == NULL) {
    g->next = g->prev = g;
  } else {
    g->next = h;
    g->prev = h->prev;
    h->prev->next = g;
    h->prev = g;
  }
  *head = g;
}

static int group_join(np_poll *poll, struct np__afd_group **out) {
  struct np__afd_group **head = np__iocp_afd_groups(poll);
  struct np__afd_group *g = *head;
  int err;

  if (g == NULL || g->members >= NP__AFD_GROUP_MAX) {
    g = calloc(1, sizeof(*g));
    if (g == NULL)
      return NP_ENOMEM;
    if ((err = device_open(poll, &g->device)) != 0) {
      free(g);
      return err;
    }
    ring_push_front(head, g);
  }
  /* A group that fills up moves behind the others: rotating the ring
   * makes it the last. */
  if (++g->members == NP__AFD_GROUP_MAX)
    *head = g->next;
  *out = g;
  return 0;
}

static void group_leave(np_poll *poll, struct np__afd_group *g) {
  struct np__afd_group **head = np__iocp_afd_groups(poll);

  /* No poll is in flight on a group without members, so its handle can
   * go at once. */
  if (--g->members == 0) {
    ring_unlink(head, g);
    if (g->device != NULL)
      CloseHandle(g->device);
    free(g);
  } else if (g->members == NP__AFD_GROUP_MAX - 1) {
    ring_unlink(head, g);
    ring_push_front(head, g);
  }
}

/* The socket AFD knows.  A layered service provider hands out handles of
 * its own, which AFD refuses: SIO_BASE_HANDLE unwraps them, and
 * SIO_BSP_HANDLE_POLL does where an LSP breaks SIO_BASE_HANDLE. */
static int base_socket(SOCKET s, HANDLE *out) {
  SOCKET base = INVALID_SOCKET;
  DWORD n = 0;

  if (WSAIoctl(s, SIO_BASE_HANDLE, NULL, 0, &base, sizeof(base), &n, NULL,
               NULL) != 0 &&
      WSAIoctl(s, SIO_BSP_HANDLE_POLL, NULL, 0, &base, sizeof(base), &n, NULL,
               NULL) != 0)
    return np__error_from_win32((DWORD)WSAGetLastError());
  *out = (HANDLE)base;
  return 0;
}

static void on_complete(struct np__op *op, DWORD err, DWORD bytes);

int np__afd_sock_open(np_poll *poll, struct np__afd_sock *as, SOCKET s,
                      np__afd_events_cb on_events, np__afd_free_cb on_free) {
  int err;

  memset(as, 0, sizeof(*as));
  as->op.complete = on_complete;
  as->poll = poll;
  as->state = POLL_IDLE;
  as->on_events = on_events;
  as->on_free = on_free;
  if ((err = base_socket(s, &as->base)) != 0)
    return err;
  return group_join(poll, &as->group);
}

int np__afd_sock_rebind(struct np__afd_sock *as, SOCKET s) {
  return base_socket(s, &as->base);
}

static int submit(struct np__afd_sock *as, ULONG events) {
  NTSTATUS status;

  as->info.timeout.QuadPart = INT64_MAX;
  as->info.handle_count = 1;
  as->info.exclusive = FALSE;
  as->info.handles[0].handle = as->base;
  as->info.handles[0].events = events;
  as->info.handles[0].status = 0;
  memset(&as->op.ov, 0, sizeof(as->op.ov));
  /* The OVERLAPPED serves as the IO_STATUS_BLOCK (Internal is the
   * status, InternalHigh the count) and as the APC context, which is what
   * the port's packet carries as lpOverlapped. */
  status = NtDeviceIoControlFile(as->group->device, NULL, NULL, &as->op.ov,
                                 (PIO_STATUS_BLOCK)(void *)&as->op.ov,
                                 IOCTL_AFD_POLL, &as->info, sizeof(as->info),
                                 &as->info, sizeof(as->info));
  /* Without skip-on-success, an immediate result still queues a packet;
   * only a failure reported here queues none. */
  if (status != 0 && status != (NTSTATUS)STATUS_PENDING)
    return np__error_from_win32(RtlNtStatusToDosError(status));
  as->state = POLL_PENDING;
  as->armed = events;
  np__iocp_op_begin(as->poll);
  return 0;
}

static void cancel(struct np__afd_sock *as) {
  /* ERROR_NOT_FOUND means the poll has completed and its packet waits in
   * the port: either way exactly one completion comes.  A closed device
   * has cancelled its polls already. */
  if (as->group->device != NULL)
    CancelIoEx(as->group->device, &as->op.ov);
  as->state = POLL_CANCELLED;
}

int np__afd_sock_want(struct np__afd_sock *as, ULONG events) {
  switch (as->state) {
  case POLL_IDLE:
    return events != 0 ? submit(as, events) : 0;
  case POLL_PENDING:
    /* The poll in flight covers the wish, or at worst reports an event
     * nobody waits for any more, which costs one idle completion.  A poll
     * that lacks events is replaced, from its completion: a second poll
     * on the socket now would mix up the results. */
    if ((events & ~as->armed) != 0)
      cancel(as);
    return 0;
  default:
    /* The cancelled poll's completion asks the owner again. */
    return 0;
  }
}

static void release(struct np__afd_sock *as) {
  group_leave(as->poll, as->group);
  as->on_free(as);
}

void np__afd_sock_close(struct np__afd_sock *as) {
  as->closed = 1;
  if (as->state == POLL_PENDING)
    cancel(as);
  if (as->state == POLL_IDLE)
    release(as);
}

static void on_complete(struct np__op *op, DWORD err, DWORD bytes) {
  struct np__afd_sock *as = NP__CONTAINER_OF(op, struct np__afd_sock, op);
  ULONG events = 0;

  NP__UNUSED(bytes);
  as->state = POLL_IDLE;
  as->armed = 0;
  np__iocp_op_end(as->poll);
  if (as->closed) {
    release(as);
    return;
  }
  if (err == ERROR_OPERATION_ABORTED) {
    err = 0; /* cancelled to be replaced: nothing happened */
  } else if (err == 0 && as->info.handle_count >= 1) {
    LONG status = as->info.handles[0].status;

    events = as->info.handles[0].events;
    err = status != 0 ? RtlNtStatusToDosError(status) : 0;
  }
  as->on_events(as, events, err);
}

void np__afd_devices_close(np_poll *poll) {
  struct np__afd_group *head = *np__iocp_afd_groups(poll), *g = head;

  if (g == NULL)
    return;
  do {
    if (g->device != NULL)
      CloseHandle(g->device);
    g->device = NULL;
    g = g->next;
  } while (g != head);
}
