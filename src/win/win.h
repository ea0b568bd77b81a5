/*
 * What the Windows backend's modules share: the completion port, and the
 * operation slot through which an overlapped operation gets its
 * completion.
 */
#ifndef NP_WIN_H
#define NP_WIN_H

#include <winsock2.h>
#include <windows.h>

#include "internal.h"

/* Completion keys: the port dispatches by key before looking at the
 * OVERLAPPED, as trio's IOCP manager does. */
enum np__completion_key {
  NP__KEY_WAKE = 1, /* np_poll_wake: no OVERLAPPED */
  NP__KEY_OP = 2,   /* an np__op: pipe operations, AFD polls */
  NP__KEY_POSTED = 3, /* an np__op completed by np__iocp_post */
  NP__KEY_NUDGE = 4,  /* np__backend_nudge: no OVERLAPPED */
  NP__KEY_FORWARDED = 5, /* an NP__KEY_OP packet another port took */
};

struct np__op;

/* Called with the poller's lock held when the operation completes.  err is a
 * Win32 error code (0 on success) and bytes the count transferred. */
typedef void (*np__op_cb)(struct np__op *op, DWORD err, DWORD bytes);

/* One overlapped operation.  Embedded in its owner and recovered with
 * NP__CONTAINER_OF(op, owner, member) in the callback. */
struct np__op {
  OVERLAPPED ov;
  np__op_cb complete;
  /* NULL, or the poller the op belongs to when its handle's packets
   * arrive at another poller's port (np__iocp_move): that port forwards
   * them. */
  np_poll *home;
};

/* Associates handle with the poller's port under NP__KEY_OP.
 * Returns 0 or NP_E*. */
int np__iocp_associate(np_poll *poll, HANDLE handle);
/* Moves handle, associated with from's port, to poll's port (both
 * pollers' locks are held).  Returns 1 when the port changed; 0 when the
 * system cannot change it (Wine, Windows before 8.1), so that from's port
 * keeps taking the handle's packets and the caller must set the home of
 * its ops to poll, for from to forward them; or NP_E*. */
int np__iocp_move(np_poll *poll, HANDLE handle);
/* The poller's port, for modules that post their own packets. */
HANDLE np__iocp_port(np_poll *poll);
/* Queues op's completion as if the OS had completed it, for results that
 * the OS reported synchronously without a packet.  Returns 0 or NP_E*. */
int np__iocp_post(np_poll *poll, struct np__op *op, DWORD err, DWORD bytes);
/* Count the operations whose completion packet is still to come: a module
 * calls begin when it launches (or posts) one and end when the completion
 * is dispatched, so that np_poll_free can wait for cancelled operations
 * before freeing the objects their OVERLAPPED lives in. */
void np__iocp_op_begin(np_poll *poll);
void np__iocp_op_end(np_poll *poll);

/* Something whose operations may still be in flight after its owner let
 * go of it (a closed pipe flushing its writes).  np__backend_poll_free
 * calls cancel on each before it drains the port; cancel cancels what
 * is in flight and closes the object's handle (the completions still
 * come), and may free the object, which unlinks it. */
struct np__linger {
  struct np__linger *next, *prev;
  void (*cancel)(struct np__linger *l);
  /* Non-zero while the object, closed, still sends what np_write
   * accepted (np_poll_flush waits for none to be left). */
  int (*flushing)(const struct np__linger *l);
};
void np__iocp_linger_add(np_poll *poll, struct np__linger *l);
void np__iocp_linger_remove(np_poll *poll, struct np__linger *l);

struct np__pipe;
/* The head of the poller's list of pipe ends whose next read waits for
 * the next OS wait (pipe-read.c, np__pipe_read_defer); the poller runs
 * np__pipe_read_deferred before each wait. */
struct np__pipe **np__iocp_deferred(np_poll *poll);
void np__pipe_read_deferred(np_poll *poll);

struct np__bufpool;
/* The poller's I/O buffer pool (common/bufpool.h). */
struct np__bufpool *np__iocp_bufpool(np_poll *poll);

struct np__afd_group;
/* The head of the poller's list of AFD handle groups, owned by afd.c. */
struct np__afd_group **np__iocp_afd_groups(np_poll *poll);

/* Maps a Win32 error code. */
int np__error_from_win32(DWORD err);

#endif /* NP_WIN_H */
