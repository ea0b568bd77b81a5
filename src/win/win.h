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
};

struct np__op;

/* Called on the poller's thread when the operation completes.  err is a
 * Win32 error code (0 on success) and bytes the count transferred. */
typedef void (*np__op_cb)(struct np__op *op, DWORD err, DWORD bytes);

/* One overlapped operation.  Embedded in its owner and recovered with
 * NP__CONTAINER_OF(op, owner, member) in the callback. */
struct np__op {
  OVERLAPPED ov;
  np__op_cb complete;
};

/* Associates handle with the poller's port under NP__KEY_OP.
 * Returns 0 or NP_E*. */
int np__iocp_associate(np_poll *poll, HANDLE handle);
/* The poller's port, for modules that post their own packets. */
HANDLE np__iocp_port(np_poll *poll);
/* Queues op's completion as if the OS had completed it, for results that
 * the OS reported synchronously without a packet.  Returns 0 or NP_E*. */
int np__iocp_post(np_poll *poll, struct np__op *op, DWORD err, DWORD bytes);

/* Maps a Win32 error code. */
int np__error_from_win32(DWORD err);

#endif /* NP_WIN_H */
