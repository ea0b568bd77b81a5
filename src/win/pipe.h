/*
 * The Windows named-pipe adapter, shared by its modules: one object per
 * pipe handle with three overlapped slots (connect, read, write), path
 * building and the security descriptor helpers.  The tests record and
 * fail its system calls through the test-only seam (common/seam.h).
 *
 *   pipe-object.c    the object: lifetime, operation launches, close
 *   pipe-read.c      the read slot and np_read
 *   pipe-write.c     the write slot, np_write and np_shutdown
 *   pipe-listener.c  np_listen / np_accept: a backlog of instances
 *   pipe-connect.c   np_connect: open, wait for a busy or absent name
 *   pipe-sys.c       path building
 *   security-*.c     descriptors and the SDDL check
 *   pipe-linger.c    the end of a closed stream: bounded delivery, abort
 *   pipe-backoff.c   reads and writes retried when the system runs short
 */
#ifndef NP_WIN_PIPE_H
#define NP_WIN_PIPE_H

#include "common/bufpool.h"
#include "win/win.h"

/* ---- paths and counters (pipe-sys.c, pipe-object.c) ------------------ */

/* Pipe objects alive in the process, for leak checks in tests. */
extern volatile LONG np__pipe_live;

/* Builds L"\\HOST\pipe\NAME" from addr into a malloc'd string in *out.
 * Returns 0, NP_EINVAL (name not UTF-8) or NP_ENOMEM. */
int np__pipe_path(const struct np__address *addr, wchar_t **out);

/* ---- security (security-sddl.c, security-sd.c) ------------------------ */

/* Checks a caller's SDDL on its text alone, before any system call: it
 * must have a DACL, not a NULL one, and grant nothing to WD, AN or NU.
 * Returns 0 or NP_EINVAL. */
int np__sddl_check(const char *sddl);
/* Builds the descriptor for new instances: the default one (owner and
 * full access the current user, SYSTEM full access, network denied,
 * protected DACL) when sddl is NULL, else the caller's, which must
 * already have passed np__sddl_check.  *out is freed with
 * np__security_free.  Returns 0 or NP_E*. */
int np__security_new(const char *sddl, PSECURITY_DESCRIPTOR *out);
void np__security_free(PSECURITY_DESCRIPTOR sd);

/* ---- the pipe object (pipe-object.c) ----------------------------------- */

#define NP__PIPE_BUFFER 65536 /* the OS's in and out buffer per instance */

/* Bytes a quiet byte-mode stream reads into the pipe object itself:
 * small messages arrive whole with one read and no pool buffer. */
#define NP__PROBE_SIZE 32

enum np__read_state {
  NP__READ_IDLE,    /* nothing in flight, nothing known */
  NP__READ_PROBE,   /* the probe waits for data (byte mode) */
  NP__READ_PENDING, /* a read into rbuf is in flight */
  NP__READ_WAITING, /* the probe saw data in the pipe; none read yet */
  NP__READ_DATA,    /* rbuf holds unread bytes, or one whole message */
  NP__READ_END,     /* rerr (NP_EOF or an error) is final */
  NP__READ_RETRY    /* a read the system had no resources for waits for
                       its retry timer (pipe-backoff.c) */
};

/* A slot's retries after transient failures (pipe-backoff.c). */
struct np__pipe_retry {
  struct np__timer timer; /* armed: holds a reference on the pipe */
  uint64_t give_up;       /* np__now_ms() from which errors stand, or 0 */
  unsigned delay_ms;      /* the wait before the next retry */
};

/* One queued write; its bytes follow the header in the same pool
 * buffer. */
struct np__wbuf {
  struct np__wbuf *next;
  size_t size; /* the pool size of the whole block */
  size_t cap;  /* room for bytes */
  size_t len;  /* bytes queued */
  size_t sent; /* bytes the OS took */
};

struct np__pipe_listener;

struct np__pipe {
  np_stream stream; /* registered with the core once it is a stream */
  np_poll *poll;
  HANDLE handle; /* INVALID_HANDLE_VALUE once closed */
  unsigned refs; /* the owner's plus one per operation in flight */
  struct np__linger linger;
  struct np__op connect_op, read_op, write_op;

  /* An instance not yet accepted belongs to its listener. */
  struct np__pipe_listener *listener;
  struct np__pipe *inst_next, *inst_prev;
  unsigned char connecting; /* ConnectNamedPipe in flight */
  unsigned char connected;  /* on the listener's ready list */

  unsigned char message;   /* message read mode */
  unsigned char server;    /* the server end */
  unsigned char skip_sync; /* synchronous successes queue no packet */
  unsigned char closed;    /* np_close called, or never handed out */
  unsigned char shut;      /* np_shutdown called */
  unsigned char cancelled; /* np_poll_free cancelled everything: no new I/O */

  /* The read slot. */
  enum np__read_state rstate;
  int rerr;
  char *rbuf;
  size_t rcap, rlen, roff;
  size_t rsize;        /* the size of the next read buffer */
  unsigned char rfull; /* busy: the last read outgrew the probe */
  /* What a quiet stream's probe reads into (pipe-read.c). */
  char probe[NP__PROBE_SIZE];
  /* A closed stream still flushing writes discards what the peer sends
   * (pipe-read.c, discard_more). */
  unsigned char rlaunching; /* discard_more is launching a read */
  unsigned char rsync;      /* that read completed inside the launch */
  unsigned char rdeferred;  /* on the poller's deferred list (inst_*) */
  DWORD rsync_err;          /* with this error */

  /* The write slot. */
  struct np__wbuf *whead, *wtail;
  size_t wqueued; /* bytes accepted and not yet taken by the OS */
  size_t wlimit;
  int werr;               /* what np_write reports from now on, or 0 */
  unsigned char wbusy;    /* a WriteFile is in flight */
  unsigned char wpumping; /* write_pump is running */
  unsigned char wblocked; /* np_write said NP_EAGAIN: signal room */

  /* Retries (pipe-backoff.c) and the end of a closed stream
   * (pipe-linger.c). */
  struct np__pipe_retry rretry, wretry;
  unsigned char wwaiting;   /* wbusy, but for wretry: nothing in flight */
  struct np__timer lingering; /* closed and flushing: the linger limit */
  size_t discarded;           /* closed: input read and dropped */
};

/* Creates the object for handle, associates the handle with the poller's
 * port and picks the completion mode.  flags are NP_OPT_* (only
 * NP_OPT_MESSAGE matters).  The object holds one reference, the
 * owner's.  On failure nothing is left but the handle, which stays the
 * caller's.  Returns 0 or NP_E*. */
int np__pipe_new(np_poll *poll, HANDLE handle, uint32_t flags,
                 size_t write_limit, int server, struct np__pipe **out);
/* Registers p as a stream with token and interest: writable at once, a
 * read started if interest asks for it. */
void np__pipe_open(struct np__pipe *p, uint64_t token, uint32_t interest);
/* Drops a reference; the last one frees p (its handle is closed by
 * then). */
void np__pipe_unref(struct np__pipe *p);
/* Closes p's handle now if it is still open. */
void np__pipe_close_handle(struct np__pipe *p);
/* Gives up an instance that was never handed out: cancels its connect,
 * closes its handle and drops the owner's reference. */
void np__pipe_discard(struct np__pipe *p);
/* The poller's buffer pool. */
struct np__bufpool *np__pipe_pool(struct np__pipe *p);
/* Non-zero while p, closed, still writes what np_write accepted to a
 * peer that may take it (np_poll_flush waits; reads discard). */
int np__pipe_flushing(const struct np__pipe *p);

/* Prepares op for a launch: takes the operation's reference on p and
 * counts it with the poller. */
void np__pipe_op_begin(struct np__pipe *p, struct np__op *op);
/* Finishes a launch given the call's result (ok, and GetLastError() not
 * yet overwritten) and the bytes a synchronous success moved: when no
 * packet will come, calls op->complete now, which ends the operation. */
void np__pipe_op_launched(struct np__pipe *p, struct np__op *op, BOOL ok,
                          DWORD bytes);
/* Ends an operation, as the last step of its completion: uncounts it and
 * drops its reference (which may free p). */
void np__pipe_op_end(struct np__pipe *p);

/* ---- the read slot (pipe-read.c) -------------------------------------- */

/* Starts a read if the stream wants one and none is in flight. */
void np__pipe_read_arm(struct np__pipe *p);
/* Like np__pipe_read_arm, but at the poller's next OS wait (or the
 * first np_read, whichever comes first): a stream closed before then
 * costs no read and no cancel. */
void np__pipe_read_defer(struct np__pipe *p);
/* np_read for pipes: returns a count (one whole message in message
 * mode), 0 only for len 0 or an empty message, NP_EOF, NP_EAGAIN (and
 * clears NP_READABLE), NP_EMSGSIZE (the message stays), or an error. */
ptrdiff_t np__pipe_read(np_stream *s, void *buf, size_t len);
/* At close: cancels a read in flight (its completion frees the buffer)
 * or frees an idle buffer now. */
void np__pipe_read_stop(struct np__pipe *p);

/* ---- the write slot (pipe-write.c) ------------------------------------ */

/* np_write for pipes: copies into the write queue up to the write limit
 * (a whole message or none in message mode).  Returns the count, 0,
 * NP_EAGAIN, NP_EPIPE, NP_ESHUTDOWN, NP_EMSGSIZE or NP_ENOMEM. */
ptrdiff_t np__pipe_write(np_stream *s, const void *buf, size_t len);
/* np_shutdown for pipes: no more local writes; in message mode an empty
 * message tells the peer.  Returns 0, NP_EPIPE or NP_ENOMEM. */
int np__pipe_shutdown(np_stream *s);
/* Frees every queued write (the object is going away). */
void np__pipe_write_drop(struct np__pipe *p);
/* The peer is gone (a read saw the end): later writes give NP_EPIPE. */
void np__pipe_write_peer_gone(struct np__pipe *p);

/* ---- the end of a closed stream (pipe-linger.c) ------------------------ */

/* np_abort for pipes: the token goes, reads and writes in flight are
 * cancelled, unsent bytes are dropped and the handle is closed at once;
 * the memory goes with the last completion. */
void np__pipe_abort(np_stream *s);
/* np_close left writes in flight: bounds their delivery by the stream's
 * linger_ms (after which the stream is aborted). */
void np__pipe_linger_start(struct np__pipe *p);
/* A closed stream read and dropped bytes more of its peer's input: past
 * NP__LINGER_DISCARD_MAX the peer is not going to read what we flush,
 * and the stream is aborted.  Returns non-zero when it was. */
int np__pipe_linger_discarded(struct np__pipe *p, size_t bytes);
/* Aborts p now (closed or not yet handed out): no new I/O, everything
 * in flight cancelled, queued writes dropped, the handle closed.  Takes
 * and gives back a reference of its own, so p may be freed on return
 * only if the caller holds none. */
void np__pipe_abort_now(struct np__pipe *p);
/* Stops every timer of p (linger and retries), giving back the
 * retries' references.  The caller holds a reference. */
void np__pipe_timers_stop(struct np__pipe *p);

/* ---- retries after transient failures (pipe-backoff.c) -------------- */

/* Non-zero for the Win32 errors that say the system lacks memory, quota
 * or resources for now (ERROR_NOT_ENOUGH_QUOTA, ERROR_NO_SYSTEM_RESOURCES,
 * ERROR_INVALID_USER_BUFFER, ERROR_NOT_ENOUGH_MEMORY, ...): worth another
 * try a little later. */
int np__pipe_transient(DWORD err);
/* An operation of slot r failed with err.  When err is transient and
 * the slot has not been failing for NP__PIPE_RETRY_FOR_MS, arms r's
 * timer to call fire after a back-off (1 ms, doubling up to 100 ms),
 * taking a reference on p that fire must give back with np__pipe_unref,
 * and returns 1.  Otherwise returns 0: the error stands. */
int np__pipe_retry_later(struct np__pipe *p, struct np__pipe_retry *r,
                         DWORD err, void (*fire)(struct np__timer *t));
/* Slot r's operation worked: its next failure starts afresh. */
void np__pipe_retry_reset(struct np__pipe_retry *r);
/* Disarms r and gives back its reference, if it was armed.  Returns
 * non-zero when it was.  The caller holds a reference of its own. */
int np__pipe_retry_stop(struct np__pipe *p, struct np__pipe_retry *r);

#define NP__PIPE_RETRY_FOR_MS 5000

#endif /* NP_WIN_PIPE_H */
