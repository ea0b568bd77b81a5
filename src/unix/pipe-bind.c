/*
 * Claiming a socket path without ever hijacking a live server.
 *
 * "Unlink, then bind" removes whoever is listening there; "probe, then
 * unlink" races with a server starting at the same moment.  Here a
 * listener first takes an exclusive flock on "<path>.lock" and keeps it
 * for its whole life.  Whoever holds that lock is the only process that
 * may bind, replace or remove the socket file, so two servers racing can
 * never both win, and a live npipe server (which holds the lock) is never
 * touched.  A socket file found in the way while holding the lock is a
 * leftover of a crashed server, or belongs to a program that does not
 * use the lock: it is removed only when it is a socket of this user and
 * a probe connect is refused (nobody listens).
 */
#define _GNU_SOURCE /* O_PATH */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipe-uds.h"

#define LOCK_SUFFIX ".lock"
/* Attempts when closing listeners keep removing the lock file under us. */
#define LOCK_TRIES 8

typedef char lock_path_buf[NP__SUN_PATH_MAX + sizeof(LOCK_SUFFIX)];

static void lock_path(const char *path, lock_path_buf buf) {
  snprintf(buf, sizeof(lock_path_buf), "%s%s", path, LOCK_SUFFIX);
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int open_lock(const char *lpath) {
  /* O_NOFOLLOW: a planted symlink is refused; O_NONBLOCK: a planted FIFO
   * cannot block the open.  Read-only is enough for flock. */
  int fd = open(
      lpath, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);

  if (fd >= 0)
    return fd;
  if (errno == ELOOP)
    return NP_EACCES;
  /* ENXIO: a socket sits where the lock file should be. */
  return errno == ENXIO ? NP_EADDRINUSE : np__error_from_errno();
}

/* Takes the exclusive lock on lpath.  Returns 0 with *out set, or
 * NP_EADDRINUSE while a live listener holds it, or another NP_E*. */
static int take_lock(const char *lpath, int *out) {
  int i;

  for (i = 0; i < LOCK_TRIES; i++) {
    struct stat held, now;
    int fd = open_lock(lpath), e;

    if (fd < 0)
      return fd;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      e = errno;
      close(fd);
      return e == EWOULDBLOCK ? NP_EADDRINUSE : np__error_from_os(e);
    }
    if (fstat(fd, &held) < 0 || !S_ISREG(held.st_mode)) {
      close(fd);
      return NP_EADDRINUSE;
    }
    /* A listener closing right now removes the file after it is done:
     * if that happened between our open and our flock, we hold a lock on
     * a file that nobody else will find.  Only the file at the path
     * counts, so try again with that one. */
    if (lstat(lpath, &now) == 0 && same_file(&held, &now)) {
      *out = fd;
      return 0;
    }
    close(fd);
  }
  return NP_EADDRINUSE;
}

/* Decides, while holding the lock, whether the file at path may be
 * removed.  Returns 0 if so, NP_EADDRINUSE if not, or another NP_E*. */
static int stale(const char *path) {
  struct sockaddr_un sa;
  socklen_t len = np__pipe_sockaddr(path, &sa);
  struct stat st;
  int fd, e;

  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : np__error_from_errno();
  if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
    return NP_EADDRINUSE;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return np__error_from_errno();
  e = connect(fd, (const struct sockaddr *)&sa, len) == 0 ? 0 : errno;
  close(fd);
  /* Only "nobody listens" is stale.  EAGAIN (a full backlog) and
   * EPROTOTYPE (a live socket of the other type) are someone alive. */
  return e == ECONNREFUSED || e == ENOENT ? 0 : NP_EADDRINUSE;
}

static int bind_or_reclaim(int fd, const char *path) {
  struct sockaddr_un sa;
  socklen_t len = np__pipe_sockaddr(path, &sa);
  int err;

  if (bind(fd, (const struct sockaddr *)&sa, len) == 0)
    return 0;
  if (errno != EADDRINUSE)
    return np__error_from_errno();
  if ((err = stale(path)) != 0)
    return err;
  if (unlink(path) < 0 && errno != ENOENT)
    return np__error_from_errno();
  if (bind(fd, (const struct sockaddr *)&sa, len) == 0)
    return 0;
  return np__error_from_errno();
}

/* Sets the mode of the file that fd (an O_PATH descriptor) stands for.
 * /proc/self/fd/N names that inode itself, never whatever the path now
 * holds.  Without /proc, the path is used only where no other user can
 * replace what it names.  Returns 0 or NP_E*. */
static int chmod_opened(int fd, const char *path, unsigned mode) {
  char self[64];

  snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
  if (chmod(self, (mode_t)mode) == 0)
    return 0;
  if (errno != ENOENT)
    return np__error_from_errno();
  if (!np__pipe_path_trusted(path))
    return NP_EACCES;
  return chmod(path, (mode_t)mode) == 0 ? 0 : np__error_from_errno();
}

/* Records the file bind made and sets its mode.  Another user who can
 * write the directory may have renamed something into its place since
 * bind (a symlink to a file of ours, say): the file is opened without
 * following a symlink and must be a socket of this user, and the mode is
 * set on what was opened, never through the path again.  Returns 0,
 * NP_EACCES when the file is not ours, or another NP_E*. */
static int finish_bind(const char *path, unsigned mode,
                       struct np__pipe_files *f) {
  struct stat st;
  int fd, err = 0;

  fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? NP_EACCES : np__error_from_errno();
  if (fstat(fd, &st) < 0)
    err = np__error_from_errno();
  else if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
    err = NP_EACCES;
  if (err == 0) {
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    /* The mode is exact whatever the umask, which is process-wide and so
     * never changed by a library. */
    if ((st.st_mode & 07777) != (mode_t)mode)
      err = chmod_opened(fd, path, mode);
  }
  close(fd);
  return err;
}

/* Removes path if it is still the socket bind made: after a failure the
 * file there may already be another user's. */
static void unlink_bound(const char *path, const struct np__pipe_files *f) {
  struct stat st;

  if (f->ino != 0 && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
      st.st_dev == f->dev && st.st_ino == f->ino)
    unlink(path);
}

int np__pipe_bind(int fd, const char *path, unsigned mode,
                  struct np__pipe_files *f) {
  lock_path_buf lpath;
  int err;

  lock_path(path, lpath);
  if ((err = take_lock(lpath, &f->lock_fd)) != 0)
    return err;
  /* bind creates the file with the socket inode's mode less the umask:
   * narrowing it first means the file is never reachable with a wider
   * mode, even before the chmod below. */
  (void)fchmod(fd, (mode_t)mode);
  f->dev = 0;
  f->ino = 0;
  err = bind_or_reclaim(fd, path);
  if (err == 0) {
    err = finish_bind(path, mode, f);
    if (err != 0)
      unlink_bound(path, f);
  }
  if (err != 0) {
    unlink(lpath);
    close(f->lock_fd);
    return err;
  }
  snprintf(f->path, sizeof(f->path), "%s", path);
  return 0;
}

void np__pipe_unbind(struct np__pipe_files *f) {
  lock_path_buf lpath;
  struct stat st, held;

  /* Only our own socket file: if it was replaced meanwhile, the path now
   * names somebody else's. */
  unlink_bound(f->path, f);
  /* The lock file goes while we still hold it; a listener that opened it
   * just before sees it vanish and retries (take_lock). */
  lock_path(f->path, lpath);
  if (fstat(f->lock_fd, &held) == 0 && lstat(lpath, &st) == 0 &&
      same_file(&held, &st))
    unlink(lpath);
  close(f->lock_fd);
}
