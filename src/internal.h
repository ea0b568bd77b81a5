/*
 * The contract between npipe's portable core (src/common/) and a backend
 * (src/win/ or src/unix/).
 *
 * The core owns all readiness policy.  A backend turns OS notifications
 * (IOCP completions, epoll events) into calls of np__source_signal and
 * np__source_clear on the object's source; the core keeps a list of
 * sources that may have something to report and applies the level /
 * NP_EDGE / NP_ONESHOT rules in np__core_collect, at O(ready) per wait.
 *
 * Threads: every poller has one lock (the core's).  Each public call
 * takes the lock of its object's poller for its whole length
 * (common/stream.c, common/poll.c), so backend code and everything below
 * runs with it held and never takes it itself; the lock is released only
 * across the OS wait (np__core_os_wait_begin/end), never across anything
 * else that blocks.  Any number of threads may wait on one poller.
 */
#ifndef NP_INTERNAL_H
#define NP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "npipe.h"

#define NP__CONTAINER_OF(ptr, type, member)                                   \
  ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define NP__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NP__UNUSED(x) ((void)(x))

#define NP__EVENT_BITS (NP_READABLE | NP_WRITABLE | NP_HUP | NP_ERR)
#define NP__INTEREST_BITS (NP_READABLE | NP_WRITABLE | NP_EDGE | NP_ONESHOT)

/* Defaults that np_options leaves to the library. */
#define NP__DEFAULT_BACKLOG 4
#define NP__MAX_BACKLOG 255
#define NP__DEFAULT_WRITE_LIMIT (1024u * 1024u)
#define NP__PIPE_NAME_MAX 256 /* characters after the pipe prefix */
#define NP__DEFAULT_LINGER_MS 30000
/* Input a closed stream reads and drops while it still delivers, before
 * it gives up on a peer that sends and never reads. */
#define NP__LINGER_DISCARD_MAX (1024u * 1024u)

/* ---- sources and the ready list (common/ready.c) ---------------------- */

struct np__source;

/* What the core may ask of an object.  Both may be NULL. */
struct np__source_ops {
  /* The interest changed (the source's interest field is already new):
   * the backend may start or stop I/O accordingly. */
  void (*interest_changed)(struct np__source *src);
  /* np_poll_free closes an object the user left open. */
  void (*close_orphan)(struct np__source *src);
};

struct np__poll_core;

/* The poller's lock (common/lock.c): a pthread mutex, or an SRWLOCK,
 * whose storage is one pointer. */
#ifdef _WIN32
typedef struct {
  void *opaque;
} np__lock;
#else
#include <pthread.h>
typedef pthread_mutex_t np__lock;
#endif

/* A timer of the poller (common/timer.c), embedded in the object that
 * owns it.  Timers are armed, stopped and fired with the lock held. */
struct np__timer {
  uint64_t due; /* np__now_ms() when it fires */
  struct np__timer *child, *next, *prev; /* pairing-heap links */
  void (*fire)(struct np__timer *t);     /* called once when due */
  unsigned char armed;
};

struct np__source {
  struct np__poll_core *core;
  const struct np__source_ops *ops;
  uint64_t token;
  uint32_t interest; /* NP_READABLE | NP_WRITABLE | NP_EDGE | NP_ONESHOT */
  uint32_t ready;    /* conditions that hold now: NP__EVENT_BITS */
  uint32_t fresh;    /* edge mode: bits signalled since the last report */
  unsigned char disarmed; /* oneshot: reported; waits for new interest */
  unsigned char queued;   /* on the ready list */
  struct np__source *ready_next, *ready_prev;
  struct np__source *all_next, *all_prev;
};

/* The part of every poller that the core owns; each backend's struct
 * np_poll embeds one, reachable through np__poll_core(). */
struct np__poll_core {
  struct np__source *ready_head, *ready_tail;
  size_t ready_count;
  struct np__source *all_head; /* every registered source, for free */
  size_t live;                 /* registered sources */
  struct np__timer *timers;    /* the heap's root: the earliest timer */
  np__lock lock;               /* guards everything in and below the poller */
  unsigned os_waiters;   /* threads inside the OS wait, without the lock */
  unsigned char nudged;  /* a nudge is posted and not yet taken */
  /* Two threads have been in the OS wait at once: from then on each
   * takes only as many notifications as it can report, and leaves the
   * rest to the OS to hand to the others. */
  unsigned char shared;
};

/* Locks and unlocks core for a public call.  The unlock nudges a thread
 * out of the OS wait when the call left a source queued that no thread
 * outside the OS wait will collect. */
void np__core_lock(struct np__poll_core *core);
void np__core_unlock(struct np__poll_core *core);
/* Releases the lock around an OS wait and takes it back; the core counts
 * the threads in between, which a nudge may have to wake. */
void np__core_os_wait_begin(struct np__poll_core *core);
void np__core_os_wait_end(struct np__poll_core *core);
/* The backend took a nudge out of the OS (np__backend_nudge). */
void np__core_nudge_taken(struct np__poll_core *core);
/* Wakes one thread from the OS wait unless a nudge is already on its way
 * (the lock is held).  The woken wait recomputes its timeout and collects
 * what is queued; a nudge is never reported as an np_poll_wake. */
void np__core_nudge(struct np__poll_core *core);
/* Frees the lock (np_poll_free; nothing else may use the poller). */
void np__core_fini(struct np__poll_core *core);

/* The lock primitives (common/lock.c). */
void np__lock_init(np__lock *l);
void np__lock_destroy(np__lock *l);
void np__lock_acquire(np__lock *l);
void np__lock_release(np__lock *l);

void np__core_init(struct np__poll_core *core);
/* Registers src with the core (not yet ready). */
void np__source_register(struct np__poll_core *core, struct np__source *src,
                         const struct np__source_ops *ops, uint64_t token,
                         uint32_t interest);
/* Removes src from the core: its token is never reported again. */
void np__source_deregister(struct np__source *src);
/* Conditions in bits (NP__EVENT_BITS) now hold.  In edge mode each call
 * counts as a new transition of those bits. */
void np__source_signal(struct np__source *src, uint32_t bits);
/* Conditions in bits no longer hold. */
void np__source_clear(struct np__source *src, uint32_t bits);
/* Sets token and interest, re-arms a oneshot source and re-evaluates the
 * current conditions, as epoll's EPOLL_CTL_MOD does.  Calls the
 * interest_changed op.  Returns 0, or NP_EINVAL for unknown bits. */
int np__source_set_interest(struct np__source *src, uint64_t token,
                            uint32_t interest);
/* Stores up to max events of queued sources and applies the level, edge
 * and oneshot policy; sources not reached stay first in line.  Returns
 * the number stored. */
int np__core_collect(struct np__poll_core *core, np_event *events, int max);
/* Non-zero when a source is queued, so the next OS wait must not block. */
int np__core_has_queued(const struct np__poll_core *core);
/* Closes every registered source through its close_orphan op. */
void np__core_close_all(struct np__poll_core *core);

/* ---- timers (common/timer.c) ------------------------------------------ */

/* Prepares t, not armed, to call fire when it is due. */
void np__timer_init(struct np__timer *t, void (*fire)(struct np__timer *t));
/* Arms t to fire ms milliseconds from now (re-arms an armed timer).
 * Never fails: the heap is intrusive. */
void np__timer_start(struct np__poll_core *core, struct np__timer *t,
                     uint64_t ms);
/* Disarms t if armed; it will not fire.  Safe from its own callback. */
void np__timer_stop(struct np__poll_core *core, struct np__timer *t);
/* wait_ms (< 0: forever) shortened to the earliest timer's due time. */
int np__timer_wait_ms(const struct np__poll_core *core, int wait_ms);
/* Fires every timer that is due, earliest first (a bounded number per
 * call).  Returns how many fired. */
int np__timer_run(struct np__poll_core *core);

/* ---- the backend's poller (win/poll-iocp.c, unix/poll-epoll.c) -------- */

/* Allocates a backend poller whose core is initialised. */
int np__backend_poll_new(np_poll **out);
/* Releases the OS poller; the core has closed every source already. */
void np__backend_poll_free(np_poll *poll);
/* Waits up to timeout_ms (< 0: forever) for OS notifications and
 * dispatches them to sources, taking at most batch of them (0: as many
 * as the backend likes).  Returns 1 when a wake-up was consumed, 0
 * otherwise, or a negative NP_E*. */
int np__backend_poll_os(np_poll *poll, int timeout_ms, int batch);
/* Wakes the poller; any thread; coalesces.  Returns 0 or NP_E*. */
int np__backend_wake(np_poll *poll);
/* Posts a nudge (np__core_nudge) to the OS wait: one waiting thread
 * returns and hands it to np__core_nudge_taken.  With the lock held. */
void np__backend_nudge(struct np__poll_core *core);
/* Non-zero while a closed stream still holds bytes that np_write
 * accepted and its peer may still take (np_poll_flush). */
int np__backend_flushing(np_poll *poll);
/* The core part of a backend poller. */
struct np__poll_core *np__poll_core(np_poll *poll);
/* A monotonic clock in milliseconds. */
uint64_t np__now_ms(void);

/* ---- errors (common/error.c and the backend's error map) -------------- */

/* One row of a backend's map from OS error codes to NP_E* codes. */
struct np__error_row {
  long os;
  int np;
};
/* The backend's map (Win32 error codes or errno values) and its length;
 * exposed so that a test can check every row. */
extern const struct np__error_row np__os_error_map[];
extern const size_t np__os_error_map_len;
/* Maps an OS error code; unknown codes become NP_EIO. */
int np__error_from_os(long code);

/* ---- addresses (common/address.c) -------------------------------------- */

enum np__address_kind { NP__ADDR_PIPE, NP__ADDR_UNIX, NP__ADDR_TCP };

struct np__address {
  enum np__address_kind kind;
  char host[256];  /* pipe: "." for local, else the server; tcp: host */
  char name[4096]; /* pipe: NAME; unix: the path; tcp: unused */
  unsigned port;   /* tcp only */
};

/* Parses "pipe:NAME", "\\.\pipe\NAME", "\\HOST\pipe\NAME", "unix:/path"
 * and "tcp:HOST:PORT" (HOST may be "[v6]").  Returns 0, NP_EINVAL or
 * NP_ENAMETOOLONG. */
int np__address_parse(const char *text, struct np__address *out);

/* ---- options (common/options.c) --------------------------------------- */

/* np_options with every default filled in and every field validated. */
struct np__opts {
  uint32_t flags;
  int backlog;
  int timeout_ms;
  size_t write_limit;
  const char *sddl;
  uint32_t allow_uid;
  unsigned mode;
  int linger_ms; /* < 0: without a limit */
};

/* Resolves opts (NULL means defaults).  Returns 0 or NP_EINVAL. */
int np__options_resolve(const np_options *opts, struct np__opts *out);

/* ---- listeners and streams (common/stream.c) -------------------------- */

struct np__listener_ops {
  /* Registers the stream with poll, the listener's or another poller;
   * both pollers' locks are held. */
  int (*accept)(np_listener *l, np_poll *poll, uint64_t token,
                uint32_t interest, np_stream **out);
  int (*address)(np_listener *l, char *buf, size_t len);
  void (*close)(np_listener *l);
};

struct np_listener {
  struct np__source src;
  const struct np__listener_ops *ops;
  np_poll *poll; /* its poller (np_listen sets it) */
  int linger_ms; /* for accepted streams (np_options.linger_ms) */
};

/* Who is at the other end of a stream, as the system vouches for it. */
struct np__peer_id {
  int64_t uid;             /* POSIX */
  unsigned char sid[68];   /* Windows: a SID (SECURITY_MAX_SID_SIZE) */
};

/* Formats id (outside the poller's lock: the account lookup may ask a
 * directory service).  Each returns the length written, or
 * NP_ENAMETOOLONG, NP_ENOTSUP or another NP_E*. */
int np__peer_id_user(const struct np__peer_id *id, char *buf, size_t len);
int np__peer_id_sid(const struct np__peer_id *id, char *buf, size_t len);
/* np_revert. */
int np__backend_revert(void);

struct np__stream_ops {
  ptrdiff_t (*read)(np_stream *s, void *buf, size_t len);
  ptrdiff_t (*write)(np_stream *s, const void *buf, size_t len);
  int (*shutdown)(np_stream *s);
  int (*peer)(np_stream *s, np_peer *peer);
  void (*close)(np_stream *s);
  /* np_abort: frees the stream at once, dropping unsent bytes. */
  void (*abort)(np_stream *s);
  /* The peer's identity for np_stream_peer_user / np_stream_peer_sid;
   * NULL: NP_ENOTSUP (TCP). */
  int (*peer_id)(np_stream *s, struct np__peer_id *id);
  /* np_stream_impersonate; NULL: NP_ENOTSUP. */
  int (*impersonate)(np_stream *s);
};

struct np_stream {
  struct np__source src;
  const struct np__stream_ops *ops;
  int error;     /* pending error for np_stream_error, 0 if none */
  int linger_ms; /* how long np_close may deliver; < 0: no limit */
};

/* Backend entry points by address kind.  Each registers the new object
 * with the poller's core and returns 0 or NP_E*; on failure nothing is
 * left behind.  A kind the backend lacks returns NP_ENOTSUP. */
int np__pipe_listen(np_poll *poll, const struct np__address *addr,
                    const struct np__opts *opts, uint64_t token,
                    np_listener **out);
int np__pipe_connect(np_poll *poll, const struct np__address *addr,
                     const struct np__opts *opts, uint64_t token,
                     uint32_t interest, np_stream **out);
int np__tcp_listen(np_poll *poll, const struct np__address *addr,
                   const struct np__opts *opts, uint64_t token,
                   np_listener **out);
int np__tcp_connect(np_poll *poll, const struct np__address *addr,
                    const struct np__opts *opts, uint64_t token,
                    uint32_t interest, np_stream **out);

#endif /* NP_INTERNAL_H */
