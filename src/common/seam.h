/*
 * The fault-injection and call-recording seam, for tests only.
 *
 * The shipped library never sees this file's macros.  The test-only
 * build of the same sources (tests/libnpipe-seam.la) is compiled with
 * -DNP_SEAM and force-includes the backend's redirect header
 * (src/unix/seam-posix.h or src/win/seam-win.h) ahead of every file.
 * That header first includes every system header that declares a wrapped
 * function, then defines one function-like macro per OS call (and for
 * malloc, calloc, realloc and free, below) that notes the call site and
 * calls np__seam_<name> instead.  So no call site in the library is
 * edited, and the production objects contain no trace of the seam.
 *
 * A wrapper asks np__seam_enter whether to fail; if so it sets errno,
 * the Win32 last error or the WSA error (or returns the NTSTATUS or
 * EAI_* code) exactly as the OS would and returns the function's failure
 * value without calling it -- except for the close family (close,
 * CloseHandle, closesocket), which performs the close and then reports
 * the error, as Linux close(2) does.  free and the like are counted but
 * never failed.
 *
 * Only one thread may make wrapped calls while a fault is armed: the
 * counters are plain variables.  The control functions below are
 * declared in every build so that tests can include this header; they
 * exist only in the seam library.
 */
#ifndef NP_COMMON_SEAM_H
#define NP_COMMON_SEAM_H

#include <stddef.h>
#include <stdint.h>

/* Classes of calls, by the errors they can really report; a fault armed
 * for a class only counts and fails calls of functions in it. */
enum np__seam_class {
  NP__SEAM_ANY = 0x01,    /* every failable call */
  NP__SEAM_NOMEM = 0x02,  /* can fail for lack of memory */
  NP__SEAM_NOFD = 0x04,   /* creates a descriptor or handle */
  NP__SEAM_INTR = 0x08,   /* can be interrupted (EINTR) */
  NP__SEAM_HANDLE = 0x10, /* takes a descriptor or handle */
  NP__SEAM_CLOSE = 0x20,  /* closes: performed, then fails */
  NP__SEAM_NOFAIL = 0x40  /* counted and recorded, never failed */
};

#define NP__SEAM_MAX_ARGS 10

/* One wrapped call, as an observer sees it. */
struct np__seam_call {
  int fn;           /* np__seam_fn_id() of the function */
  const char *file; /* the call site */
  int line;
  int nargs;
  uintptr_t arg[NP__SEAM_MAX_ARGS]; /* pointers and integers, in order */
  intptr_t result;                  /* after the call: what it returned */
  long err;     /* after: errno / last error / status, or 0 */
  int injected; /* after: the seam made it fail */
};

/* Called twice per wrapped call: before (after == 0; a non-zero return
 * makes the call fail with that error, as an armed fault would) and
 * after (after == 1; the return is ignored).  The OS error is saved and
 * restored around the observer, so it may make its own system calls. */
typedef long (*np__seam_observer)(struct np__seam_call *call, int after,
                                  void *ctx);

/* Forgets armed faults and the observer and zeroes the call counters
 * (not the allocation count nor the call sites). */
void np__seam_reset(void);
/* Arms a fault: the nth (1-based) failable call of a function in class
 * from now fails with err (0: the function's usual error).  One fault at
 * a time; it fires once. */
void np__seam_fail_nth(unsigned long n, unsigned cls, long err);
/* Every call of fn (np__seam_fn_id) fails with err (0: usual error)
 * until reset; count 0 means without end, else the next count calls. */
void np__seam_fail_fn(int fn, long err, unsigned long count);
/* Failable calls of class cls counted since the last reset. */
unsigned long np__seam_calls(unsigned cls);
/* Faults injected since the last reset. */
unsigned long np__seam_injected(void);
/* The last injected call (valid when np__seam_injected() > 0). */
const struct np__seam_call *np__seam_last_injected(void);
/* Allocations (malloc, calloc, realloc of NULL, and the OS calls that
 * return memory to be freed) minus frees, since the process started. */
long np__seam_allocs(void);
/* Distinct call sites (file and line) that have made a wrapped call. */
size_t np__seam_sites(void);
void np__seam_observe(np__seam_observer fn, void *ctx);
/* The id of a wrapped function by name, or -1. */
int np__seam_fn_id(const char *name);
const char *np__seam_fn_name(int fn);
/* The function's class bits (enum np__seam_class). */
unsigned np__seam_fn_class(int fn);
/* Number of wrapped functions (ids are 0 .. count - 1). */
int np__seam_fn_count(void);

/* ---- used by the wrappers ---------------------------------------------- */

/* One wrapped function: its name, class and usual error. */
struct np__seam_fn {
  const char *name;
  unsigned cls;
  long err;
};
/* The backend's table (seam-posix.c, seam-win.c); it starts with
 * NP__SEAM_ALLOC_FNS, so that the allocation wrappers here have fixed
 * ids. */
extern const struct np__seam_fn np__seam_fns[];
enum { NP__SEAM_MALLOC, NP__SEAM_CALLOC, NP__SEAM_REALLOC, NP__SEAM_FREE };
#define NP__SEAM_ALLOC_FNS(enomem)                                            \
  {"malloc", NP__SEAM_ANY | NP__SEAM_NOMEM, enomem},                          \
      {"calloc", NP__SEAM_ANY | NP__SEAM_NOMEM, enomem},                      \
      {"realloc", NP__SEAM_ANY | NP__SEAM_NOMEM, enomem}, {                   \
    "free", NP__SEAM_NOFAIL, 0                                                \
  }
extern const int np__seam_fn_total;

/* Notes the site of the next wrapped call. */
void np__seam_at(const char *file, int line);
/* Starts a call of function fn (an index in np__seam_fns) with nargs
 * arguments: fills c and returns the error to inject, or 0 to make the
 * real call. */
long np__seam_enter(struct np__seam_call *c, int fn, const uintptr_t *args,
                    int nargs);
/* Ends it with its result and error; faulted says whether the seam
 * failed it. */
void np__seam_leave(struct np__seam_call *c, intptr_t result, long err,
                    int faulted);
/* Counts an allocation (+1) or a free (-1) made by a wrapped call. */
void np__seam_count_alloc(int delta);

void *np__seam_malloc(size_t size);
void *np__seam_calloc(size_t n, size_t size);
void *np__seam_realloc(void *p, size_t size);
void np__seam_free(void *p);

/* The redirect macros, for the seam build only (after the system
 * headers, which the backend's redirect header includes first). */
#if defined(NP_SEAM) && defined(NP_SEAM_REDIRECT)
#define NP__SEAM_CALL(name, ...)                                              \
  (np__seam_at(__FILE__, __LINE__), np__seam_##name(__VA_ARGS__))
#define malloc(...) NP__SEAM_CALL(malloc, __VA_ARGS__)
#define calloc(...) NP__SEAM_CALL(calloc, __VA_ARGS__)
#define realloc(...) NP__SEAM_CALL(realloc, __VA_ARGS__)
#define free(...) NP__SEAM_CALL(free, __VA_ARGS__)
#endif

#endif /* NP_COMMON_SEAM_H */
