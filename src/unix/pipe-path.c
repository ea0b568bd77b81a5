/*
 * Where a pipe name lives: "pipe:NAME" is the socket NAME in a private
 * per-user directory ($NPIPE_DIR, else $XDG_RUNTIME_DIR/npipe, else
 * /tmp/npipe-EUID), and "unix:/path" is that path.
 *
 * The private directory is what keeps other users away on systems where
 * socket permissions are not enforced, and what stops them squatting a
 * name: it must be a directory (not a symlink) owned by this user with
 * no group or other access, or it is refused.  Its ancestors must be
 * beyond other users' reach too: a directory another user can write
 * (without the sticky bit) lets them rename the private directory away
 * and put their own in its place between our check and our connect.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipe-uds.h"

/* Copies the formatted text into buf[cap], or fails without truncating. */
static int put(char *buf, size_t cap, const char *a, const char *b) {
  int n = snprintf(buf, cap, "%s%s", a, b);

  if (n < 0)
    return NP_EINVAL;
  return (size_t)n < cap ? 0 : NP_ENAMETOOLONG;
}

/* The private directory's path, by the documented order. */
static int private_dir(char *dir, size_t cap) {
  const char *env = getenv("NPIPE_DIR");
  char uid[32];

  if (env != NULL && env[0] != '\0')
    return env[0] == '/' ? put(dir, cap, env, "") : NP_EINVAL;
  env = getenv("XDG_RUNTIME_DIR");
  /* The XDG spec says to ignore a relative value. */
  if (env != NULL && env[0] == '/')
    return put(dir, cap, env, "/npipe");
  snprintf(uid, sizeof(uid), "%lu", (unsigned long)geteuid());
  return put(dir, cap, "/tmp/npipe-", uid);
}

/* Creates dir 0700 if it is missing (the umask may narrow mkdir's mode;
 * this directory is ours, so its mode is set exactly).  The mode is set
 * through a descriptor of the directory mkdir made: a chmod by name
 * would follow whatever another user renamed into its place. */
static int make_dir(const char *dir) {
  int fd, err = 0;

  if (mkdir(dir, 0700) < 0)
    return errno == EEXIST ? 0 : np__error_from_errno();
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return np__error_from_errno();
  if (fchmod(fd, 0700) < 0)
    err = np__error_from_errno();
  close(fd);
  return err;
}

/* Non-zero when only root or this user can change the entry st
 * describes, and, for a directory, the entries in it: owned by one of
 * them, and writable by others only with the sticky bit (which stops
 * them renaming entries they do not own). */
static int trusted(const struct stat *st) {
  if (st->st_uid != 0 && st->st_uid != geteuid())
    return 0;
  return !S_ISDIR(st->st_mode) || (st->st_mode & 022) == 0 ||
         (st->st_mode & S_ISVTX) != 0;
}

/* Checks every ancestor of the absolute path dir, without following the
 * last component (check_dir looks at that one).  Returns 0, NP_EACCES or
 * the error of a missing ancestor. */
static int trusted_ancestors(const char *dir) {
  char prefix[PATH_MAX];
  size_t i, len, n = strlen(dir);
  struct stat st;

  if (n >= sizeof(prefix) || dir[0] != '/')
    return NP_EACCES;
  /* Each prefix that ends before a slash: "/", "/run", "/run/user", ... */
  for (i = 0; i < n; i++) {
    if (dir[i] != '/')
      continue;
    len = i == 0 ? 1 : i;
    memcpy(prefix, dir, len);
    prefix[len] = '\0';
    if (lstat(prefix, &st) < 0)
      return np__error_from_errno();
    if (!trusted(&st))
      return NP_EACCES;
  }
  return 0;
}

/* When an ancestor of dir is a symlink, the chain to where it leads
 * must be as safe as the chain as written, so that the directory checked
 * now is the one used later. */
static int trusted_target(const char *dir) {
  char real[PATH_MAX];

  if (realpath(dir, real) == NULL)
    return np__error_from_errno();
  return strcmp(real, dir) == 0 ? 0 : trusted_ancestors(real);
}

int np__pipe_path_trusted(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  size_t len = slash == path ? 1 : slash != NULL ? (size_t)(slash - path) : 0;

  if (len == 0 || len >= sizeof(dir) || trusted_ancestors(path) != 0)
    return 0;
  memcpy(dir, path, len);
  dir[len] = '\0';
  return trusted_target(dir) == 0;
}

/* Fills *st for dir and checks it is private.  Returns 0 or NP_E*. */
static int check_dir(const char *dir, struct stat *st) {
  /* lstat: a symlink is refused, whatever it points to. */
  if (lstat(dir, st) < 0)
    return np__error_from_errno();
  if (!S_ISDIR(st->st_mode) || st->st_uid != geteuid() ||
      (st->st_mode & 077) != 0)
    return NP_EACCES;
  return 0;
}

/* The private directory that last passed every check, by identity.
 * Walking its ancestors and resolving its path again would cost a
 * client's connect twice its own system calls; the same directory (the same inode, still
 * ours and private, reached by the same name) needs neither: whoever
 * renamed an ancestor could only make the name lead elsewhere, to
 * another inode, and a race after this check ends in the client's
 * SO_PEERCRED refusal anyway. */
static struct {
  pthread_mutex_t lock;
  char dir[NP__SUN_PATH_MAX];
  dev_t dev;
  ino_t ino;
} verified_ = {PTHREAD_MUTEX_INITIALIZER, "", 0, 0};

static int known_good(const char *dir, const struct stat *st) {
  int same;

  pthread_mutex_lock(&verified_.lock);
  same = strcmp(dir, verified_.dir) == 0 && st->st_dev == verified_.dev &&
         st->st_ino == verified_.ino;
  pthread_mutex_unlock(&verified_.lock);
  return same;
}

static void remember(const char *dir, const struct stat *st) {
  pthread_mutex_lock(&verified_.lock);
  snprintf(verified_.dir, sizeof(verified_.dir), "%s", dir);
  verified_.dev = st->st_dev;
  verified_.ino = st->st_ino;
  pthread_mutex_unlock(&verified_.lock);
}

/* Every check of the private directory dir, from the root down. */
static int check_all(const char *dir, int create, struct stat *st) {
  int err = trusted_ancestors(dir);

  if (err == 0 && create)
    err = make_dir(dir);
  if (err == 0)
    err = check_dir(dir, st);
  if (err == 0)
    err = trusted_target(dir);
  return err;
}

static int pipe_path(const char *name, int create, char *path) {
  char dir[NP__SUN_PATH_MAX];
  struct stat st;
  int err = private_dir(dir, sizeof(dir));

  if (err == 0 && strlen(dir) + 1 + strlen(name) >= NP__SUN_PATH_MAX)
    err = NP_ENAMETOOLONG;
  if (err != 0)
    return err;
  /* A listener (create) checks everything: it is rare, and it makes
   * files there.  A client, which vets the server on the socket too,
   * takes the short way when it can. */
  if (create || check_dir(dir, &st) != 0 || !known_good(dir, &st)) {
    if ((err = check_all(dir, create, &st)) != 0)
      return err;
    remember(dir, &st);
  }
  /* The lengths were checked above. */
  memcpy(path, dir, strlen(dir));
  path[strlen(dir)] = '/';
  memcpy(path + strlen(dir) + 1, name, strlen(name) + 1);
  return 0;
}

int np__pipe_path(const struct np__address *addr, int create,
                  char path[NP__SUN_PATH_MAX]) {
  if (addr->kind == NP__ADDR_UNIX) {
    if (addr->name[0] != '/')
      return NP_EINVAL;
    return put(path, NP__SUN_PATH_MAX, addr->name, "");
  }
  /* Only this machine's pipes: there is no remote AF_UNIX. */
  if (strcmp(addr->host, ".") != 0)
    return NP_ENOTSUP;
  return pipe_path(addr->name, create, path);
}

socklen_t np__pipe_sockaddr(const char *path, struct sockaddr_un *addr) {
  size_t len = strlen(path);

  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path, len + 1);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}
