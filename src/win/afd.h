/*
 * The AFD device layer: readiness of Winsock sockets from IOCTL_AFD_POLL
 * on \Device\Afd, completed through the poller's port (the mechanism of
 * wepoll, mio and trio).
 *
 * Each socket has at most one poll in flight, carrying every event its
 * owner waits for: two polls on one socket get their results mixed up.
 * Sockets share AFD handles in groups of at most NP__AFD_GROUP_MAX, since
 * cancelling a poll costs more the more polls its handle carries.
 */
#ifndef NP_AFD_H
#define NP_AFD_H

#include "win.h"

/* Event bits of an AFD poll, as the driver defines them. */
#define NP__AFD_RECEIVE 0x0001u
#define NP__AFD_SEND 0x0004u
#define NP__AFD_DISCONNECT 0x0008u /* the peer sent FIN */
#define NP__AFD_ABORT 0x0010u      /* reset or aborted */
#define NP__AFD_ACCEPT 0x0080u
#define NP__AFD_CONNECT_FAIL 0x0100u

#define NP__AFD_GROUP_MAX 32

struct np__afd_group;
struct np__afd_sock;

/* A poll ended.  events are the AFD bits that hold (0 when the poll was
 * cancelled or failed); err is a Win32 code: the poll's own failure when
 * events is 0, else the socket's status (the reason of CONNECT_FAIL), or
 * 0.  The owner decides what to poll next with np__afd_sock_want. */
typedef void (*np__afd_events_cb)(struct np__afd_sock *as, ULONG events,
                                  DWORD err);
/* The owner closed the socket state and no poll is in flight any more:
 * the owner frees itself.  Called exactly once. */
typedef void (*np__afd_free_cb)(struct np__afd_sock *as);

/* AFD_POLL_INFO with room for one socket. */
struct np__afd_poll_info {
  LARGE_INTEGER timeout;
  ULONG handle_count;
  ULONG exclusive;
  struct {
    HANDLE handle;
    ULONG events;
    LONG status;
  } handles[1];
};

/* One socket's polling state, embedded in its owner (a listener or a
 * stream) and recovered with NP__CONTAINER_OF in the callbacks. */
struct np__afd_sock {
  struct np__op op; /* the poll in flight; ov is its IO_STATUS_BLOCK */
  struct np__afd_poll_info info;
  np_poll *poll;
  struct np__afd_group *group;
  HANDLE base;          /* the base socket that AFD knows */
  ULONG armed;          /* events of the poll in flight */
  unsigned char state;  /* idle, pending or cancelled (afd.c) */
  unsigned char closed; /* the owner is gone: free at the completion */
  np__afd_events_cb on_events;
  np__afd_free_cb on_free;
};

/* Prepares as for socket s: finds its base socket and a group with room
 * (opening an AFD handle on poll's port when none has).  No poll starts.
 * Returns 0 or NP_E*; on failure nothing is held. */
int np__afd_sock_open(np_poll *poll, struct np__afd_sock *as, SOCKET s,
                      np__afd_events_cb on_events, np__afd_free_cb on_free);
/* Switches an idle as to socket s (a connect retrying the next address).
 * Returns 0 or NP_E*; the old base stays on failure. */
int np__afd_sock_rebind(struct np__afd_sock *as, SOCKET s);
/* The owner now waits for events (0: nothing).  Starts a poll when none
 * is in flight; replaces one that lacks some of events by cancelling it
 * (the completion then asks the owner again).  Returns 0 or NP_E* when a
 * poll could not start. */
int np__afd_sock_want(struct np__afd_sock *as, ULONG events);
/* The owner is done with as: the poll in flight is cancelled and the
 * free callback runs now or from that poll's completion.  The owner closes
 * its socket first and touches as no more. */
void np__afd_sock_close(struct np__afd_sock *as);

/* np_poll_free: closes every AFD handle of poll now, polls in flight
 * or not (they end as cancelled, if they end); the groups themselves go
 * as their last members leave, without closing the handles again. */
void np__afd_devices_close(np_poll *poll);

#endif /* NP_AFD_H */
