/*
 * Address parsing and option validation (white-box, portable).
 */
#include "config.h"

#include <string.h>

#include "helpers.h"
#include "internal.h"

START_TEST(test_address_pipe_forms) {
  struct np__address a;

  ck_assert_int_eq(np__address_parse("pipe:hello", &a), 0);
  ck_assert_int_eq(a.kind, NP__ADDR_PIPE);
  ck_assert_str_eq(a.host, ".");
  ck_assert_str_eq(a.name, "hello");
  ck_assert_int_eq(np__address_parse("\\\\.\\pipe\\hello", &a), 0);
  ck_assert_int_eq(a.kind, NP__ADDR_PIPE);
  ck_assert_str_eq(a.host, ".");
  ck_assert_str_eq(a.name, "hello");
  ck_assert_int_eq(np__address_parse("\\\\server\\PIPE\\x y", &a), 0);
  ck_assert_str_eq(a.host, "server");
  ck_assert_str_eq(a.name, "x y");
}
END_TEST

START_TEST(test_address_pipe_bad_names) {
  struct np__address a;
  char name[300];

  ck_assert_int_eq(np__address_parse("pipe:", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("pipe:a\\b", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("pipe:a/b", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("pipe:a\nb", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("pipe:..", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("\\\\.\\pipe\\", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("\\\\.\\file\\x", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("\\\\\\pipe\\x", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("\\\\.", &a), NP_EINVAL);
  /* 256 characters fit, 257 do not. */
  memcpy(name, "pipe:", 5);
  memset(name + 5, 'n', 256);
  name[5 + 256] = '\0';
  ck_assert_int_eq(np__address_parse(name, &a), 0);
  ck_assert_uint_eq(strlen(a.name), 256);
  name[5 + 256] = 'n';
  name[5 + 257] = '\0';
  ck_assert_int_eq(np__address_parse(name, &a), NP_ENAMETOOLONG);
}
END_TEST

START_TEST(test_address_tcp_forms) {
  struct np__address a;

  ck_assert_int_eq(np__address_parse("tcp:127.0.0.1:80", &a), 0);
  ck_assert_int_eq(a.kind, NP__ADDR_TCP);
  ck_assert_str_eq(a.host, "127.0.0.1");
  ck_assert_uint_eq(a.port, 80);
  ck_assert_int_eq(np__address_parse("tcp:[::1]:0", &a), 0);
  ck_assert_str_eq(a.host, "::1");
  ck_assert_uint_eq(a.port, 0);
  ck_assert_int_eq(np__address_parse("tcp:localhost:65535", &a), 0);
  ck_assert_str_eq(a.host, "localhost");
  ck_assert_uint_eq(a.port, 65535);
  ck_assert_int_eq(np__address_parse("tcp:[fe80::1%eth0]:8", &a), 0);
  ck_assert_str_eq(a.host, "fe80::1%eth0");
  ck_assert_int_eq(np__address_parse("tcp:my-host_1.example:22", &a), 0);
  ck_assert_str_eq(a.host, "my-host_1.example");
}
END_TEST

START_TEST(test_address_tcp_bad) {
  static const char *bad[] = {
      "tcp:",         "tcp:host",    "tcp:host:",   "tcp:host:99999",
      "tcp:[::1",     "tcp:[::1]",   "tcp:[::1]x1", "tcp::80",
      "tcp:::1:80",   "tcp:h:-1",    "tcp:h:8x",    "tcp:[]:80",
      "tcp:h:655350",
      /* Found by fuzz-address: brackets around something not IPv6. */
      "tcp:[\xba]:80", "tcp:[host]:80", "tcp:[1.2.3.4]:80",
      /* Bytes no host name has. */
      "tcp:a b:80", "tcp:h\xff:1", "tcp:h\n:1", "tcp:h%1:80",
  };
  struct np__address a;
  size_t i;

  for (i = 0; i < NP__ARRAY_SIZE(bad); i++)
    ck_assert_msg(np__address_parse(bad[i], &a) == NP_EINVAL,
                  "%s gave %s", bad[i], np_errname(np__address_parse(bad[i],
                                                                     &a)));
}
END_TEST

START_TEST(test_address_unix_and_unknown) {
  struct np__address a;

  ck_assert_int_eq(np__address_parse("unix:/tmp/x.sock", &a), 0);
  ck_assert_int_eq(a.kind, NP__ADDR_UNIX);
  ck_assert_str_eq(a.name, "/tmp/x.sock");
  ck_assert_int_eq(np__address_parse("unix:", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("hello", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("udp:1.2.3.4:5", &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse(NULL, &a), NP_EINVAL);
  ck_assert_int_eq(np__address_parse("pipe:x", NULL), NP_EINVAL);
}
END_TEST

/* unix: is an address kind of the POSIX backend only: Windows says so
 * with NP_ENOTSUP instead of looking for a pipe of that name. */
START_TEST(test_address_unix_kind_per_backend) {
  const char *path = "unix:/npt-no-such-dir/sock";
  np_poll *poll;
  np_listener *l = (np_listener *)&poll;
  np_stream *s = (np_stream *)&poll;
  int iocp = strcmp(npt_backend(), "iocp") == 0;

  ck_assert_int_eq(np_poll_new(&poll), 0);
  ck_assert_int_eq(np_connect(poll, path, NULL, 1, NP_READABLE, &s),
                   iocp ? NP_ENOTSUP : NP_ENOENT);
  ck_assert_ptr_null(s);
  if (iocp) {
    ck_assert_int_eq(np_listen(poll, path, NULL, 2, &l), NP_ENOTSUP);
    ck_assert_ptr_null(l);
  }
  np_poll_free(poll);
}
END_TEST

START_TEST(test_options_defaults_and_bad) {
  struct np__opts o;
  np_options in;

  ck_assert_int_eq(np__options_resolve(NULL, &o), 0);
  ck_assert_uint_eq(o.flags, 0);
  ck_assert_int_eq(o.backlog, NP__DEFAULT_BACKLOG);
  ck_assert_uint_eq(o.write_limit, NP__DEFAULT_WRITE_LIMIT);
  ck_assert_uint_eq(o.mode, 0600);
  ck_assert_ptr_null(o.sddl);
  memset(&in, 0, sizeof(in));
  in.backlog = 9;
  in.write_limit = 100;
  in.flags = NP_OPT_MESSAGE;
  ck_assert_int_eq(np__options_resolve(&in, &o), 0);
  ck_assert_int_eq(o.backlog, 9);
  ck_assert_uint_eq(o.write_limit, 100);
  ck_assert_uint_eq(o.flags, NP_OPT_MESSAGE);
  in.backlog = -1;
  ck_assert_int_eq(np__options_resolve(&in, &o), NP_EINVAL);
  in.backlog = NP__MAX_BACKLOG + 1;
  ck_assert_int_eq(np__options_resolve(&in, &o), NP_EINVAL);
  in.backlog = 0;
  in.flags = 0x80000000u;
  ck_assert_int_eq(np__options_resolve(&in, &o), NP_EINVAL);
  in.flags = 0;
  in.mode = 01777;
  ck_assert_int_eq(np__options_resolve(&in, &o), NP_EINVAL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("address");
  TCase *tc = npt_tcase(s, "parse");

  tcase_add_test(tc, test_address_pipe_forms);
  tcase_add_test(tc, test_address_pipe_bad_names);
  tcase_add_test(tc, test_address_tcp_forms);
  tcase_add_test(tc, test_address_tcp_bad);
  tcase_add_test(tc, test_address_unix_and_unknown);
  tcase_add_test(tc, test_address_unix_kind_per_backend);
  tc = npt_tcase(s, "options");
  tcase_add_test(tc, test_options_defaults_and_bad);
  return npt_run(s);
}
