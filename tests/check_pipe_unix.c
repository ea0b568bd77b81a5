/*
 * What only the POSIX pipe backend promises: the private directory and
 * socket modes, refusal of unsafe directories, stale-socket replacement
 * under the lock (with servers racing in separate processes), peer
 * credentials and the per-user policy (a client of another uid, through
 * fork and setuid), name lengths at the sun_path boundary, no SIGPIPE,
 * message-mode limits and the flushing of closed streams.  White-box
 * where the core's counters show what the API cannot.
 */
#define _GNU_SOURCE /* nftw's FTW_PHYS */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/seam.h"
#include "helpers.h"
#include "internal.h"
#include "unix/fd-stream.h"

#define TOK_L 1
#define TOK_C 2
#define TOK_S 3
#define WAIT_MS 10000
#define NOBODY 65534

static np_poll *poll_;
static char base_[64];   /* a fresh directory per test, removed after */
static char pub_[64];    /* one other users can reach, if a test made it */
static char *saved_dir_; /* $NPIPE_DIR and $XDG_RUNTIME_DIR to restore */
static char *saved_xdg_;
static mode_t saved_umask_;

static char *dup_env(const char *name) {
  const char *v = getenv(name);

  return v != NULL ? strdup(v) : NULL;
}

static void put_env(const char *name, const char *value) {
  if (value != NULL)
    setenv(name, value, 1);
  else
    unsetenv(name);
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw) {
  NP__UNUSED(st);
  NP__UNUSED(ftw);
  if (flag == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

static void setup(void) {
  saved_dir_ = dup_env("NPIPE_DIR");
  saved_xdg_ = dup_env("XDG_RUNTIME_DIR");
  saved_umask_ = umask(022);
  umask(saved_umask_);
  /* Inside the test program's private directory (npt_run), which goes
   * at exit even when a failed test skipped its teardown. */
  snprintf(base_, sizeof(base_), "%s/u-XXXXXX",
           saved_dir_ != NULL ? saved_dir_ : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(base_));
  ck_assert_int_eq(np_poll_new(&poll_), 0);
}

static void teardown(void) {
  np_poll_free(poll_);
  poll_ = NULL;
  nftw(base_, remove_one, 16, FTW_DEPTH | FTW_PHYS);
  if (pub_[0] != '\0')
    nftw(pub_, remove_one, 16, FTW_DEPTH | FTW_PHYS);
  pub_[0] = '\0';
  put_env("NPIPE_DIR", saved_dir_);
  put_env("XDG_RUNTIME_DIR", saved_xdg_);
  free(saved_dir_);
  free(saved_xdg_);
  umask(saved_umask_);
}

/* base_/sub, made with mode. */
static void make_dir(char *buf, size_t len, const char *sub, mode_t mode) {
  snprintf(buf, len, "%s/%s", base_, sub);
  ck_assert_int_eq(mkdir(buf, mode), 0);
  ck_assert_int_eq(chmod(buf, mode), 0);
}

static mode_t mode_of(const char *path) {
  struct stat st;

  ck_assert_msg(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
  return st.st_mode;
}

static int exists(const char *path) {
  struct stat st;

  return lstat(path, &st) == 0;
}

static np_stream *accept_one(np_listener *l, uint64_t tok) {
  np_stream *s = NULL;
  int err;

  while ((err = np_accept(l, tok, NP_READABLE | NP_WRITABLE, &s)) == NP_EAGAIN)
    ck_assert_msg(npt_wait_token(poll_, TOK_L, NP_READABLE, WAIT_MS) != 0,
                  "no connection within %d ms", WAIT_MS);
  ck_assert_int_eq(err, 0);
  return s;
}

static void open_pair(const char *addr, const np_options *o, np_listener **l,
                      np_stream **c, np_stream **s) {
  ck_assert_int_eq(np_listen(poll_, addr, o, TOK_L, l), 0);
  ck_assert_int_eq(
      np_connect(poll_, addr, o, TOK_C, NP_READABLE | NP_WRITABLE, c), 0);
  *s = accept_one(*l, TOK_S);
}

static ptrdiff_t read_next(np_stream *s, uint64_t tok, void *buf, size_t n) {
  ptrdiff_t r;

  while ((r = np_read(s, buf, n)) == NP_EAGAIN)
    ck_assert_msg(npt_wait_token(poll_, tok, NP_READABLE, WAIT_MS) != 0,
                  "nothing to read within %d ms", WAIT_MS);
  return r;
}

static unsigned char pattern(size_t i) {
  return (unsigned char)((i * 2654435761u) >> 13);
}

/* Reads n bytes of pattern() from s, then NP_EOF.  One assertion per
 * chunk: Check records every passing assertion, per byte that is slow. */
static void read_pattern_then_eof(np_stream *s, size_t n) {
  static unsigned char buf[64 * 1024], want[64 * 1024];
  size_t got = 0, i;
  ptrdiff_t r;

  while (got < n) {
    r = read_next(s, TOK_S, buf, sizeof(buf));
    ck_assert_msg(r > 0, "%s after %zu of %zu", np_errname((int)r), got, n);
    for (i = 0; i < (size_t)r; i++)
      want[i] = pattern(got + i);
    ck_assert_msg(memcmp(buf, want, (size_t)r) == 0, "bytes from %zu", got);
    got += (size_t)r;
  }
  ck_assert_uint_eq(got, n);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), NP_EOF);
}

/* Writes n bytes of pattern() with one np_write (the limit allows it). */
static void write_pattern(np_stream *c, size_t n) {
  unsigned char *buf = malloc(n);
  size_t i;

  ck_assert_ptr_nonnull(buf);
  for (i = 0; i < n; i++)
    buf[i] = pattern(i);
  ck_assert_int_eq(np_write(c, buf, n), (ptrdiff_t)n);
  free(buf);
}

/* Polls until the core holds live sources, or fails after WAIT_MS. */
static void wait_live(size_t live) {
  uint64_t deadline = npt_now_ms() + WAIT_MS;
  np_event ev[8];

  while (np__poll_core(poll_)->live != live) {
    ck_assert_msg(npt_now_ms() < deadline, "%zu sources live, want %zu",
                  np__poll_core(poll_)->live, live);
    ck_assert_int_ge(np_poll_wait(poll_, ev, 8, 20), 0);
  }
}

/* ---- the private directory ----------------------------------------- */

START_TEST(test_pipe_unix_modes_under_any_umask) {
  static const mode_t masks[] = {0, 022, 077};
  char dir[128], sock[160], lock[170];
  np_listener *l;
  np_options o;
  size_t i;

  memset(&o, 0, sizeof(o));
  for (i = 0; i < NP__ARRAY_SIZE(masks); i++) {
    snprintf(dir, sizeof(dir), "%s/d%o", base_, (unsigned)masks[i]);
    snprintf(sock, sizeof(sock), "%s/x", dir);
    snprintf(lock, sizeof(lock), "%s/x.lock", dir);
    setenv("NPIPE_DIR", dir, 1);
    umask(masks[i]);
    ck_assert_int_eq(np_listen(poll_, "pipe:x", NULL, TOK_L, &l), 0);
    ck_assert(S_ISDIR(mode_of(dir)));
    ck_assert_uint_eq(mode_of(dir) & 07777, 0700);
    ck_assert(S_ISSOCK(mode_of(sock)));
    ck_assert_uint_eq(mode_of(sock) & 07777, 0600);
    ck_assert(exists(lock));
    np_listener_close(l);
    ck_assert(!exists(sock));
    ck_assert(!exists(lock));
    /* An explicit mode is exact too, whatever the umask. */
    o.mode = 0660;
    ck_assert_int_eq(np_listen(poll_, "pipe:x", &o, TOK_L, &l), 0);
    ck_assert_uint_eq(mode_of(sock) & 07777, 0660);
    np_listener_close(l);
  }
}
END_TEST

/* Listen and connect both refuse dir as NPIPE_DIR with NP_EACCES. */
static void assert_dir_refused(const char *dir) {
  np_listener *l = (np_listener *)&l;
  np_stream *c = (np_stream *)&c;

  setenv("NPIPE_DIR", dir, 1);
  ck_assert_int_eq(np_listen(poll_, "pipe:x", NULL, TOK_L, &l), NP_EACCES);
  ck_assert_ptr_null(l);
  ck_assert_int_eq(np_connect(poll_, "pipe:x", NULL, TOK_C, 0, &c), NP_EACCES);
  ck_assert_ptr_null(c);
}

START_TEST(test_pipe_unix_unsafe_dir_refused) {
  char good[128], open_dir[128], link[128], file[128];
  np_listener *l;
  int fd;

  make_dir(good, sizeof(good), "good", 0700);
  setenv("NPIPE_DIR", good, 1);
  ck_assert_int_eq(np_listen(poll_, "pipe:x", NULL, TOK_L, &l), 0);
  np_listener_close(l);
  make_dir(open_dir, sizeof(open_dir), "group", 0770);
  assert_dir_refused(open_dir);
  ck_assert_int_eq(chmod(open_dir, 0701), 0);
  assert_dir_refused(open_dir);
  ck_assert_int_eq(chmod(open_dir, 0704), 0);
  assert_dir_refused(open_dir);
  snprintf(link, sizeof(link), "%s/link", base_);
  ck_assert_int_eq(symlink(good, link), 0);
  assert_dir_refused(link);
  snprintf(file, sizeof(file), "%s/file", base_);
  fd = open(file, O_CREAT | O_WRONLY, 0700);
  ck_assert_int_ge(fd, 0);
  close(fd);
  assert_dir_refused(file);
  if (geteuid() == 0) {
    /* Owned by somebody else, even with a private mode. */
    ck_assert_int_eq(chown(good, NOBODY, NOBODY), 0);
    assert_dir_refused(good);
  }
}
END_TEST

/* The socket for pipe:NAME exists at path while listened on. */
static void assert_listens_at(const char *name, const char *path) {
  np_listener *l;

  ck_assert_int_eq(np_listen(poll_, name, NULL, TOK_L, &l), 0);
  ck_assert_msg(S_ISSOCK(mode_of(path)), "%s is no socket", path);
  np_listener_close(l);
}

START_TEST(test_pipe_unix_dir_selection) {
  char xdg[128], path[200], name[64], sock[128], tmp_dir[64];
  np_listener *l;
  int had_tmp_dir;

  /* $NPIPE_DIR first, whatever $XDG_RUNTIME_DIR says. */
  setenv("NPIPE_DIR", base_, 1);
  setenv("XDG_RUNTIME_DIR", "/nonexistent", 1);
  snprintf(path, sizeof(path), "%s/x", base_);
  assert_listens_at("pipe:x", path);
  /* Then $XDG_RUNTIME_DIR/npipe, made 0700. */
  unsetenv("NPIPE_DIR");
  make_dir(xdg, sizeof(xdg), "xdg", 0700);
  setenv("XDG_RUNTIME_DIR", xdg, 1);
  snprintf(path, sizeof(path), "%s/npipe/x", xdg);
  assert_listens_at("pipe:x", path);
  snprintf(path, sizeof(path), "%s/npipe", xdg);
  ck_assert_uint_eq(mode_of(path) & 07777, 0700);
  /* Then /tmp/npipe-EUID; a relative $XDG_RUNTIME_DIR is ignored. */
  snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/npipe-%lu",
           (unsigned long)geteuid());
  had_tmp_dir = exists(tmp_dir);
  snprintf(name, sizeof(name), "pipe:nptu-%lu", (unsigned long)getpid());
  snprintf(sock, sizeof(sock), "%s/%s", tmp_dir, name + 5);
  setenv("XDG_RUNTIME_DIR", "relative/dir", 1);
  assert_listens_at(name, sock);
  unsetenv("XDG_RUNTIME_DIR");
  assert_listens_at(name, sock);
  if (!had_tmp_dir)
    rmdir(tmp_dir);
  /* A relative $NPIPE_DIR is an error, not a guess. */
  setenv("NPIPE_DIR", "relative", 1);
  ck_assert_int_eq(np_listen(poll_, "pipe:x", NULL, TOK_L, &l), NP_EINVAL);
}
END_TEST

START_TEST(test_pipe_unix_connect_without_dir_is_enoent) {
  char dir[128];
  np_stream *c;

  snprintf(dir, sizeof(dir), "%s/missing", base_);
  setenv("NPIPE_DIR", dir, 1);
  ck_assert_int_eq(np_connect(poll_, "pipe:x", NULL, TOK_C, 0, &c), NP_ENOENT);
  /* Connecting never creates the directory. */
  ck_assert(!exists(dir));
}
END_TEST

/* ---- names ---------------------------------------------------------- */

/* "pipe:" + NAME so that NPIPE_DIR/NAME is total characters long. */
static void pipe_name_of_total(char *buf, size_t len, size_t total) {
  size_t dir = strlen(base_), n;

  ck_assert_uint_gt(total, dir + 1);
  n = total - dir - 1;
  ck_assert_uint_lt(5 + n, len);
  memcpy(buf, "pipe:", 5);
  memset(buf + 5, 'n', n);
  buf[5 + n] = '\0';
}

START_TEST(test_pipe_unix_name_length_boundaries) {
  const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
  char name[300];
  np_listener *l;
  np_stream *c, *s;
  size_t total;

  setenv("NPIPE_DIR", base_, 1);
  for (total = max - 2; total <= max + 2; total++) {
    int want = total <= max ? 0 : NP_ENAMETOOLONG;

    pipe_name_of_total(name, sizeof(name), total);
    ck_assert_msg(np_listen(poll_, name, NULL, TOK_L, &l) == want,
                  "listen at %zu", total);
    ck_assert_msg(np_connect(poll_, name, NULL, TOK_C, 0, &c) ==
                      (want == 0 ? 0 : NP_ENAMETOOLONG),
                  "connect at %zu", total);
    if (want == 0) {
      s = accept_one(l, TOK_S);
      np_close(s);
      np_close(c);
      np_listener_close(l);
    }
  }
}
END_TEST

START_TEST(test_pipe_unix_unix_path_boundaries) {
  const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
  static const size_t extra[] = {1, 2, 40, 3990};
  static char addr[4200];
  size_t dir = strlen(base_), n, i;
  np_listener *l;
  np_stream *c;

  /* "unix:" + base_/ + x... of exactly max characters: fits. */
  n = max - dir - 1;
  snprintf(addr, sizeof(addr), "unix:%s/", base_);
  memset(addr + 5 + dir + 1, 'u', n);
  addr[5 + max] = '\0';
  ck_assert_int_eq(np_listen(poll_, addr, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, addr, NULL, TOK_C, 0, &c), 0);
  np_close(c);
  np_listener_close(l);
  for (i = 0; i < NP__ARRAY_SIZE(extra); i++) {
    memset(addr + 5 + dir + 1, 'u', n + extra[i]);
    addr[5 + max + extra[i]] = '\0';
    ck_assert_int_eq(np_listen(poll_, addr, NULL, TOK_L, &l), NP_ENAMETOOLONG);
    ck_assert_int_eq(np_connect(poll_, addr, NULL, TOK_C, 0, &c),
                     NP_ENAMETOOLONG);
  }
  ck_assert_int_eq(np_listen(poll_, "unix:relative", NULL, TOK_L, &l),
                   NP_EINVAL);
}
END_TEST

START_TEST(test_pipe_unix_unc_spelling) {
  char unc[128], buf[128];
  np_listener *l;
  np_stream *c, *s;

  setenv("NPIPE_DIR", base_, 1);
  open_pair("pipe:same", NULL, &l, &c, &s);
  np_close(s);
  np_close(c);
  ck_assert_int_eq(np_connect(poll_, "\\\\.\\pipe\\same", NULL, TOK_C, 0, &c),
                   0);
  np_close(c);
  np_listener_close(l);
  ck_assert_int_eq(np_listen(poll_, "\\\\.\\PIPE\\same", NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_listener_address(l, buf, sizeof(buf)), 9);
  ck_assert_str_eq(buf, "pipe:same");
  ck_assert_int_eq(np_connect(poll_, "pipe:same", NULL, TOK_C, 0, &c), 0);
  np_close(c);
  np_listener_close(l);
  snprintf(unc, sizeof(unc), "\\\\host\\pipe\\same");
  ck_assert_int_eq(np_connect(poll_, unc, NULL, TOK_C, 0, &c), NP_ENOTSUP);
}
END_TEST

/* ---- claiming the name ---------------------------------------------- */

/* A socket bound at path and closed without unlinking: stale. */
static void make_stale_socket(const char *path) {
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  close(fd);
}

/* A live server that does not know npipe's lock.  Returns its fd. */
static int raw_listener(const char *path) {
  struct sockaddr_un sa;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_assert_int_eq(listen(fd, 4), 0);
  return fd;
}

static ino_t inode_of(const char *path) {
  struct stat st;

  ck_assert_int_eq(lstat(path, &st), 0);
  return st.st_ino;
}

START_TEST(test_pipe_unix_stale_socket_replaced) {
  char path[128], lock[140];
  np_listener *l;
  np_stream *c, *s;
  pid_t pid;
  int status, i;

  setenv("NPIPE_DIR", base_, 1);
  snprintf(path, sizeof(path), "%s/stale", base_);
  snprintf(lock, sizeof(lock), "%s.lock", path);
  make_stale_socket(path);
  open_pair("pipe:stale", NULL, &l, &c, &s);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  /* Left behind by a server killed with its lock file. */
  for (i = 0; i < 5; i++) {
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      np_poll *p;
      np_listener *cl;

      if (np_poll_new(&p) != 0 || np_listen(p, "pipe:stale", NULL, 1, &cl))
        _exit(1);
      raise(SIGKILL);
      _exit(2);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert(S_ISSOCK(mode_of(path)));
    ck_assert(exists(lock));
    ck_assert_int_eq(np_listen(poll_, "pipe:stale", NULL, TOK_L, &l), 0);
    ck_assert_int_eq(np_connect(poll_, "pipe:stale", NULL, TOK_C, 0, &c), 0);
    np_close(c);
    np_listener_close(l);
  }
}
END_TEST

START_TEST(test_pipe_unix_live_socket_kept) {
  char path[128], other[128], file[128];
  np_listener *l, *l2 = (np_listener *)&l2;
  np_stream *c, *s;
  ino_t ino;
  int fd;

  setenv("NPIPE_DIR", base_, 1);
  snprintf(path, sizeof(path), "%s/live", base_);
  ck_assert_int_eq(np_listen(poll_, "pipe:live", NULL, TOK_L, &l), 0);
  ino = inode_of(path);
  ck_assert_int_eq(np_listen(poll_, "pipe:live", NULL, 9, &l2), NP_EADDRINUSE);
  ck_assert_ptr_null(l2);
  ck_assert_uint_eq(inode_of(path), ino);
  ck_assert_int_eq(np_connect(poll_, "pipe:live", NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  /* A live server that does not use the lock is found by the probe. */
  snprintf(other, sizeof(other), "%s/other", base_);
  fd = raw_listener(other);
  ino = inode_of(other);
  ck_assert_int_eq(np_listen(poll_, "pipe:other", NULL, TOK_L, &l),
                   NP_EADDRINUSE);
  ck_assert_uint_eq(inode_of(other), ino);
  close(fd);
  /* Not a socket: never removed. */
  snprintf(file, sizeof(file), "%s/file", base_);
  fd = open(file, O_CREAT | O_WRONLY, 0600);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(np_listen(poll_, "pipe:file", NULL, TOK_L, &l),
                   NP_EADDRINUSE);
  ck_assert(S_ISREG(mode_of(file)));
}
END_TEST

START_TEST(test_pipe_unix_close_spares_replaced_file) {
  char path[128], lock[140];
  np_listener *l;
  ino_t ino;
  int fd;

  setenv("NPIPE_DIR", base_, 1);
  snprintf(path, sizeof(path), "%s/moved", base_);
  snprintf(lock, sizeof(lock), "%s.lock", path);
  ck_assert_int_eq(np_listen(poll_, "pipe:moved", NULL, TOK_L, &l), 0);
  ck_assert_int_eq(unlink(path), 0);
  fd = raw_listener(path);
  ino = inode_of(path);
  np_listener_close(l);
  ck_assert_uint_eq(inode_of(path), ino);
  ck_assert(!exists(lock));
  close(fd);
}
END_TEST

/* A server that holds the lock but does not listen yet (it is between
 * bind and listen) looks stale to a probe: only the lock protects it. */
START_TEST(test_pipe_unix_lock_holder_never_unlinked) {
  char path[128], lock[140];
  np_listener *l;
  np_stream *c;
  ino_t ino;
  int lock_fd;

  setenv("NPIPE_DIR", base_, 1);
  snprintf(path, sizeof(path), "%s/held", base_);
  snprintf(lock, sizeof(lock), "%s.lock", path);
  lock_fd = open(lock, O_RDONLY | O_CREAT, 0600);
  ck_assert_int_ge(lock_fd, 0);
  ck_assert_int_eq(flock(lock_fd, LOCK_EX), 0);
  make_stale_socket(path);
  ino = inode_of(path);
  ck_assert_int_eq(np_listen(poll_, "pipe:held", NULL, TOK_L, &l),
                   NP_EADDRINUSE);
  ck_assert_uint_eq(inode_of(path), ino);
  /* The holder is gone: now the file is stale and replaced. */
  close(lock_fd);
  ck_assert_int_eq(np_listen(poll_, "pipe:held", NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, "pipe:held", NULL, TOK_C, 0, &c), 0);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* Reads one int from fd within WAIT_MS. */
static int read_int(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  int v = -12345;

  ck_assert_int_eq(poll(&p, 1, WAIT_MS), 1);
  ck_assert_int_eq(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
  return v;
}

/* One racing server: waits for the start, tries to listen, reports, and
 * keeps a won name until told to go. */
static void racer(const char *name, int go, int report, int done) {
  np_poll *p;
  np_listener *l = NULL;
  char c;
  int err;

  if (read(go, &c, 1) != 0 || np_poll_new(&p) != 0)
    _exit(3);
  err = np_listen(p, name, NULL, 1, &l);
  if (write(report, &err, sizeof(err)) != (ssize_t)sizeof(err))
    _exit(4);
  if (read(done, &c, 1) != 0)
    _exit(5);
  np_listener_close(l);
  np_poll_free(p);
  _exit(0);
}

static void race_once(int trial) {
  enum { SERVERS = 8 };
  pid_t pids[SERVERS];
  int go[2], report[2], done[2], i, winners = 0, status;
  np_stream *c;

  ck_assert_int_eq(pipe(go), 0);
  ck_assert_int_eq(pipe(report), 0);
  ck_assert_int_eq(pipe(done), 0);
  for (i = 0; i < SERVERS; i++) {
    pids[i] = fork();
    ck_assert_int_ge(pids[i], 0);
    if (pids[i] == 0) {
      close(go[1]);
      close(report[0]);
      close(done[1]);
      racer("pipe:race", go[0], report[1], done[0]);
    }
  }
  close(go[0]);
  close(report[1]);
  close(done[0]);
  close(go[1]); /* all start at once */
  for (i = 0; i < SERVERS; i++) {
    int err = read_int(report[0]);

    ck_assert_msg(err == 0 || err == NP_EADDRINUSE, "trial %d: %s", trial,
                  np_errname(err));
    winners += err == 0;
  }
  ck_assert_msg(winners == 1, "trial %d: %d winners", trial, winners);
  /* The winner is reachable. */
  ck_assert_int_eq(np_connect(poll_, "pipe:race", NULL, TOK_C, 0, &c), 0);
  np_close(c);
  close(done[1]);
  close(report[0]);
  for (i = 0; i < SERVERS; i++) {
    ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "trial %d: racer status %d", trial, status);
  }
}

START_TEST(test_pipe_unix_racing_servers_one_wins) {
  char path[128];
  int trial;

  setenv("NPIPE_DIR", base_, 1);
  snprintf(path, sizeof(path), "%s/race", base_);
  for (trial = 0; trial < 40; trial++) {
    /* Half the trials start from a stale file. */
    if (trial % 2 == 1)
      make_stale_socket(path);
    race_once(trial);
    ck_assert(!exists(path));
  }
}
END_TEST

/* ---- peer credentials and the user policy ---------------------------- */

/* What the foreign client saw. */
enum { SAW_REPLY = 1, SAW_EOF = 2 };

/* Runs in a child as uid NOBODY: connects, sends a byte, tells the parent,
 * and reports whether a reply or the end came. */
static void foreign_client(const char *addr, int report) {
  np_poll *p;
  np_stream *s;
  np_event ev[4];
  uint64_t deadline;
  char c = 'x';
  int result = -100;
  ptrdiff_t r;

  if (setgid(NOBODY) != 0 || setuid(NOBODY) != 0 || np_poll_new(&p) != 0)
    _exit(3);
  result = np_connect(p, addr, NULL, 1, NP_READABLE, &s);
  if (result == 0 && np_write(s, &c, 1) != 1)
    result = -101;
  if (write(report, &result, sizeof(result)) != (ssize_t)sizeof(result) ||
      result != 0)
    _exit(4);
  deadline = npt_now_ms() + WAIT_MS;
  while ((r = np_read(s, &c, 1)) == NP_EAGAIN && npt_now_ms() < deadline)
    np_poll_wait(p, ev, 4, 100);
  result = r == 1 && c == 'y' ? SAW_REPLY : r == NP_EOF ? SAW_EOF : (int)r;
  if (write(report, &result, sizeof(result)) != (ssize_t)sizeof(result))
    _exit(5);
  np_close(s);
  np_poll_free(p);
  _exit(0);
}

/* A directory every user can reach (base_ is private), made once per
 * test and removed by the teardown. */
static const char *public_dir(void) {
  if (pub_[0] == '\0') {
    snprintf(pub_, sizeof(pub_), "/tmp/nptu-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(pub_));
    ck_assert_int_eq(chmod(pub_, 0755), 0);
  }
  return pub_;
}

/* A listener on unix:<world-reachable dir>/s, mode 0666, and a forked
 * client of uid NOBODY that has connected and sent a byte. */
static np_listener *foreign_setup(uint32_t flags, uint32_t allow_uid,
                                  char *addr, size_t len, pid_t *pid,
                                  int *report) {
  int fds[2];
  np_listener *l;
  np_options o;

  snprintf(addr, len, "unix:%s/s", public_dir());
  memset(&o, 0, sizeof(o));
  o.flags = flags;
  o.allow_uid = allow_uid;
  o.mode = 0666;
  ck_assert_int_eq(np_listen(poll_, addr, &o, TOK_L, &l), 0);
  ck_assert_int_eq(pipe(fds), 0);
  *pid = fork();
  ck_assert_int_ge(*pid, 0);
  if (*pid == 0) {
    close(fds[0]);
    foreign_client(addr, fds[1]);
  }
  close(fds[1]);
  *report = fds[0];
  ck_assert_int_eq(read_int(*report), 0);
  return l;
}

static void foreign_finish(pid_t pid, int report, int want) {
  int status;

  ck_assert_int_eq(read_int(report), want);
  close(report);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The foreign client is refused before any byte; a client of our own
 * user queued behind it is handed out instead. */
static void assert_foreign_refused(uint32_t flags, uint32_t allow_uid) {
  char addr[160];
  np_listener *l;
  np_stream *own, *s = (np_stream *)&s;
  np_peer peer;
  pid_t pid;
  int report;

  l = foreign_setup(flags, allow_uid, addr, sizeof(addr), &pid, &report);
  ck_assert_int_eq(np_accept(l, TOK_S, NP_READABLE, &s), NP_EAGAIN);
  ck_assert_ptr_null(s);
  foreign_finish(pid, report, SAW_EOF);
  ck_assert_int_eq(np_connect(poll_, addr, NULL, TOK_C, 0, &own), 0);
  s = accept_one(l, TOK_S);
  ck_assert_int_eq(np_stream_peer(s, &peer), 0);
  ck_assert_int_eq(peer.pid, (int64_t)getpid());
  np_close(s);
  np_close(own);
  np_listener_close(l);
}

static void assert_foreign_accepted(uint32_t flags, uint32_t allow_uid) {
  char addr[160], c;
  np_listener *l;
  np_stream *s;
  np_peer peer;
  pid_t pid;
  int report;

  l = foreign_setup(flags, allow_uid, addr, sizeof(addr), &pid, &report);
  s = accept_one(l, TOK_S);
  ck_assert_int_eq(np_stream_peer(s, &peer), 0);
  ck_assert_int_eq(peer.pid, (int64_t)pid);
  ck_assert_int_eq(peer.uid, NOBODY);
  ck_assert_int_eq(peer.gid, NOBODY);
  ck_assert_int_eq(read_next(s, TOK_S, &c, 1), 1);
  ck_assert_int_eq(c, 'x');
  ck_assert_int_eq(np_write(s, "y", 1), 1);
  foreign_finish(pid, report, SAW_REPLY);
  np_close(s);
  np_listener_close(l);
}

START_TEST(test_pipe_unix_other_user_refused) {
  assert_foreign_refused(0, 0);
  assert_foreign_refused(NP_OPT_ALLOW_UID, 12345);
}
END_TEST

START_TEST(test_pipe_unix_other_user_allowed_by_options) {
  assert_foreign_accepted(NP_OPT_ANY_USER, 0);
  assert_foreign_accepted(NP_OPT_ALLOW_UID, NOBODY);
}
END_TEST

START_TEST(test_pipe_unix_peer_credentials) {
  np_listener *l;
  np_stream *c, *s;
  np_peer peer;

  setenv("NPIPE_DIR", base_, 1);
  open_pair("pipe:cred", NULL, &l, &c, &s);
  ck_assert_int_eq(np_stream_peer(c, &peer), 0);
  ck_assert_int_eq(peer.pid, (int64_t)getpid());
  ck_assert_int_eq(peer.uid, (int64_t)geteuid());
  ck_assert_int_eq(peer.gid, (int64_t)getegid());
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* ---- data ------------------------------------------------------------ */

static volatile sig_atomic_t sigpipes_;

static void count_sigpipe(int sig) {
  NP__UNUSED(sig);
  sigpipes_++;
}

/* Writes to c until NP_EPIPE (bounded), in the given mode. */
static void write_until_epipe(np_stream *c, size_t chunk) {
  static unsigned char buf[256 * 1024];
  ptrdiff_t r = 0;
  int i;

  for (i = 0; i < 200 && r != NP_EPIPE; i++) {
    r = np_write(c, buf, chunk);
    ck_assert_msg(r > 0 || r == NP_EAGAIN || r == NP_EPIPE, "%s",
                  np_errname((int)r));
    npt_wait_token(poll_, TOK_C, NP_HUP, 5);
  }
  ck_assert_int_eq(r, NP_EPIPE);
  for (i = 0; i < 10; i++)
    ck_assert_int_eq(np_write(c, buf, chunk), NP_EPIPE);
}

/* Writes until the kernel and the stream's buffer are full, then closes:
 * the stream stays to flush. */
static void fill_and_close(np_stream *c) {
  static unsigned char buf[8 * 1024];
  ptrdiff_t r;
  int i;

  for (i = 0; i < 100000 && (r = np_write(c, buf, sizeof(buf))) > 0; i++)
    ;
  ck_assert_int_eq(r, NP_EAGAIN);
  np_close(c);
}

START_TEST(test_pipe_unix_no_sigpipe) {
  struct sigaction sa, old;
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  int mode;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = count_sigpipe;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGPIPE, &sa, &old), 0);
  sigpipes_ = 0;
  setenv("NPIPE_DIR", base_, 1);
  memset(&o, 0, sizeof(o));
  for (mode = 0; mode < 2; mode++) {
    o.flags = mode ? NP_OPT_MESSAGE : 0;
    open_pair("pipe:sig", &o, &l, &c, &s);
    ck_assert_int_eq(np_write(s, "unread", 6), 6);
    np_close(s);
    write_until_epipe(c, 1000);
    np_close(c);
    /* A closed stream flushing to a peer that vanishes. */
    c = NULL;
    ck_assert_int_eq(np_connect(poll_, "pipe:sig", &o, TOK_C, NP_WRITABLE, &c),
                     0);
    s = accept_one(l, TOK_S);
    fill_and_close(c);
    ck_assert_uint_eq(np__poll_core(poll_)->live, 3);
    np_close(s);
    wait_live(1);
    np_listener_close(l);
  }
  ck_assert_int_eq(sigpipes_, 0);
  ck_assert_int_eq(sigaction(SIGPIPE, &old, NULL), 0);
}
END_TEST

/* The peer wrote, then closed with our bytes unread: a reset on Linux,
 * which SOCK_SEQPACKET reports ahead of the peer's last messages.  Every
 * one of them still arrives, then NP_EOF. */
START_TEST(test_pipe_unix_reset_keeps_peer_data) {
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  char buf[16];
  int mode;

  setenv("NPIPE_DIR", base_, 1);
  memset(&o, 0, sizeof(o));
  for (mode = 0; mode < 2; mode++) {
    o.flags = mode ? NP_OPT_MESSAGE : 0;
    open_pair("pipe:reset", &o, &l, &c, &s);
    ck_assert_int_eq(np_write(c, "never read", 10), 10);
    ck_assert_int_eq(np_write(s, "m1", 2), 2);
    ck_assert_int_eq(np_write(s, "m2", 2), 2);
    npt_sleep_ms(20);
    np_close(s);
    npt_wait_token(poll_, TOK_C, NP_HUP, WAIT_MS);
    if (mode) {
      ck_assert_int_eq(read_next(c, TOK_C, buf, sizeof(buf)), 2);
      ck_assert_int_eq(memcmp(buf, "m1", 2), 0);
      ck_assert_int_eq(read_next(c, TOK_C, buf, sizeof(buf)), 2);
      ck_assert_int_eq(memcmp(buf, "m2", 2), 0);
    } else {
      ck_assert_int_eq(read_next(c, TOK_C, buf, sizeof(buf)), 4);
      ck_assert_int_eq(memcmp(buf, "m1m2", 4), 0);
    }
    ck_assert_int_eq(read_next(c, TOK_C, buf, sizeof(buf)), NP_EOF);
    ck_assert_int_eq(np_read(c, buf, sizeof(buf)), NP_EOF);
    ck_assert_int_eq(np_write(c, "x", 1), NP_EPIPE);
    np_close(c);
    np_listener_close(l);
  }
}
END_TEST

START_TEST(test_pipe_unix_close_flushes_then_frees) {
  enum { N = 6 * 1024 * 1024 };
  np_options o;
  np_listener *l;
  np_stream *c, *s;

  setenv("NPIPE_DIR", base_, 1);
  memset(&o, 0, sizeof(o));
  o.write_limit = N;
  open_pair("pipe:flush", &o, &l, &c, &s);
  write_pattern(c, N);
  np_close(c);
  /* The closed stream is still there, silent, until it has flushed. */
  ck_assert_uint_eq(np__poll_core(poll_)->live, 3);
  read_pattern_then_eof(s, N);
  wait_live(2);
  np_close(s);
  np_listener_close(l);
  ck_assert_uint_eq(np__poll_core(poll_)->live, 0);
}
END_TEST

START_TEST(test_pipe_unix_shutdown_after_buffered_bytes) {
  enum { N = 3 * 1024 * 1024 };
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  char buf[8];

  setenv("NPIPE_DIR", base_, 1);
  memset(&o, 0, sizeof(o));
  o.write_limit = N;
  open_pair("pipe:shut", &o, &l, &c, &s);
  write_pattern(c, N);
  ck_assert_int_eq(np_shutdown(c), 0);
  ck_assert_int_eq(np_write(c, "x", 1), NP_ESHUTDOWN);
  read_pattern_then_eof(s, N);
  ck_assert_int_eq(np_write(s, "back", 4), 4);
  ck_assert_int_eq(read_next(c, TOK_C, buf, sizeof(buf)), 4);
  np_close(s);
  ck_assert_int_eq(read_next(c, TOK_C, buf, sizeof(buf)), NP_EOF);
  np_close(c);
  np_listener_close(l);
}
END_TEST

START_TEST(test_pipe_unix_poll_free_while_flushing) {
  enum { N = 4 * 1024 * 1024 };
  np_options o;
  np_listener *l;
  np_stream *c, *s;

  setenv("NPIPE_DIR", base_, 1);
  memset(&o, 0, sizeof(o));
  o.write_limit = N;
  open_pair("pipe:pf", &o, &l, &c, &s);
  write_pattern(c, N);
  np_close(c);
  ck_assert_uint_eq(np__poll_core(poll_)->live, 3);
  np_poll_free(poll_);
  ck_assert_int_eq(np_poll_new(&poll_), 0);
  ck_assert_int_eq(np_listen(poll_, "pipe:pf", NULL, TOK_L, &l), 0);
  np_listener_close(l);
}
END_TEST

/* The event masks of every fd in this process's one epoll set, from
 * /proc: counts those that include EPOLLOUT. */
static int fds_watching_out(void) {
  char path[320], link[64], line[256];
  struct dirent *d;
  DIR *dir = opendir("/proc/self/fd");
  int epfd = -1, count = 0;
  FILE *f;

  ck_assert_ptr_nonnull(dir);
  while ((d = readdir(dir)) != NULL) {
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%s", d->d_name);
    n = readlink(path, link, sizeof(link) - 1);
    if (n > 0 &&
        (link[n] = '\0', strcmp(link, "anon_inode:[eventpoll]")) == 0) {
      ck_assert_msg(epfd < 0, "more than one epoll set");
      epfd = atoi(d->d_name);
    }
  }
  closedir(dir);
  ck_assert_int_ge(epfd, 0);
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
  f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  while (fgets(line, sizeof(line), f) != NULL) {
    int tfd;
    unsigned events;

    if (sscanf(line, "tfd: %d events: %x", &tfd, &events) == 2 &&
        (events & 0x4u))
      count++;
  }
  fclose(f);
  return count;
}

START_TEST(test_pipe_unix_epollout_only_while_buffered) {
  enum { N = 2 * 1024 * 1024 };
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  np_event ev[8];

  setenv("NPIPE_DIR", base_, 1);
  memset(&o, 0, sizeof(o));
  o.write_limit = N;
  open_pair("pipe:out", &o, &l, &c, &s);
  ck_assert_int_ge(np_poll_wait(poll_, ev, 8, 0), 0);
  ck_assert_int_eq(fds_watching_out(), 0);
  write_pattern(c, N);
  ck_assert_int_eq(fds_watching_out(), 1);
  np_close(c);
  read_pattern_then_eof(s, N);
  wait_live(2);
  ck_assert_int_eq(fds_watching_out(), 0);
  np_close(s);
  np_listener_close(l);
}
END_TEST

/* The stream behind a byte-mode pipe end (white box). */
static struct np__fd_stream *fd_stream(np_stream *s) {
  return NP__CONTAINER_OF(s, struct np__fd_stream, pub);
}

static int sndbuf_of(np_stream *s) {
  int size = 0;
  socklen_t len = sizeof(size);

  ck_assert_int_eq(
      getsockopt(fd_stream(s)->watch.fd, SOL_SOCKET, SO_SNDBUF, &size, &len),
      0);
  return size;
}

/* A write the socket takes whole goes straight to the kernel: nothing is
 * copied into the write buffer, EPOLLOUT stays off, and a stream that
 * never wrote in bulk keeps the default send buffer. */
START_TEST(test_pipe_unix_write_that_fits_is_not_buffered) {
  static unsigned char buf[8192];
  np_listener *l;
  np_stream *c, *s;
  np_event ev[8];
  int size;

  setenv("NPIPE_DIR", base_, 1);
  open_pair("pipe:fits", NULL, &l, &c, &s);
  ck_assert_int_ge(np_poll_wait(poll_, ev, 8, 0), 0);
  size = sndbuf_of(c);
  ck_assert_int_eq(np_write(c, buf, sizeof(buf)), (ptrdiff_t)sizeof(buf));
  ck_assert_uint_eq(fd_stream(c)->out.len, 0);
  ck_assert_int_eq(fds_watching_out(), 0);
  ck_assert_int_eq(sndbuf_of(c), size);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), sizeof(buf));
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* A bulk writer whose reader is away: the stream still takes at least
 * its write limit before NP_EAGAIN (the promise that lets a writer send
 * everything before it reads).  Where the kernel's send buffer can grow
 * to hold the limit by itself, the backlog waits there: the write buffer
 * holds no more than (the rest of) one write, later large writes wait
 * for it to drain, small ones still queue.  Every accepted byte arrives,
 * in order. */
START_TEST(test_pipe_unix_bulk_backlog_in_kernel) {
  enum { CHUNK = 64 * 1024 };
  static unsigned char chunk[CHUNK];
  np_listener *l;
  np_stream *c, *s;
  size_t total = 0, i;
  ptrdiff_t r;

  setenv("NPIPE_DIR", base_, 1);
  open_pair("pipe:bulk", NULL, &l, &c, &s);
  for (;;) {
    for (i = 0; i < CHUNK; i++)
      chunk[i] = pattern(total + i);
    r = np_write(c, chunk, CHUNK);
    if (r < 0)
      break;
    total += (size_t)r;
    ck_assert_msg(total < 64u * 1024 * 1024, "writes never blocked");
  }
  ck_assert_int_eq(r, NP_EAGAIN);
  ck_assert_uint_ge(total, NP__DEFAULT_WRITE_LIMIT);
  if ((size_t)sndbuf_of(c) >= NP__DEFAULT_WRITE_LIMIT) {
    ck_assert_uint_gt(fd_stream(c)->out.len, 0);
    ck_assert_uint_le(fd_stream(c)->out.len, CHUNK);
    /* A small write is still taken, behind the tail. */
    for (i = 0; i < 100; i++)
      chunk[i] = pattern(total + i);
    ck_assert_int_eq(np_write(c, chunk, 100), 100);
    total += 100;
  } else {
    /* The kernel cannot hold the limit here: the write buffer does. */
    ck_assert_uint_gt(fd_stream(c)->out.len, 0);
  }
  ck_assert_int_eq(np_write(c, chunk, CHUNK), NP_EAGAIN);
  np_close(c);
  read_pattern_then_eof(s, total);
  np_close(s);
  np_listener_close(l);
}
END_TEST

/* Room after a refused large write: WRITABLE once the reader drained the
 * stream, and the next large write is taken. */
START_TEST(test_pipe_unix_bulk_writable_after_drain) {
  enum { CHUNK = 64 * 1024 };
  static unsigned char chunk[CHUNK], in[CHUNK];
  np_listener *l;
  np_stream *c, *s;
  size_t total = 0, got = 0;
  ptrdiff_t r;

  setenv("NPIPE_DIR", base_, 1);
  open_pair("pipe:drain", NULL, &l, &c, &s);
  while ((r = np_write(c, chunk, CHUNK)) > 0)
    total += (size_t)r;
  ck_assert_int_eq(r, NP_EAGAIN);
  ck_assert_int_eq(np_stream_set_interest(c, TOK_C, NP_WRITABLE), 0);
  while (got < total) {
    r = read_next(s, TOK_S, in, sizeof(in));
    ck_assert_int_gt(r, 0);
    got += (size_t)r;
  }
  ck_assert(npt_wait_token(poll_, TOK_C, NP_WRITABLE, WAIT_MS));
  ck_assert_uint_eq(fd_stream(c)->out.len, 0);
  ck_assert_int_eq(np_write(c, chunk, CHUNK), CHUNK);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* ---- message mode --------------------------------------------------- */

START_TEST(test_pipe_unix_message_limits) {
  enum { BIG = 200 * 1024, HUGE = 64 * 1024 * 1024 };
  unsigned char *out = malloc(BIG + 1), *in = malloc(BIG);
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  size_t i;

  ck_assert_ptr_nonnull(out);
  ck_assert_ptr_nonnull(in);
  for (i = 0; i < BIG; i++)
    out[i] = pattern(i);
  setenv("NPIPE_DIR", base_, 1);
  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_MESSAGE;
  o.write_limit = BIG; /* bounds one message, as on Windows */
  open_pair("pipe:msg", &o, &l, &c, &s);
  ck_assert_int_eq(np_write(c, out, HUGE), NP_EMSGSIZE);
  ck_assert_int_eq(np_write(c, out, BIG + 1), NP_EMSGSIZE);
  ck_assert_int_eq(np_write(c, out, BIG), BIG);
  ck_assert_int_eq(np_write(c, "", 0), 0);
  ck_assert_int_eq(read_next(s, TOK_S, in, BIG - 1), NP_EMSGSIZE);
  ck_assert_int_eq(read_next(s, TOK_S, in, BIG), BIG);
  ck_assert_int_eq(memcmp(in, out, BIG), 0);
  ck_assert_int_eq(read_next(s, TOK_S, in, 0), 0);
  ck_assert_int_eq(np_read(s, in, BIG), NP_EAGAIN);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free(out);
  free(in);
}
END_TEST

/* More messages than the socket holds: queued whole, delivered in order
 * with their sizes, also after np_close. */
START_TEST(test_pipe_unix_message_queue_and_close) {
  enum { COUNT = 300, MAX = 9000 };
  static unsigned char buf[MAX];
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  size_t i;
  int k;

  for (i = 0; i < MAX; i++)
    buf[i] = pattern(i);
  setenv("NPIPE_DIR", base_, 1);
  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_MESSAGE;
  o.write_limit = 4u * 1024 * 1024;
  open_pair("pipe:mq", &o, &l, &c, &s);
  for (k = 0; k < COUNT; k++) {
    size_t len = (size_t)k * 31 % MAX;

    ck_assert_int_eq(np_write(c, buf + k % 7, len), (ptrdiff_t)len);
  }
  np_close(c);
  for (k = 0; k < COUNT; k++) {
    static unsigned char in[MAX];
    size_t len = (size_t)k * 31 % MAX;

    ck_assert_int_eq(read_next(s, TOK_S, in, sizeof(in)), (ptrdiff_t)len);
    ck_assert_msg(memcmp(in, buf + k % 7, len) == 0, "message %d", k);
  }
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), NP_EOF);
  np_close(s);
  np_listener_close(l);
}
END_TEST

START_TEST(test_pipe_unix_mode_mismatch) {
  np_options msg;
  np_listener *l;
  np_stream *c;

  setenv("NPIPE_DIR", base_, 1);
  memset(&msg, 0, sizeof(msg));
  msg.flags = NP_OPT_MESSAGE;
  ck_assert_int_eq(np_listen(poll_, "pipe:mm", NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, "pipe:mm", &msg, TOK_C, 0, &c),
                   NP_EINVAL);
  np_listener_close(l);
  ck_assert_int_eq(np_listen(poll_, "pipe:mm", &msg, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, "pipe:mm", NULL, TOK_C, 0, &c),
                   NP_EINVAL);
  np_listener_close(l);
}
END_TEST

/* ---- attacks on paths ------------------------------------------------- */

/* What the observer below does to the file system, and when. */
static struct {
  int fn;            /* the wrapped call to act on (np__seam_fn_id) */
  int after;         /* before (0) or after (1) it */
  const char *from;  /* rename from -> to; from may be made first */
  const char *to;
  const char *link;  /* when set: from becomes a symlink to link */
  const char *aside; /* when set: to is first renamed here */
  int done;
} swap_;

/* The attacker's move, made once, exactly at the chosen call: a rename
 * over a path the library is about to use (or has just used). */
static long swap_observer(struct np__seam_call *call, int after, void *ctx) {
  NP__UNUSED(ctx);
  if (swap_.done || call->fn != swap_.fn || after != swap_.after)
    return 0;
  swap_.done = 1;
  if (swap_.link != NULL && symlink(swap_.link, swap_.from) != 0)
    return 0;
  if (swap_.aside != NULL)
    (void)rename(swap_.to, swap_.aside);
  (void)rename(swap_.from, swap_.to);
  return 0;
}

static void arm_swap(const char *fn, int after, const char *from,
                     const char *to, const char *link, const char *aside) {
  swap_.fn = np__seam_fn_id(fn);
  ck_assert_int_ge(swap_.fn, 0);
  swap_.after = after;
  swap_.from = from;
  swap_.to = to;
  swap_.link = link;
  swap_.aside = aside;
  swap_.done = 0;
  np__seam_observe(swap_observer, NULL);
}

/* A symlink renamed over the fresh socket between bind and the mode
 * change must not carry the mode to the file it points to. */
START_TEST(test_pipe_unix_mode_never_follows_swapped_symlink) {
  char victim[128], sock[128], addr[160], lnk[128], lock[140];
  np_listener *l = (np_listener *)&l;
  np_options o;
  int fd;

  snprintf(victim, sizeof(victim), "%s/private", base_);
  fd = open(victim, O_CREAT | O_WRONLY, 0600);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(chmod(victim, 0600), 0);
  snprintf(sock, sizeof(sock), "%s/s", base_);
  snprintf(lnk, sizeof(lnk), "%s/evil", base_);
  snprintf(addr, sizeof(addr), "unix:%s", sock);
  memset(&o, 0, sizeof(o));
  o.mode = 0666;
  arm_swap("bind", 1, lnk, sock, victim, NULL);
  ck_assert_int_eq(np_listen(poll_, addr, &o, TOK_L, &l), NP_EACCES);
  np__seam_reset();
  ck_assert(swap_.done);
  ck_assert_ptr_null(l);
  ck_assert_uint_eq(mode_of(victim) & 07777, 0600);
  /* The attacker's symlink stays (it is not ours to remove); no lock
   * file is left behind. */
  ck_assert(S_ISLNK(mode_of(sock)));
  snprintf(lock, sizeof(lock), "%s.lock", sock);
  ck_assert(!exists(lock));
  /* Without the attack the same call gives the exact mode. */
  ck_assert_int_eq(unlink(sock), 0);
  ck_assert_int_eq(np_listen(poll_, addr, &o, TOK_L, &l), 0);
  ck_assert_uint_eq(mode_of(sock) & 07777, 0666);
  np_listener_close(l);
}
END_TEST

/* NPIPE_DIR below a directory other users can write without the sticky
 * bit, or below one they own, is refused on both sides. */
START_TEST(test_pipe_unix_untrusted_ancestor_refused) {
  char open_dir[128], priv[160];
  np_listener *l;
  np_stream *c;

  make_dir(open_dir, sizeof(open_dir), "open", 0777);
  snprintf(priv, sizeof(priv), "%s/npipe", open_dir);
  ck_assert_int_eq(mkdir(priv, 0700), 0);
  assert_dir_refused(priv);
  /* The sticky bit stops others renaming our directory: trusted. */
  ck_assert_int_eq(chmod(open_dir, 01777), 0);
  setenv("NPIPE_DIR", priv, 1);
  ck_assert_int_eq(np_listen(poll_, "pipe:x", NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, "pipe:x", NULL, TOK_C, 0, &c), 0);
  np_close(c);
  np_listener_close(l);
  if (geteuid() == 0) {
    /* Below a directory another user owns, even one closed to others. */
    make_dir(open_dir, sizeof(open_dir), "theirs", 0755);
    ck_assert_int_eq(chown(open_dir, NOBODY, NOBODY), 0);
    snprintf(priv, sizeof(priv), "%s/npipe", open_dir);
    ck_assert_int_eq(mkdir(priv, 0700), 0);
    assert_dir_refused(priv);
  }
}
END_TEST

/* Runs in a child as uid NOBODY: listens on addr for clients of any
 * user, reports the result and waits until the parent closes done. */
static void foreign_server(const char *addr, uint32_t flags, int report,
                           int done) {
  np_listener *l;
  np_options o;
  np_poll *p;
  int err;
  char c;

  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_ANY_USER | flags;
  o.mode = 0666;
  if (setgid(NOBODY) != 0 || setuid(NOBODY) != 0 || np_poll_new(&p) != 0)
    _exit(3);
  err = np_listen(p, addr, &o, 1, &l);
  if (write(report, &err, sizeof(err)) != (ssize_t)sizeof(err) || err != 0)
    _exit(4);
  if (read(done, &c, 1) != 0)
    _exit(5);
  np_listener_close(l);
  np_poll_free(p);
  _exit(0);
}

static pid_t start_foreign_server(const char *addr, uint32_t flags,
                                  int *done_out) {
  int report[2], done[2];
  pid_t pid;

  ck_assert_int_eq(pipe(report), 0);
  ck_assert_int_eq(pipe(done), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(report[0]);
    close(done[1]);
    foreign_server(addr, flags, report[1], done[0]);
  }
  close(report[1]);
  close(done[0]);
  ck_assert_int_eq(read_int(report[0]), 0);
  close(report[0]);
  *done_out = done[1];
  return pid;
}

static void stop_foreign_server(pid_t pid, int done) {
  int status;

  close(done);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* public_dir()/sub, made with mode and owned by uid. */
static void make_public_dir(char *buf, size_t len, const char *sub,
                            mode_t mode, uid_t uid) {
  snprintf(buf, len, "%s/%s", public_dir(), sub);
  ck_assert_int_eq(mkdir(buf, mode), 0);
  ck_assert_int_eq(chmod(buf, mode), 0);
  ck_assert_int_eq(chown(buf, uid, uid), 0);
}

/* A server of another user is refused once connected, whatever path led
 * to it; NP_OPT_ANY_SERVER lets it serve. */
START_TEST(test_pipe_unix_client_refuses_other_server) {
  char dir[128], addr[160];
  np_stream *c = (np_stream *)&c;
  np_options o;
  pid_t pid;
  int done;

  make_public_dir(dir, sizeof(dir), "theirs", 0755, NOBODY);
  snprintf(addr, sizeof(addr), "unix:%s/srv", dir);
  pid = start_foreign_server(addr, 0, &done);
  ck_assert_int_eq(np_connect(poll_, addr, NULL, TOK_C, 0, &c), NP_EACCES);
  ck_assert_ptr_null(c);
  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_ANY_SERVER;
  ck_assert_int_eq(np_connect(poll_, addr, &o, TOK_C, 0, &c), 0);
  np_close(c);
  wait_live(0);
  stop_foreign_server(pid, done);
}
END_TEST

/* The private directory swapped for another user's between the client's
 * checks and its connect(2): the race ends in a refusal, never in a
 * session with the other user's server. */
START_TEST(test_pipe_unix_swapped_dir_ends_in_refusal) {
  char priv[128], theirs[128], aside[128], addr[160];
  np_stream *c = (np_stream *)&c;
  pid_t pid;
  int done;

  make_public_dir(priv, sizeof(priv), "priv", 0700, 0);
  make_public_dir(theirs, sizeof(theirs), "theirs", 0755, NOBODY);
  snprintf(addr, sizeof(addr), "unix:%s/name", theirs);
  pid = start_foreign_server(addr, 0, &done);
  snprintf(aside, sizeof(aside), "%s/aside", public_dir());
  setenv("NPIPE_DIR", priv, 1);
  arm_swap("connect", 0, theirs, priv, NULL, aside);
  ck_assert_int_eq(np_connect(poll_, "pipe:name", NULL, TOK_C, 0, &c),
                   NP_EACCES);
  np__seam_reset();
  ck_assert(swap_.done);
  ck_assert_ptr_null(c);
  wait_live(0);
  stop_foreign_server(pid, done);
}
END_TEST

/* ---- transient send failures -------------------------------------------- */

/* The kernel short of memory for a few sends (ENOBUFS, ENOMEM) delays
 * the bytes but never loses them or ends the stream. */
static void assert_transient_send_retried(uint32_t flags, const char *fn,
                                          int err) {
  static unsigned char out[100000], in[100000];
  np_listener *l;
  np_stream *c, *s;
  np_options o;
  size_t i, got = 0;
  ptrdiff_t r;

  memset(&o, 0, sizeof(o));
  o.flags = flags;
  setenv("NPIPE_DIR", base_, 1);
  open_pair("pipe:transient", &o, &l, &c, &s);
  for (i = 0; i < sizeof(out); i++)
    out[i] = pattern(i);
  np__seam_fail_fn(np__seam_fn_id(fn), err, 4);
  ck_assert_int_eq(np_write(c, out, sizeof(out)), (ptrdiff_t)sizeof(out));
  ck_assert_int_eq(np_stream_error(c), 0);
  while (got < sizeof(out)) {
    r = read_next(s, TOK_S, in + got, sizeof(in) - got);
    ck_assert_msg(r > 0, "%s after %zu bytes", np_errname((int)r), got);
    got += (size_t)r;
    ck_assert(!(flags & NP_OPT_MESSAGE) || got == sizeof(out));
  }
  ck_assert_uint_eq(np__seam_injected(), 4);
  np__seam_reset();
  ck_assert(memcmp(in, out, sizeof(out)) == 0);
  ck_assert_int_eq(np_stream_error(c), 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}

START_TEST(test_pipe_unix_transient_send_failure_retried) {
  assert_transient_send_retried(0, "send", ENOBUFS);
  assert_transient_send_retried(0, "send", ENOMEM);
  assert_transient_send_retried(NP_OPT_MESSAGE, "sendmsg", ENOBUFS);
}
END_TEST

/* ---- out of descriptors ------------------------------------------------- */

/* A listener whose accept fails for want of descriptors goes quiet and
 * is reported again after a pause, never in a loop; a client that waits
 * meanwhile is served once descriptors are back. */
START_TEST(test_pipe_unix_emfile_listener_pauses) {
  np_listener *l;
  np_stream *c, *s = NULL;
  np_event ev[8];
  uint64_t start;
  int reports = 0, n, i, err;

  setenv("NPIPE_DIR", base_, 1);
  ck_assert_int_eq(np_listen(poll_, "pipe:emfile", NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, "pipe:emfile", NULL, TOK_C, 0, &c), 0);
  np__seam_fail_fn(np__seam_fn_id("accept4"), EMFILE, 0);
  start = npt_now_ms();
  while (npt_now_ms() - start < 400) {
    n = np_poll_wait(poll_, ev, 8, 50);
    ck_assert_int_ge(n, 0);
    for (i = 0; i < n; i++) {
      if (ev[i].token != TOK_L)
        continue;
      reports++;
      ck_assert_int_eq(np_accept(l, TOK_S, 0, &s), NP_EMFILE);
    }
  }
  /* One report at once, then pauses of 50, 100 and 200 ms: about four. */
  ck_assert_int_ge(reports, 1);
  ck_assert_int_le(reports, 6);
  np__seam_reset();
  while ((err = np_accept(l, TOK_S, 0, &s)) == NP_EAGAIN)
    ck_assert_uint_ne(npt_wait_token(poll_, TOK_L, NP_READABLE, WAIT_MS), 0);
  ck_assert_int_eq(err, 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* np_accept short of memory keeps the connection waiting: the next call
 * hands out the same client, with its bytes. */
START_TEST(test_pipe_unix_accept_enomem_keeps_connection) {
  np_listener *l;
  np_stream *c, *s = (np_stream *)&s;
  char buf[2];

  setenv("NPIPE_DIR", base_, 1);
  ck_assert_int_eq(np_listen(poll_, "pipe:nomem", NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, "pipe:nomem", NULL, TOK_C, 0, &c), 0);
  ck_assert_int_eq(np_write(c, "hi", 2), 2);
  ck_assert_uint_ne(npt_wait_token(poll_, TOK_L, NP_READABLE, WAIT_MS), 0);
  np__seam_fail_fn(np__seam_fn_id("calloc"), ENOMEM, 1);
  ck_assert_int_eq(np_accept(l, TOK_S, NP_READABLE, &s), NP_ENOMEM);
  np__seam_reset();
  ck_assert_ptr_null(s);
  /* Still reported, and the same connection comes out. */
  ck_assert_uint_ne(npt_wait_token(poll_, TOK_L, NP_READABLE, WAIT_MS), 0);
  ck_assert_int_eq(np_accept(l, TOK_S, NP_READABLE, &s), 0);
  ck_assert_int_eq(read_next(s, TOK_S, buf, 2), 2);
  ck_assert_mem_eq(buf, "hi", 2);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

static TCase *add_tcase(Suite *su, const char *name) {
  TCase *tc = npt_tcase(su, name);

  tcase_add_checked_fixture(tc, setup, teardown);
  return tc;
}

int main(void) {
  Suite *su = suite_create("pipe_unix");
  TCase *tc = add_tcase(su, "dir");

  tcase_add_test(tc, test_pipe_unix_modes_under_any_umask);
  tcase_add_test(tc, test_pipe_unix_unsafe_dir_refused);
  tcase_add_test(tc, test_pipe_unix_dir_selection);
  tcase_add_test(tc, test_pipe_unix_connect_without_dir_is_enoent);
  tc = add_tcase(su, "names");
  tcase_add_test(tc, test_pipe_unix_name_length_boundaries);
  tcase_add_test(tc, test_pipe_unix_unix_path_boundaries);
  tcase_add_test(tc, test_pipe_unix_unc_spelling);
  tc = add_tcase(su, "claim");
  tcase_add_test(tc, test_pipe_unix_stale_socket_replaced);
  tcase_add_test(tc, test_pipe_unix_live_socket_kept);
  tcase_add_test(tc, test_pipe_unix_close_spares_replaced_file);
  tcase_add_test(tc, test_pipe_unix_lock_holder_never_unlinked);
  tcase_add_test(tc, test_pipe_unix_racing_servers_one_wins);
  tcase_add_test(tc, test_pipe_unix_emfile_listener_pauses);
  tcase_add_test(tc, test_pipe_unix_accept_enomem_keeps_connection);
  tc = add_tcase(su, "peer");
  tcase_add_test(tc, test_pipe_unix_peer_credentials);
  if (geteuid() == 0) {
    tcase_add_test(tc, test_pipe_unix_other_user_refused);
    tcase_add_test(tc, test_pipe_unix_other_user_allowed_by_options);
  } else {
    printf("not root: the tests with a client of another uid are left "
           "out\n");
  }
  tc = add_tcase(su, "attack");
  tcase_add_test(tc, test_pipe_unix_mode_never_follows_swapped_symlink);
  tcase_add_test(tc, test_pipe_unix_untrusted_ancestor_refused);
  if (geteuid() == 0) {
    tcase_add_test(tc, test_pipe_unix_client_refuses_other_server);
    tcase_add_test(tc, test_pipe_unix_swapped_dir_ends_in_refusal);
  } else {
    printf("not root: the tests with a server of another uid are left "
           "out\n");
  }
  tc = add_tcase(su, "data");
  tcase_add_test(tc, test_pipe_unix_no_sigpipe);
  tcase_add_test(tc, test_pipe_unix_reset_keeps_peer_data);
  tcase_add_test(tc, test_pipe_unix_close_flushes_then_frees);
  tcase_add_test(tc, test_pipe_unix_shutdown_after_buffered_bytes);
  tcase_add_test(tc, test_pipe_unix_poll_free_while_flushing);
  tcase_add_test(tc, test_pipe_unix_epollout_only_while_buffered);
  tcase_add_test(tc, test_pipe_unix_write_that_fits_is_not_buffered);
  tcase_add_test(tc, test_pipe_unix_bulk_backlog_in_kernel);
  tcase_add_test(tc, test_pipe_unix_bulk_writable_after_drain);
  tcase_add_test(tc, test_pipe_unix_transient_send_failure_retried);
  tc = add_tcase(su, "message");
  tcase_add_test(tc, test_pipe_unix_message_limits);
  tcase_add_test(tc, test_pipe_unix_message_queue_and_close);
  tcase_add_test(tc, test_pipe_unix_mode_mismatch);
  return npt_run(su);
}
