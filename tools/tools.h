/*
 * What pipe-server and pipe-client share.  The tools use only the public
 * API of npipe.h; the few things the library does not do (threads,
 * processes, standard input and output, signals) come from one platform
 * file, stdio-posix.c or stdio-win.c, chosen by the build.
 */
#ifndef NP_TOOLS_H
#define NP_TOOLS_H

#include <stddef.h>
#include <stdint.h>

#include "npipe.h"

/* Exit statuses, documented in pipe-server(1) and pipe-client(1); a
 * signal gives 128 + its number. */
enum {
  TL_EXIT_OK = 0,
  TL_EXIT_RUNTIME = 1,
  TL_EXIT_USAGE = 2,
  TL_EXIT_CONNECT = 3
};

/* How long pipe-server --forward waits for a busy or absent pipe target
 * (pipe-server(1)). */
#define TL_FORWARD_WAIT_MS 10000

/* ---- messages (report.c) ----------------------------------------------- */

/* The program name for messages; set once by main. */
extern const char *tl_prog;
/* Non-zero after -v: tl_note prints. */
extern int tl_verbose;

/* Prints "PROG: " and the formatted message and a newline on stderr. */
void tl_error(const char *fmt, ...);
/* The same, only with -v. */
void tl_note(const char *fmt, ...);
/* Prints a usage error and the hint to --help; returns TL_EXIT_USAGE. */
int tl_usage_error(const char *fmt, ...);
/* Reports an np_listen / np_connect failure as "ADDRESS: message" and
 * returns the exit status: a malformed or unsupported address is a usage
 * error (with the hint to --help), anything else other_status. */
int tl_address_error(const char *address, int err, int other_status);
/* Prints one --stats line: who, the bytes each way and the rate. */
void tl_report_stats(const char *who, uint64_t in, uint64_t out, uint64_t ms);
/* Draws the --send progress meter on stderr ("\r..."); done prints the
 * final state and a newline. */
void tl_report_progress(uint64_t sent, uint64_t total, int done);

/* ---- option parsing (args.c) ------------------------------------------- */

enum tl_arg_kind { TL_ARG_NONE, TL_ARG_REQUIRED, TL_ARG_OPTIONAL };

struct tl_option {
  const char *name; /* long name without "--" */
  char short_name;  /* 0 if none */
  enum tl_arg_kind arg;
  int id; /* returned by tl_args_next, > 0 */
};

/* Parser state over argv; arguments are never copied. */
struct tl_args {
  int argc;
  char **argv;
  int next;      /* index of the next argument */
  int only_args; /* after "--" */
};

enum { TL_ARGS_END = 0, TL_ARGS_POSITIONAL = -1, TL_ARGS_ERROR = -2 };

void tl_args_init(struct tl_args *a, int argc, char **argv);
/* Returns the id of the next option, with its value (or NULL) in *value;
 * TL_ARGS_POSITIONAL with the argument in *value; TL_ARGS_END; or
 * TL_ARGS_ERROR after printing a usage error.  The table ends with an
 * entry whose name is NULL. */
int tl_args_next(struct tl_args *a, const struct tl_option *table,
                 const char **value);
/* Parses a decimal integer in [min, max] for option name.  Returns 0, or
 * TL_EXIT_USAGE after printing the error. */
int tl_parse_long(const char *name, const char *text, long min, long max,
                  long *out);
/* Non-zero when address is TCP, where message mode does not apply. */
int tl_address_is_tcp(const char *address);

/* ---- the platform (stdio-posix.c, stdio-win.c) ------------------------- */

/* A file descriptor (POSIX) or HANDLE (Windows). */
typedef intptr_t tl_handle;
#define TL_NO_HANDLE ((tl_handle)-1)
/* A child process: pid or process HANDLE. */
typedef intptr_t tl_proc;

/* Non-zero on Windows: options for one system are refused on the other. */
extern const int tl_sys_windows;

/* Prepares the process: stderr unbuffered and binary, SIGPIPE ignored. */
void tl_sys_init(void);
/* Before exit, once every channel is closed: ends the helper threads that
 * still wait for input, and waits a moment for them, so that nothing runs
 * (or leaks) when the process ends. */
void tl_sys_quit(void);
/* From now on SIGINT and SIGTERM (console control events on Windows)
 * record the signal and wake poll instead of killing the process.  NULL
 * stops the wake-ups (signals are still recorded); after that call
 * returns, the poller may be freed. */
void tl_sys_catch_signals(np_poll *poll);
/* The signal caught (2 for SIGINT and every console event, 15 for
 * SIGTERM), or 0. */
int tl_sys_signalled(void);
/* A monotonic clock in milliseconds. */
uint64_t tl_sys_now_ms(void);
/* Non-zero when standard error is a terminal or console. */
int tl_sys_stderr_is_tty(void);

tl_handle tl_sys_stdin(void);
tl_handle tl_sys_stdout(void);
/* Opens path for reading; stores its size (0 if unknown).  Returns 0, or
 * an NP_E* code after printing the reason. */
int tl_sys_open_file(const char *path, tl_handle *out, uint64_t *size);
/* Blocking read: returns a positive count, 0 at the end of input, or an
 * NP_E* code (NP_ECANCELED after tl_sys_quit). */
ptrdiff_t tl_sys_read(tl_handle h, void *buf, size_t len);
/* Blocking write of all len bytes.  Returns 0, NP_EPIPE when the reader
 * is gone, or another NP_E* code (NP_ECANCELED after tl_sys_quit). */
int tl_sys_write(tl_handle h, const void *buf, size_t len);
/* Closes h.  Standard output is replaced by the null device so that
 * nothing else ever lands on it. */
void tl_sys_close(tl_handle h);

/* Starts command (see pipe-server(1) --exec for how it is split) with
 * its standard input and output connected to *to_child and *from_child.
 * Returns 0, or an NP_E* code after printing the reason. */
int tl_sys_spawn(const char *command, tl_handle *to_child,
                 tl_handle *from_child, tl_proc *proc);
/* Waits until the process has exited, without releasing it. */
void tl_sys_proc_wait(tl_proc proc);
/* Terminates a process that has not been released. */
void tl_sys_proc_kill(tl_proc proc);
/* Releases an exited process (reaps it). */
void tl_sys_proc_release(tl_proc proc);

/* A mutex with one condition variable. */
typedef struct tl_lock tl_lock;
tl_lock *tl_lock_new(void);
void tl_lock_free(tl_lock *l);
void tl_lock_take(tl_lock *l);
void tl_lock_give(tl_lock *l);
/* Releases the lock, waits for tl_lock_broadcast, takes it again. */
void tl_lock_wait(tl_lock *l);
void tl_lock_broadcast(tl_lock *l);
/* Runs fn(arg) on a new detached thread that never receives SIGINT or
 * SIGTERM.  Returns 0 or NP_E*. */
int tl_thread_start(void (*fn)(void *), void *arg);

/* ---- channels to plain handles (chan.c) -------------------------------- */

/*
 * A channel relays bytes between the poller's thread and handles that
 * cannot join an np_poll: standard input and output, files, a child's
 * pipes.  A helper thread per direction does the blocking I/O and wakes
 * the poller after every change; the calls below never block.
 */
typedef struct tl_chan tl_chan;

/* Makes a channel reading from in and writing to out (either may be
 * TL_NO_HANDLE); with close_handles the channel closes them when done.
 * proc, if not 0, is a child that the channel reaps after its output
 * ends and kills if the channel is closed first.  Returns 0 or NP_E*; on
 * failure the handles and proc are left to the caller. */
int tl_chan_new(np_poll *poll, tl_handle in, tl_handle out, int close_handles,
                tl_proc proc, tl_chan **out_chan);
/* Like np_read: a count, NP_EAGAIN, NP_EOF, or the input's error. */
ptrdiff_t tl_chan_read(tl_chan *c, void *buf, size_t len);
/* Like np_write: the count accepted, NP_EAGAIN when full, NP_EPIPE when
 * the output failed, NP_ESHUTDOWN after tl_chan_shutdown. */
ptrdiff_t tl_chan_write(tl_chan *c, const void *buf, size_t len);
/* Closes the output once everything written is out.  Returns 0 when it
 * is closed, NP_EAGAIN while bytes are still going out, or the output's
 * error. */
int tl_chan_shutdown(tl_chan *c);
/* Non-zero when the channel changed (and woke the poller) since the
 * last call: a pool of threads learns from it which channel a wake-up
 * was for.  Clears the mark. */
int tl_chan_changed(tl_chan *c);
/* Non-zero once the other side is gone: the child exited, or the output
 * failed. */
int tl_chan_gone(tl_chan *c);
/* The error that ended the channel's output when it has no process (it
 * writes standard output or a file), else 0. */
int tl_chan_output_error(tl_chan *c);
/* Stops the channel: kills a child still running; the threads free it
 * when they end.  NULL is ignored. */
void tl_chan_close(tl_chan *c);

/* ---- relays (relay.c) -------------------------------------------------- */

/* One side of a relay: an npipe stream or a channel. */
struct tl_end {
  np_stream *stream;
  tl_chan *chan;
  struct tl_relay *relay; /* owner, found from the event token */
  const char *in_name;    /* for messages about reading it */
  const char *out_name;   /* for messages about writing it */
  int owned;              /* the relay closes it */
  int gone;               /* the process behind it has gone */
  int failed;             /* unusable: nothing more can be read */
  int shut;               /* shut down for writing */
  int wrote;              /* np_write accepted bytes for it */
};

enum tl_dir_state { TL_DIR_RUN, TL_DIR_SHUT, TL_DIR_DONE };

/* One direction of a relay, with the bytes read but not yet written. */
struct tl_dir {
  struct tl_end *from, *to;
  unsigned char *buf;
  size_t cap, len, off;
  enum tl_dir_state state;
  int propagate; /* pass the end of input on as a shutdown */
  uint64_t bytes;
};

/* Relay flags. */
#define TL_RELAY_END_ON_DIR0 0x01u /* finished once direction 0 is done */
#define TL_RELAY_END_ON_DIR1 0x02u /* finished once direction 1 is done */

struct tl_relay {
  struct tl_end ends[2];
  struct tl_dir dirs[2];
  int ndirs;
  unsigned flags;
  int dirty;              /* an event arrived since the last pump */
  int finished;           /* every direction is done */
  int broken;             /* a local output failed: end at once */
  int error;              /* the first error, or 0 */
  const char *error_name; /* the end that failed */
  uint64_t started_ms;
};

/* Prepares r with ends[] and dirs[] to be filled by the caller (from, to,
 * propagate), then tl_relay_start.  Streams must use the token
 * tl_end_token(&r->ends[i]) and interest TL_STREAM_INTEREST. */
void tl_relay_init(struct tl_relay *r);
/* Allocates the direction buffers.  Returns 0 or NP_ENOMEM. */
int tl_relay_start(struct tl_relay *r);
#define TL_STREAM_INTEREST (NP_READABLE | NP_WRITABLE | NP_EDGE)
/* How long a tool that is done waits for np_poll_flush to deliver what
 * its closed streams still hold, unless a signal stopped it. */
#define TL_FLUSH_MS 5000
/* The token of an end, and the end of a token. */
uint64_t tl_end_token(struct tl_end *e);
struct tl_end *tl_token_end(uint64_t token);
/* Records an event for one of the relay's streams. */
void tl_relay_event(struct tl_end *e, uint32_t events);
/* Moves bytes until every direction would block.  Returns non-zero when
 * the relay has finished. */
int tl_relay_pump(struct tl_relay *r);
/* Keeps the relay's streams open, waiting on poll, until their peers
 * are gone or a few moments pass, so that the bytes the library holds
 * can go out: see relay.c.  Only for the last relay before the process
 * exits. */
void tl_relay_linger(struct tl_relay *r, np_poll *poll);
/* Closes the owned ends and frees the buffers. */
void tl_relay_close(struct tl_relay *r);

/* ---- serving many clients (serve.c) ------------------------------------ */

enum tl_serve_mode {
  TL_SERVE_STDIO,
  TL_SERVE_ECHO,
  TL_SERVE_EXEC,
  TL_SERVE_FORWARD
};

#define TL_ALLOW_USERS_MAX 32

struct tl_server_config {
  enum tl_serve_mode mode;
  const char *listen_address;
  np_options listen_opts;
  const char *exec_command;    /* TL_SERVE_EXEC */
  const char *forward_address; /* TL_SERVE_FORWARD */
  np_options forward_opts;
  int max_clients; /* 0: no limit */
  /* --allow-user: the accounts served (np_stream_peer_user); none: all
   * that the listener lets in. */
  const char *allow_users[TL_ALLOW_USERS_MAX];
  int nallow_users;
  int threads;     /* threads on the poller; 0 and 1: the caller's only */
  int once;
  int stats;
};

/* Listens and serves until a signal (or after one client with once).
 * Returns the exit status. */
int tl_serve(const struct tl_server_config *cfg);

#endif /* NP_TOOLS_H */
