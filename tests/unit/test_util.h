/* Small helpers the unit tests share: the CUnit suite runner, temporary directories, files read
 * whole or searched by line, descriptor counts, and daemons spawned, awaited and stopped. */
#ifndef LAMINA_TEST_UTIL_H
#define LAMINA_TEST_UTIL_H

#include <stddef.h>
#include <sys/types.h>

struct tu_test {
	const char *name;
	void (*fn)(void);
};

#define TU_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Runs tests[0..n) in order as one verbose CUnit suite; returns main's exit status: 0 when the
 * suite's init and cleanup and every test and assertion passed, 1 otherwise. */
int tu_run_suite(const char *name, int (*init)(void), int (*clean)(void), const struct tu_test *tests,
		 size_t n);

/* 0 when the environment variable is set (make check sets it); otherwise a loud SKIP line on
 * stderr and 77, for main to return. */
int tu_need_env(const char *var);

/* mkdtemp of /tmp/STEM.XXXXXX into dir; 0 or -errno. */
int tu_mkdtemp(char *dir, size_t cap, const char *stem);
/* rm -rf of a directory the test made; 0 or -EIO. */
int tu_rmtree(const char *dir);

/* At most cap - 1 bytes of a file into buf, NUL-terminated ("" when it cannot be read); returns
 * the bytes read or -errno. */
ssize_t tu_read_file(const char *path, char *buf, size_t cap);
/* Lines of a file containing needle, counting no further than max (0: no limit); -errno when the
 * file cannot be opened. */
int tu_grep(const char *path, const char *needle, int max);

/* Open descriptors of a process (0: this one, whose count includes the one used to look). */
int tu_count_fds(pid_t pid);

/* Fork and exec path with argv (NULL-terminated), stderr appended to stderr_path when given;
 * returns the child's pid or -errno. */
pid_t tu_spawn(const char *path, const char *const argv[], const char *stderr_path);
/* Polls every 10 ms until path exists: 0, or -ETIMEDOUT after ms. */
int tu_wait_path(const char *path, int ms);
/* SIGTERM, then waits for the child; *status (may be NULL) gets its wait status. 0 or -errno. */
int tu_stop(pid_t pid, int *status);

#endif
