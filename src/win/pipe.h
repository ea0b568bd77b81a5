/*
 * The Windows named-pipe adapter, shared by its modules: one object per
 * pipe handle with three overlapped slots (connect, read, write), path
 * building and the security descriptor helpers.  The tests record and
 * fail its system calls through the test-only seam (common/seam.h).
 *
 *   pipe-object.c    the object: lifetime, operation launches, close
 *   pipe-read.c      the read slot and np_read
 *   pipe-write.c     the write slot, np_write and np_shutdown
 *   pipe-listener.c  np_listen / np_accept: a backlog of instances, healed
 *                    on the poller's timers when a refill fails
 *   pipe-connect.c   np_connect: open now, or a stream that is connecting
 *                    and retries on the poller's timers
 *   pipe-remote.c    the open of a remote name, on a worker thread
 *   pipe-sys.c       path building, the client's open
 *   security-*.c     descriptors and the SDDL check
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
/* Opens the client end of path: overlapped, not inheritable, and with
 * SQOS lowered to identification so the server cannot act as this
 * process (unless flags has NP_OPT_IMPERSONATE).  Returns 0 with *h
 * set, or the Win32 error (*h is then INVALID_HANDLE_VALUE).  Any thread
 * may call it. */
DWORD np__pipe_open_client(const wchar_t *path, uint32_t flags, HANDLE *h);

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
/* The client's check of a freshly opened pipe h: 0 when the instance is
 * owned by this process's user, LocalSystem or Administrators, NP_EACCES
 * for anyone else (a squatter), or NP_E* when it cannot be read. */
int np__security_vet_server(HANDLE h);
/* Who serves pipe h, into sid (room for SECURITY_MAX_SID_SIZE bytes):
 * the instance's owner, or, when it has none (Wine, for a pipe made
 * without a descriptor), the user of the server process.  Returns 0 or
 * NP_E*. */
int np__security_server_sid(HANDLE h, PSID sid);
/* The user of token, into sid (room for SECURITY_MAX_SID_SIZE bytes).
 * Returns 0 or NP_E*. */
int np__security_token_user(HANDLE token, PSID sid);

/* The pipe's peer (pipe-identity.c): on the server end the client's
 * token's user, read by impersonating it at identification level for
 * an instant; on the client end the instance's owner.  Returns 0 or
 * NP_E*. */
int np__pipe_peer_id(np_stream *s, struct np__peer_id *id);
/* np_stream_impersonate on a pipe: the server end only. */
int np__pipe_impersonate(np_stream *s);
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
struct np__dial;

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

  /* A client end whose open is still to come (pipe-connect.c); it has
   * no handle until then. */
  struct np__dial *dial;

  unsigned char message;   /* message read mode */
  unsigned char server;    /* the server end */
  unsigned char skip_sync; /* synchronous successes queue no packet */
  unsigned char closed;    /* np_close called, or never handed out */
  unsigned char shut;      /* np_shutdown called */
  unsigned char cancelled; /* np_poll_free cancelled everything: no new I/O */
  /* A closed stream's delivery: its end (np_stream.linger_ms), and the
   * bytes its reads dropped meanwhile. */
  struct np__timer linger_due;
  size_t discarded;

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

  /* Retries after shortages (pipe-backoff.c). */
  struct np__pipe_retry rretry, wretry;
  unsigned char wwaiting; /* wbusy, but for wretry: nothing in flight */
};

/* Creates the object for handle and attaches it (np__pipe_attach);
 * INVALID_HANDLE_VALUE makes one without a handle, for a client end
 * still connecting.  flags are NP_OPT_* (only NP_OPT_MESSAGE matters).
 * The object holds one reference, the owner's.  On failure nothing is
 * left but the handle, which stays the caller's.  Returns 0 or NP_E*. */
int np__pipe_new(np_poll *poll, HANDLE handle, uint32_t flags,
                 size_t write_limit, int server, struct np__pipe **out);
/* Hands a connected instance, no operation in flight, to another poller
 * (np_accept_to); nothing changes on failure.  Returns 0 or NP_E*. */
int np__pipe_move(struct np__pipe *p, np_poll *poll);
/* Gives p, which has no handle yet, its handle: associates it with the
 * poller's port and picks the completion mode.  On failure the handle
 * stays the caller's.  Returns 0 or NP_E*. */
int np__pipe_attach(struct np__pipe *p, HANDLE handle);
/* Registers p as a stream with token and interest, not yet ready; its
 * calls go to ops (a client end that is connecting has its own), or to
 * the pipe's when ops is NULL. */
void np__pipe_register(struct np__pipe *p, uint64_t token, uint32_t interest,
                       const struct np__stream_ops *ops);
/* A registered stream with its handle starts: its calls go to the
 * pipe's ops, it is writable at once and a read starts if interest asks
 * for it. */
void np__pipe_start(struct np__pipe *p);
/* np__pipe_register and np__pipe_start at once: a stream that is open. */
void np__pipe_open(struct np__pipe *p, uint64_t token, uint32_t interest);
/* A registered stream whose connect failed for good: np_stream_error
 * gives err once, every np_read and np_write returns it, and NP_WRITABLE
 * | NP_ERR tell the user.  p has no handle. */
void np__pipe_fail(struct np__pipe *p, int err);
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
/* The delivery of a closed stream ended: its writes are done, or it
 * gives up on them (give_up non-zero: what is not sent is dropped, and
 * the handle closes, which ends the operations in flight). */
void np__pipe_flush_end(struct np__pipe *p, int give_up);

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

/* ---- client ends (pipe-connect.c, pipe-remote.c) --------------------- */

/* Internal np__opts flag, never accepted from np_options: open on a
 * worker thread as for a remote name, even when the name is local.  The
 * tests use it to reach the worker's paths, since Wine cannot open a
 * pipe on another host. */
#define NP__OPT_WORKER 0x80000000u

struct np__remote;

/* Called on the poller's thread when a remote open ended: err is 0 and
 * h the open client end (now the callee's), or err is the Win32 error. */
typedef void (*np__remote_cb)(struct np__pipe *p, DWORD err, HANDLE h);

/* Starts opening path (np__pipe_open_client) on a worker thread for the
 * client end p; the job holds a reference on p and counts as an
 * operation in flight.  Its result comes back through the completion
 * port to done.  Returns 0 with *out set, or NP_E* with nothing
 * started. */
int np__remote_start(struct np__pipe *p, const wchar_t *path,
                     uint32_t flags, np__remote_cb done,
                     struct np__remote **out);
/* Gives up a job whose result has not been delivered: done is never
 * called for it, a handle it opens is closed, and its reference on p is
 * dropped now or when its packet arrives.  Never blocks. */
void np__remote_cancel(struct np__remote *r);

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
/* Disarms both slots' retries (a write waiting for one no longer holds
 * its slot), giving back their references.  The caller holds one. */
void np__pipe_retries_stop(struct np__pipe *p);

#define NP__PIPE_RETRY_FOR_MS 5000

#endif /* NP_WIN_PIPE_H */
