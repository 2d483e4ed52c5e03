/* Measures `create` -> first console byte with 1..N live idle domains, and host memory per idle
 * domain. Talks the control protocol directly (libdomctl), so process start-up of the CLI is not
 * in the figure; --cli adds samples through the domctl program for comparison.
 * Prints "RESULT <key> <value>" lines for bench/core.sh. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl_client.h"

extern char **environ;

struct bench_opts {
	const char *kernel;
	const char *cli; /* domctl binary, or NULL */
	unsigned counts[8];
	unsigned nr_counts;
	unsigned samples;
	unsigned mem_kib;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {0, (long)us * 1000};
	nanosleep(&ts, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void cfg_fill(struct lamina_ctl_domcfg *cfg, const struct bench_opts *o, const char *name)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->name, sizeof(cfg->name), "%s", name);
	cfg->memory_kib = o->mem_kib;
	cfg->vcpus = 1;
	cfg->on_poweroff = LAMINA_ACT_DESTROY;
	cfg->on_reboot = LAMINA_ACT_DESTROY;
	cfg->on_crash = LAMINA_ACT_PRESERVE;
	snprintf(cfg->kernel, sizeof(cfg->kernel), "%s", o->kernel);
	snprintf(cfg->cmdline, sizeof(cfg->cmdline), "app=idle");
	for (int i = 0; i < 16; i++) /* distinct, valid v4-shaped uuids */
		cfg->uuid[i] = (uint8_t)(rand() & 0xff);
	cfg->uuid[6] = (cfg->uuid[6] & 0x0f) | 0x40;
	cfg->uuid[8] = (cfg->uuid[8] & 0x3f) | 0x80;
}

/* Poll until the domain has printed its first byte; returns its stamp or 0 on timeout. */
static uint64_t first_byte(struct ctl_conn *c, const char *name, unsigned timeout_ms)
{
	struct lamina_ctl_domref ref;
	struct lamina_ctl_dominfo info;
	uint64_t end = mono_ns() + (uint64_t)timeout_ms * 1000000ull;

	if (ctl_domref_parse(&ref, name) < 0)
		return 0;
	while (mono_ns() < end) {
		if (ctl_info(c, &ref, &info) == 0 && info.first_console_ns)
			return info.first_console_ns;
		sleep_us(100);
	}
	return 0;
}

static int destroy_name(struct ctl_conn *c, const char *name)
{
	struct lamina_ctl_domref ref;
	int rc = ctl_domref_parse(&ref, name);
	return rc < 0 ? rc : ctl_destroy(c, &ref);
}

static int create_idle(struct ctl_conn *c, const struct bench_opts *o, const char *name, uint64_t *t0)
{
	struct lamina_ctl_domcfg cfg;
	struct lamina_ctl_dominfo info;

	cfg_fill(&cfg, o, name);
	*t0 = mono_ns();
	return ctl_create(c, &cfg, &info);
}

static int create_cli(const struct bench_opts *o, const char *xml, uint64_t *t0)
{
	char *argv[] = {(char *)o->cli, "create", (char *)xml, NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	*t0 = mono_ns();
	rc = posix_spawn(&pid, o->cli, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -rc;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static long meminfo_kib(const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void report(const char *key, unsigned live, uint64_t *lat, unsigned n)
{
	qsort(lat, n, sizeof(*lat), cmp_u64);
	unsigned p99 = (n * 99 + 99) / 100;
	if (p99 > n)
		p99 = n;
	printf("RESULT %s_median_us_%u %.1f\n", key, live, lat[n / 2] / 1e3);
	printf("RESULT %s_p99_us_%u %.1f\n", key, live, lat[p99 - 1] / 1e3);
	fflush(stdout);
}

static int measure(struct ctl_conn *c, const struct bench_opts *o, unsigned live, uint64_t *lat)
{
	char name[LAMINA_NAME_MAX];

	for (unsigned s = 0; s < o->samples; s++) {
		uint64_t t0, t1;
		snprintf(name, sizeof(name), "lat-%u-%u", live, s);
		int rc = create_idle(c, o, name, &t0);
		if (rc < 0) {
			fprintf(stderr, "create %s: %s\n", name, c->err);
			return rc;
		}
		t1 = first_byte(c, name, 5000);
		if (!t1) {
			fprintf(stderr, "%s printed nothing within 5 s\n", name);
			return -ETIMEDOUT;
		}
		lat[s] = t1 - t0;
		destroy_name(c, name);
	}
	report("create_first_byte", live, lat, o->samples);

	if (o->cli) {
		char xml[LAMINA_PATH_MAX + 64];
		snprintf(xml, sizeof(xml), "%s/bench-cli.xml", ctl_rundir(NULL));
		for (unsigned s = 0; s < o->samples; s++) {
			uint64_t t0, t1;
			FILE *f = fopen(xml, "w");
			if (!f)
				return -errno;
			snprintf(name, sizeof(name), "cli-%u-%u", live, s);
			fprintf(f, "<domain type='xen'><name>%s</name><memory unit='KiB'>%u</memory><vcpu>1</vcpu>"
				   "<os><type>xenpvh</type><kernel>%s</kernel><cmdline>app=idle</cmdline></os></domain>\n",
				name, o->mem_kib, o->kernel);
			fclose(f);
			if (create_cli(o, xml, &t0) < 0 || !(t1 = first_byte(c, name, 5000))) {
				fprintf(stderr, "domctl create %s failed\n", name);
				return -EIO;
			}
			lat[s] = t1 - t0;
			destroy_name(c, name);
		}
		report("cli_create_first_byte", live, lat, o->samples);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.samples = 30, .mem_kib = 4096};
	struct ctl_conn c;
	unsigned live = 0, max_live = 0;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--kernel") && i + 1 < argc)
			o.kernel = argv[++i];
		else if (!strcmp(argv[i], "--cli") && i + 1 < argc)
			o.cli = argv[++i];
		else if (!strcmp(argv[i], "--samples") && i + 1 < argc)
			o.samples = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--mem-kib") && i + 1 < argc)
			o.mem_kib = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--counts") && i + 1 < argc) {
			for (char *s = strtok(argv[++i], ","); s && o.nr_counts < 8; s = strtok(NULL, ","))
				o.counts[o.nr_counts++] = (unsigned)atoi(s);
		} else {
			fprintf(stderr, "usage: %s --kernel FILE [--counts 1,100,1000] [--samples N] [--mem-kib K] "
					"[--cli DOMCTL]\n", argv[0]);
			return 2;
		}
	}
	if (!o.kernel || !o.samples)
		return 2;
	if (!o.nr_counts)
		o.counts[o.nr_counts++] = 1;
	for (unsigned i = 0; i < o.nr_counts; i++)
		if (o.counts[i] > max_live)
			max_live = o.counts[i];
	srand((unsigned)getpid());
	if (ctl_connect(&c, NULL) < 0) {
		fprintf(stderr, "connect: %s\n", c.err);
		return 1;
	}
	c.timeout_ms = 30000;

	uint64_t *lat = calloc(o.samples, sizeof(*lat));
	long used0 = meminfo_kib("MemTotal") - meminfo_kib("MemAvailable"), shm0 = meminfo_kib("Shmem");
	if (!lat)
		goto out;
	for (unsigned i = 0; i < o.nr_counts; i++) {
		unsigned want = o.counts[i] ? o.counts[i] - 1 : 0; /* the measured domain is the last one */
		while (live < want) {
			char name[LAMINA_NAME_MAX];
			uint64_t t0;
			snprintf(name, sizeof(name), "fill-%u", live);
			if (create_idle(&c, &o, name, &t0) < 0) {
				fprintf(stderr, "create %s: %s\n", name, c.err);
				goto out_destroy;
			}
			live++;
			if (live % 50 == 0 || live == want) {
				/* let the batch boot and go idle before measuring */
				snprintf(name, sizeof(name), "fill-%u", live - 1);
				if (!first_byte(&c, name, 20000)) {
					fprintf(stderr, "%s did not boot\n", name);
					goto out_destroy;
				}
			}
		}
		sleep_us(200000);
		if (live && o.counts[i] == max_live) {
			long used = meminfo_kib("MemTotal") - meminfo_kib("MemAvailable") - used0;
			long shm = meminfo_kib("Shmem") - shm0;
			printf("RESULT idle_domains %u\n", live);
			printf("RESULT host_kib_per_domain %.1f\n", (double)used / live);
			printf("RESULT guest_ram_touched_kib_per_domain %.1f\n", (double)shm / live);
			printf("RESULT overhead_kib_per_domain %.1f\n", (double)(used - shm) / live);
		}
		if (measure(&c, &o, o.counts[i], lat) < 0)
			goto out_destroy;
	}
	rc = 0;
out_destroy:
	for (unsigned i = 0; i < live; i++) {
		char name[LAMINA_NAME_MAX];
		snprintf(name, sizeof(name), "fill-%u", i);
		destroy_name(&c, name);
	}
out:
	free(lat);
	ctl_close(&c);
	return rc;
}
