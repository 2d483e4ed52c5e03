/* The unit tests' small helpers (test_util.h says what each promises). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <CUnit/Basic.h>

#include "test_util.h"

int tu_run_suite(const char *name, int (*init)(void), int (*clean)(void), const struct tu_test *tests,
		 size_t n)
{
	CU_pSuite suite;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite(name, init, clean);
	for (size_t i = 0; suite && i < n; i++)
		CU_add_test(suite, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	/* a suite whose init or cleanup failed counts, or a broken fixture would pass silently */
	failed =
	    CU_get_number_of_failures() + CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed || !suite ? 1 : 0;
}

int tu_need_env(const char *var)
{
	if (getenv(var))
		return 0;
	fprintf(stderr, "SKIP: %s is not set (run through make check)\n", var);
	return 77;
}

int tu_mkdtemp(char *dir, size_t cap, const char *stem)
{
	int n = snprintf(dir, cap, "/tmp/%s.XXXXXX", stem);

	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return mkdtemp(dir) ? 0 : -errno;
}

int tu_rmtree(const char *dir)
{
	char cmd[512];
	int n = snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);

	if (n < 0 || (size_t)n >= sizeof(cmd) || strchr(dir, '\''))
		return -EINVAL;
	return system(cmd) == 0 ? 0 : -EIO;
}

ssize_t tu_read_file(const char *path, char *buf, size_t cap)
{
	size_t got = 0;
	int fd, err = 0;

	if (cap == 0)
		return -EINVAL;
	buf[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < cap - 1) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = -errno;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return err ? err : (ssize_t)got;
}

int tu_grep(const char *path, const char *needle, int max)
{
	char line[1024];
	int found = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	while ((max <= 0 || found < max) && fgets(line, sizeof(line), f))
		found += strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

int tu_count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/fd");
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

pid_t tu_spawn(const char *path, const char *const argv[], const char *stderr_path)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (stderr_path) {
			int fd = open(stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

			if (fd >= 0 && fd != 2) {
				dup2(fd, 2);
				close(fd);
			}
		}
		execv(path, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int tu_wait_path(const char *path, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (access(path, F_OK) == 0)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

int tu_stop(pid_t pid, int *status)
{
	int st = -1;

	if (pid <= 0)
		return -ESRCH;
	kill(pid, SIGTERM);
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	if (status)
		*status = st;
	return 0;
}
