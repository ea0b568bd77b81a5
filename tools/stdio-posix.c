/*
 * The tools' platform layer on POSIX: blocking I/O on file descriptors,
 * pthreads, child processes with posix_spawnp, and signals that wake the
 * poller.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools.h"

extern char **environ;

const int tl_sys_windows = 0;

static np_poll *signal_poll;
/* Set by the handler, read by every thread of pipe-server --threads:
 * atomic (lock-free on an int, so safe in the handler), since a volatile
 * sig_atomic_t is only enough for the thread the handler interrupts. */
static int caught;

/* Readable once the process is quitting: it ends blocked reads. */
static int quit_fds[2] = {-1, -1};
/* The helper threads still running, for tl_sys_quit. */
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t threads_done = PTHREAD_COND_INITIALIZER;
static int threads_running;

/* The errno values the tools' own I/O meets; the library's table is not
 * public, and messages name the handle anyway. */
static int from_errno(int e) {
  switch (e) {
  case EPIPE:
  case ECONNRESET:
    return NP_EPIPE;
  case ENOENT:
    return NP_ENOENT;
  case EACCES:
  case EPERM:
    return NP_EACCES;
  case ENOMEM:
    return NP_ENOMEM;
  case EMFILE:
  case ENFILE:
    return NP_EMFILE;
  case EBADF:
    return NP_EBADF;
  case ENOSPC:
    return NP_ENOSPC;
  case EISDIR:
  case EINVAL:
    return NP_EINVAL;
  default:
    return NP_EIO;
  }
}

/* A tool started with standard input, output or error closed would hand
 * that number to the next descriptor it opens (its quit pipe, a socket)
 * and then read its own quit pipe as input, or write its output into a
 * socket.  /dev/null takes each closed one first: a closed input reads
 * as empty, a closed output discards. */
static void reserve_stdio(void) {
  int fd;

  for (fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
      continue;
    /* open(2) returns the lowest free number, which is fd. */
    if (open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
      _exit(TL_EXIT_RUNTIME);
  }
}

void tl_sys_init(void) {
  reserve_stdio();
  /* A peer that vanishes must give EPIPE, not kill the tool. */
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stderr, NULL, _IONBF, 0);
  if (pipe(quit_fds) == 0) {
    fcntl(quit_fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(quit_fds[1], F_SETFD, FD_CLOEXEC);
  }
}

void tl_sys_quit(void) {
  struct timespec deadline;

  if (quit_fds[1] >= 0 && write(quit_fds[1], "q", 1) < 0)
    return;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 2;
  /* A thread stuck writing to an output that nobody reads cannot be
   * stopped; after the deadline the process exits around it. */
  pthread_mutex_lock(&threads_lock);
  while (threads_running > 0 &&
         pthread_cond_timedwait(&threads_done, &threads_lock, &deadline) == 0)
    ;
  pthread_mutex_unlock(&threads_lock);
}

static void on_signal(int sig) {
  int saved = errno;

  __atomic_store_n(&caught, sig, __ATOMIC_SEQ_CST);
  /* An eventfd write and an atomic flag: safe in a signal handler. */
  np_poll_wake(signal_poll);
  errno = saved;
}

void tl_sys_catch_signals(np_poll *poll) {
  struct sigaction sa;
  sigset_t both, old;

  /* Helper threads block these signals, so the handler only runs on this
   * thread: with them blocked here it cannot run while the pointer
   * changes. */
  sigemptyset(&both);
  sigaddset(&both, SIGINT);
  sigaddset(&both, SIGTERM);
  sigprocmask(SIG_BLOCK, &both, &old);
  signal_poll = poll;
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (poll == NULL)
    return;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int tl_sys_signalled(void) {
  return __atomic_load_n(&caught, __ATOMIC_SEQ_CST);
}

uint64_t tl_sys_now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int tl_sys_stderr_is_tty(void) { return isatty(STDERR_FILENO); }

tl_handle tl_sys_stdin(void) { return STDIN_FILENO; }

tl_handle tl_sys_stdout(void) { return STDOUT_FILENO; }

int tl_sys_open_file(const char *path, tl_handle *out, uint64_t *size) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0) {
    int err = errno;

    tl_error("%s: %s", path, strerror(err));
    return from_errno(err);
  }
  *size =
      fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
  *out = fd;
  return 0;
}

/* Waits until fd is ready for events (or has hung up), so that the I/O
 * call after it does not block, unless the process quits first.  This
 * also gives descriptors inherited in non-blocking mode blocking
 * semantics.  Returns 0, or NP_ECANCELED when quitting. */
static int wait_fd(int fd, short events) {
  struct pollfd p[2];

  p[0].fd = fd;
  p[0].events = events;
  p[1].fd = quit_fds[0];
  p[1].events = POLLIN;
  for (;;) {
    p[0].revents = p[1].revents = 0;
    if (poll(p, quit_fds[0] >= 0 ? 2 : 1, -1) >= 0 || errno != EINTR)
      break;
  }
  return p[1].revents != 0 ? NP_ECANCELED : 0;
}

ptrdiff_t tl_sys_read(tl_handle h, void *buf, size_t len) {
  for (;;) {
    ssize_t n;

    if (wait_fd((int)h, POLLIN) != 0)
      return NP_ECANCELED;
    n = read((int)h, buf, len);
    if (n >= 0)
      return (ptrdiff_t)n;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return errno == ECONNRESET ? 0 : from_errno(errno);
  }
}

int tl_sys_write(tl_handle h, const void *buf, size_t len) {
  const char *p = buf;

  while (len > 0) {
    ssize_t n;

    if (wait_fd((int)h, POLLOUT) != 0)
      return NP_ECANCELED;
    n = write((int)h, p, len);
    if (n >= 0) {
      p += n;
      len -= (size_t)n;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return from_errno(errno);
    }
  }
  return 0;
}

void tl_sys_close(tl_handle h) {
  int null_fd;

  if ((int)h != STDOUT_FILENO) {
    close((int)h);
    return;
  }
  /* dup2 drops our reference to the reader's pipe atomically, and fd 1
   * can then never be reused for something unrelated. */
  null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd >= 0) {
    dup2(null_fd, STDOUT_FILENO);
    close(null_fd);
  } else {
    close(STDOUT_FILENO);
  }
}

/* Splits command at blanks into a NULL-terminated vector; no quoting, as
 * pipe-server(1) documents.  The strings live in *storage. */
static char **split_command(const char *command, char **storage) {
  size_t n = 0, i;
  char *s = strdup(command), *p;
  char **argv;

  if (s == NULL)
    return NULL;
  for (i = 0; s[i] != '\0'; i++)
    n += (s[i] != ' ' && s[i] != '\t') &&
         (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t');
  argv = calloc(n + 1, sizeof(*argv));
  if (argv == NULL) {
    free(s);
    return NULL;
  }
  n = 0;
  for (p = strtok(s, " \t"); p != NULL; p = strtok(NULL, " \t"))
    argv[n++] = p;
  *storage = s;
  return argv;
}

/* The child gets default signal handling, as if started from a shell. */
static int spawn_attrs(posix_spawnattr_t *attr) {
  sigset_t none, defaults;

  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  if (posix_spawnattr_init(attr) != 0)
    return -1;
  posix_spawnattr_setsigmask(attr, &none);
  posix_spawnattr_setsigdefault(attr, &defaults);
  posix_spawnattr_setflags(attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  return 0;
}

static int run(char **argv, int child_in, int child_out, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int err;

  if (posix_spawn_file_actions_init(&fa) != 0)
    return ENOMEM;
  if (spawn_attrs(&attr) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return ENOMEM;
  }
  /* Our ends are close-on-exec; dup2 clears the flag on 0 and 1. */
  posix_spawn_file_actions_adddup2(&fa, child_in, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, child_out, STDOUT_FILENO);
  err = posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  return err;
}

/* Only the poller's thread starts processes, so no other thread can fork
 * between pipe and fcntl and leak the descriptors. */
static int pipe_cloexec(int fds[2]) {
  if (pipe(fds) != 0)
    return -1;
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  return 0;
}

int tl_sys_spawn(const char *command, tl_handle *to_child,
                 tl_handle *from_child, tl_proc *proc) {
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  char *storage = NULL;
  char **argv = split_command(command, &storage);
  pid_t pid;
  int err;

  if (argv == NULL || argv[0] == NULL) {
    err = argv == NULL ? ENOMEM : EINVAL;
    goto done;
  }
  if (pipe_cloexec(in) != 0 || pipe_cloexec(out) != 0) {
    err = errno;
    goto done;
  }
  err = run(argv, in[0], out[1], &pid);
done:
  if (in[0] >= 0)
    close(in[0]);
  if (out[1] >= 0)
    close(out[1]);
  if (err != 0) {
    tl_error("cannot run '%s': %s", command, strerror(err));
    if (in[1] >= 0)
      close(in[1]);
    if (out[0] >= 0)
      close(out[0]);
  } else {
    *to_child = in[1];
    *from_child = out[0];
    *proc = pid;
  }
  free(argv);
  free(storage);
  return err == 0 ? 0 : from_errno(err);
}

void tl_sys_proc_wait(tl_proc proc) {
  siginfo_t info;

  /* WNOWAIT leaves the child a zombie, so its pid stays ours until
   * tl_sys_proc_release. */
  while (waitid(P_PID, (id_t)proc, &info, WEXITED | WNOWAIT) != 0 &&
         errno == EINTR)
    ;
}

void tl_sys_proc_kill(tl_proc proc) { kill((pid_t)proc, SIGTERM); }

void tl_sys_proc_release(tl_proc proc) {
  while (waitpid((pid_t)proc, NULL, 0) < 0 && errno == EINTR)
    ;
}

struct tl_lock {
  pthread_mutex_t mutex;
  pthread_cond_t cond;
};

tl_lock *tl_lock_new(void) {
  tl_lock *l = malloc(sizeof(*l));

  if (l == NULL)
    return NULL;
  if (pthread_mutex_init(&l->mutex, NULL) != 0) {
    free(l);
    return NULL;
  }
  if (pthread_cond_init(&l->cond, NULL) != 0) {
    pthread_mutex_destroy(&l->mutex);
    free(l);
    return NULL;
  }
  return l;
}

void tl_lock_free(tl_lock *l) {
  pthread_cond_destroy(&l->cond);
  pthread_mutex_destroy(&l->mutex);
  free(l);
}

void tl_lock_take(tl_lock *l) { pthread_mutex_lock(&l->mutex); }

void tl_lock_give(tl_lock *l) { pthread_mutex_unlock(&l->mutex); }

void tl_lock_wait(tl_lock *l) { pthread_cond_wait(&l->cond, &l->mutex); }

void tl_lock_broadcast(tl_lock *l) { pthread_cond_broadcast(&l->cond); }

struct thread_start {
  void (*fn)(void *);
  void *arg;
};

static void *thread_main(void *p) {
  struct thread_start ts = *(struct thread_start *)p;

  free(p);
  ts.fn(ts.arg);
  pthread_mutex_lock(&threads_lock);
  threads_running--;
  pthread_cond_broadcast(&threads_done);
  pthread_mutex_unlock(&threads_lock);
  return NULL;
}

int tl_thread_start(void (*fn)(void *), void *arg) {
  struct thread_start *ts = malloc(sizeof(*ts));
  sigset_t all, old;
  pthread_attr_t attr;
  pthread_t id;
  int err;

  if (ts == NULL)
    return NP_ENOMEM;
  ts->fn = fn;
  ts->arg = arg;
  /* The new thread inherits this mask, so signals go to the poller's
   * thread, whose handler wakes the poll. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_mutex_lock(&threads_lock);
  threads_running++;
  pthread_mutex_unlock(&threads_lock);
  err = pthread_create(&id, &attr, thread_main, ts);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    pthread_mutex_lock(&threads_lock);
    threads_running--;
    pthread_mutex_unlock(&threads_lock);
    free(ts);
    return from_errno(err);
  }
  return 0;
}
