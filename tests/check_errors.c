/*
 * The error table, both OS error maps (each on its own backend) and the
 * version calls.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#endif

#include "helpers.h"
#include "internal.h"

struct expected_code {
  int code;
  int value;
  const char *name;
  const char *message;
};

/* Written out by hand, not from NP_ERRNO_MAP: the values are an ABI. */
static const struct expected_code codes[] = {
    {NP_EOF, -1, "NP_EOF", "end of stream"},
    {NP_EAGAIN, -2, "NP_EAGAIN", "resource temporarily unavailable"},
    {NP_EINVAL, -3, "NP_EINVAL", "invalid argument"},
    {NP_ENOMEM, -4, "NP_ENOMEM", "not enough memory"},
    {NP_EIO, -5, "NP_EIO", "input/output error"},
    {NP_ENOENT, -6, "NP_ENOENT", "no such pipe or address"},
    {NP_EBUSY, -7, "NP_EBUSY", "all pipe instances are busy"},
    {NP_EPIPE, -8, "NP_EPIPE", "broken pipe"},
    {NP_EADDRINUSE, -9, "NP_EADDRINUSE", "address already in use"},
    {NP_EACCES, -10, "NP_EACCES", "permission denied"},
    {NP_ETIMEDOUT, -11, "NP_ETIMEDOUT", "operation timed out"},
    {NP_ENAMETOOLONG, -12, "NP_ENAMETOOLONG", "name too long"},
    {NP_EMSGSIZE, -13, "NP_EMSGSIZE", "message too long for the buffer"},
    {NP_ECONNREFUSED, -14, "NP_ECONNREFUSED", "connection refused"},
    {NP_ECONNRESET, -15, "NP_ECONNRESET", "connection reset by peer"},
    {NP_ECONNABORTED, -16, "NP_ECONNABORTED", "connection aborted"},
    {NP_ENOTCONN, -17, "NP_ENOTCONN", "not connected"},
    {NP_ECANCELED, -18, "NP_ECANCELED", "operation canceled"},
    {NP_EMFILE, -19, "NP_EMFILE", "too many open files"},
    {NP_ENOTSUP, -20, "NP_ENOTSUP", "operation not supported"},
    {NP_EADDRNOTAVAIL, -21, "NP_EADDRNOTAVAIL", "address not available"},
    {NP_ENETUNREACH, -22, "NP_ENETUNREACH", "network is unreachable"},
    {NP_EHOSTUNREACH, -23, "NP_EHOSTUNREACH", "host is unreachable"},
    {NP_EEXIST, -24, "NP_EEXIST", "already exists"},
    {NP_ENOTDIR, -25, "NP_ENOTDIR", "not a directory"},
    {NP_ENOSPC, -26, "NP_ENOSPC", "no space left on device"},
    {NP_ESHUTDOWN, -27, "NP_ESHUTDOWN", "cannot write after shutdown"},
    {NP_EBADF, -28, "NP_EBADF", "bad handle or descriptor"},
    {NP_ENOBUFS, -29, "NP_ENOBUFS", "no buffer space available"},
    {NP_EPERM, -30, "NP_EPERM", "operation not permitted"},
};

START_TEST(test_errors_fixed_values_names_messages) {
  size_t i;

  for (i = 0; i < NP__ARRAY_SIZE(codes); i++) {
    ck_assert_int_eq(codes[i].code, codes[i].value);
    ck_assert_str_eq(np_errname(codes[i].code), codes[i].name);
    ck_assert_str_eq(np_strerror(codes[i].code), codes[i].message);
  }
}
END_TEST

START_TEST(test_errors_table_has_no_other_codes) {
  int v, known = 0;

  /* Every value from the lowest code to 0 is either in the table above
   * or unknown, so a code added without a test shows up here. */
  for (v = NP_ERRNO_LAST_; v <= 0; v++)
    if (strcmp(np_errname(v), "NP_UNKNOWN") != 0)
      known++;
  ck_assert_int_eq(known, (int)NP__ARRAY_SIZE(codes));
}
END_TEST

START_TEST(test_errors_unknown_code) {
  ck_assert_str_eq(np_errname(0), "NP_UNKNOWN");
  ck_assert_str_eq(np_strerror(0), "unknown error");
  ck_assert_str_eq(np_errname(-9999), "NP_UNKNOWN");
  ck_assert_str_eq(np_strerror(12345), "unknown error");
}
END_TEST

/* The backend's map, written out independently of the library's. */
static const struct np__error_row expected_map[] = {
#ifdef _WIN32
    {ERROR_FILE_NOT_FOUND, NP_ENOENT},
    {ERROR_PATH_NOT_FOUND, NP_ENOENT},
    {ERROR_BAD_NETPATH, NP_ENOENT},
    {ERROR_BAD_PATHNAME, NP_EINVAL},
    {ERROR_INVALID_NAME, NP_EINVAL},
    {ERROR_INVALID_PARAMETER, NP_EINVAL},
    {ERROR_INVALID_HANDLE, NP_EBADF},
    {ERROR_ACCESS_DENIED, NP_EACCES},
    {ERROR_PRIVILEGE_NOT_HELD, NP_EPERM},
    {ERROR_NOT_ENOUGH_MEMORY, NP_ENOMEM},
    {ERROR_OUTOFMEMORY, NP_ENOMEM},
    {ERROR_NO_SYSTEM_RESOURCES, NP_ENOBUFS},
    {ERROR_NONPAGED_SYSTEM_RESOURCES, NP_ENOBUFS},
    {ERROR_PAGED_SYSTEM_RESOURCES, NP_ENOBUFS},
    {ERROR_NOT_ENOUGH_QUOTA, NP_ENOBUFS},
    {ERROR_WORKING_SET_QUOTA, NP_ENOBUFS},
    {ERROR_PAGEFILE_QUOTA, NP_ENOBUFS},
    {ERROR_COMMITMENT_LIMIT, NP_ENOMEM},
    {ERROR_TOO_MANY_OPEN_FILES, NP_EMFILE},
    {ERROR_FILENAME_EXCED_RANGE, NP_ENAMETOOLONG},
    {ERROR_ALREADY_EXISTS, NP_EEXIST},
    {ERROR_FILE_EXISTS, NP_EEXIST},
    {ERROR_DISK_FULL, NP_ENOSPC},
    {ERROR_NOT_SUPPORTED, NP_ENOTSUP},
    {ERROR_PIPE_BUSY, NP_EBUSY},
    {ERROR_BROKEN_PIPE, NP_EOF},
    {ERROR_NO_DATA, NP_EPIPE},
    {ERROR_PIPE_NOT_CONNECTED, NP_EOF},
    {ERROR_MORE_DATA, NP_EMSGSIZE},
    {ERROR_OPERATION_ABORTED, NP_ECANCELED},
    {ERROR_IO_PENDING, NP_EAGAIN},
    {ERROR_IO_INCOMPLETE, NP_EAGAIN},
    {ERROR_SEM_TIMEOUT, NP_ETIMEDOUT},
    {WAIT_TIMEOUT, NP_ETIMEDOUT},
    {ERROR_TIMEOUT, NP_ETIMEDOUT},
    {ERROR_NETNAME_DELETED, NP_ECONNRESET},
    {ERROR_CONNECTION_ABORTED, NP_ECONNABORTED},
    {ERROR_CONNECTION_REFUSED, NP_ECONNREFUSED},
    {ERROR_NETWORK_UNREACHABLE, NP_ENETUNREACH},
    {ERROR_HOST_UNREACHABLE, NP_EHOSTUNREACH},
    {ERROR_INVALID_USER_BUFFER, NP_ENOBUFS},
    {ERROR_NOT_FOUND, NP_ENOENT},
    {WSAEWOULDBLOCK, NP_EAGAIN},
    {WSAEINTR, NP_EAGAIN},
    {WSAEINPROGRESS, NP_EAGAIN},
    {WSAEINVAL, NP_EINVAL},
    {WSAEFAULT, NP_EINVAL},
    {WSAEACCES, NP_EACCES},
    {WSAEADDRINUSE, NP_EADDRINUSE},
    {WSAEADDRNOTAVAIL, NP_EADDRNOTAVAIL},
    {WSAEAFNOSUPPORT, NP_ENOTSUP},
    {WSAEPROTONOSUPPORT, NP_ENOTSUP},
    {WSAEOPNOTSUPP, NP_ENOTSUP},
    {WSAECONNREFUSED, NP_ECONNREFUSED},
    {WSAECONNRESET, NP_ECONNRESET},
    {WSAECONNABORTED, NP_ECONNABORTED},
    {WSAENOTCONN, NP_ENOTCONN},
    {WSAESHUTDOWN, NP_ESHUTDOWN},
    {WSAETIMEDOUT, NP_ETIMEDOUT},
    {WSAENETUNREACH, NP_ENETUNREACH},
    {WSAENETDOWN, NP_ENETUNREACH},
    {WSAEHOSTUNREACH, NP_EHOSTUNREACH},
    {WSAEMFILE, NP_EMFILE},
    {WSAENOBUFS, NP_ENOBUFS},
    {WSAEMSGSIZE, NP_EMSGSIZE},
    {WSAENOTSOCK, NP_EBADF},
    {WSAHOST_NOT_FOUND, NP_ENOENT},
    {WSANO_DATA, NP_ENOENT},
#else
    {EAGAIN, NP_EAGAIN},
#if EWOULDBLOCK != EAGAIN
    {EWOULDBLOCK, NP_EAGAIN},
#endif
    {EINPROGRESS, NP_EAGAIN},
    {EINTR, NP_EAGAIN},
    {EINVAL, NP_EINVAL},
    {EFAULT, NP_EINVAL},
    {ENOMEM, NP_ENOMEM},
    {EIO, NP_EIO},
    {ENOENT, NP_ENOENT},
    {EPIPE, NP_EPIPE},
    {EADDRINUSE, NP_EADDRINUSE},
    {EACCES, NP_EACCES},
    {EPERM, NP_EPERM},
    {EROFS, NP_EACCES},
    {ETIMEDOUT, NP_ETIMEDOUT},
    {ENAMETOOLONG, NP_ENAMETOOLONG},
    {EMSGSIZE, NP_EMSGSIZE},
    {ECONNREFUSED, NP_ECONNREFUSED},
    {ECONNRESET, NP_ECONNRESET},
    {ECONNABORTED, NP_ECONNABORTED},
    {ENOTCONN, NP_ENOTCONN},
    {ECANCELED, NP_ECANCELED},
    {EMFILE, NP_EMFILE},
    {ENFILE, NP_EMFILE},
    {EOPNOTSUPP, NP_ENOTSUP},
#if ENOTSUP != EOPNOTSUPP
    {ENOTSUP, NP_ENOTSUP},
#endif
    {EPROTONOSUPPORT, NP_ENOTSUP},
    {EAFNOSUPPORT, NP_ENOTSUP},
    {EADDRNOTAVAIL, NP_EADDRNOTAVAIL},
    {ENETUNREACH, NP_ENETUNREACH},
    {ENETDOWN, NP_ENETUNREACH},
    {EHOSTUNREACH, NP_EHOSTUNREACH},
    {EEXIST, NP_EEXIST},
    {ENOTDIR, NP_ENOTDIR},
    {ELOOP, NP_ENOTDIR},
    {ENOSPC, NP_ENOSPC},
    {EDQUOT, NP_ENOSPC},
    {ESHUTDOWN, NP_ESHUTDOWN},
    {EBADF, NP_EBADF},
    {ENOTSOCK, NP_EBADF},
    {ENOBUFS, NP_ENOBUFS},
#endif
};

START_TEST(test_errors_os_map_every_row) {
  size_t i;

  ck_assert_uint_eq(np__os_error_map_len, NP__ARRAY_SIZE(expected_map));
  for (i = 0; i < NP__ARRAY_SIZE(expected_map); i++) {
    ck_assert_msg(np__error_from_os(expected_map[i].os) == expected_map[i].np,
                  "OS code %ld maps to %s, expected %s", expected_map[i].os,
                  np_errname(np__error_from_os(expected_map[i].os)),
                  np_errname(expected_map[i].np));
    ck_assert_int_eq(np__os_error_map[i].os, expected_map[i].os);
  }
}
END_TEST

START_TEST(test_errors_os_map_no_duplicate_codes) {
  size_t i, j;

  for (i = 0; i < np__os_error_map_len; i++)
    for (j = i + 1; j < np__os_error_map_len; j++)
      ck_assert_msg(np__os_error_map[i].os != np__os_error_map[j].os,
                    "OS code %ld appears twice", np__os_error_map[i].os);
}
END_TEST

START_TEST(test_errors_os_unknown_is_eio) {
  ck_assert_int_eq(np__error_from_os(987654), NP_EIO);
  ck_assert_int_eq(np__error_from_os(-1), NP_EIO);
}
END_TEST

START_TEST(test_errors_version) {
  ck_assert_uint_eq(np_version(), NPIPE_VERSION_HEX);
  ck_assert_uint_eq(np_version(), 0x000100u);
  ck_assert_str_eq(np_version_string(), NPIPE_VERSION_STRING);
  ck_assert_str_eq(np_version_string(), PACKAGE_VERSION);
}
END_TEST

int main(void) {
  Suite *s = suite_create("errors");
  TCase *tc = npt_tcase(s, "table");

  tcase_add_test(tc, test_errors_fixed_values_names_messages);
  tcase_add_test(tc, test_errors_table_has_no_other_codes);
  tcase_add_test(tc, test_errors_unknown_code);
  tc = npt_tcase(s, "os-map");
  tcase_add_test(tc, test_errors_os_map_every_row);
  tcase_add_test(tc, test_errors_os_map_no_duplicate_codes);
  tcase_add_test(tc, test_errors_os_unknown_is_eio);
  tc = npt_tcase(s, "version");
  tcase_add_test(tc, test_errors_version);
  return npt_run(s);
}
