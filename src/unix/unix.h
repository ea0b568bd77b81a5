/*
 * What the POSIX backend's modules share: the epoll poller and the watch
 * through which a file descriptor receives its epoll events.
 */
#ifndef NP_UNIX_H
#define NP_UNIX_H

#include <stdint.h>

#include "internal.h"

struct np__watch;

/* Called on the poller's thread with the epoll event bits for the fd. */
typedef void (*np__watch_cb)(struct np__watch *w, uint32_t epoll_events);

struct np__watch {
  int fd;
  np__watch_cb on_event;
};

/* Adds, modifies or removes w's fd in the poller's epoll set with the
 * given EPOLL* bits.  Return 0 or NP_E*. */
int np__epoll_add(np_poll *poll, struct np__watch *w, uint32_t events);
int np__epoll_mod(np_poll *poll, struct np__watch *w, uint32_t events);
void np__epoll_del(np_poll *poll, struct np__watch *w);

/* Maps the current errno. */
int np__error_from_errno(void);

#endif /* NP_UNIX_H */
