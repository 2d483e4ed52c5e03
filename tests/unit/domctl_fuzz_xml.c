/* Fuzz target for the domain XML parser (untrusted input). Built with -DLAMINA_LIBFUZZER and
 * -fsanitize=fuzzer it is a libFuzzer target; built plainly (make check) it runs a seeded,
 * bounded mutation campaign over valid documents: every input must give 0 or -EINVAL/-EFBIG
 * with a message, never a crash, and accepted inputs must render and re-parse. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domcfg.h"

/* 1 if accepted, 0 if refused properly, -1 on a failure. */
static int fuzz_one(const uint8_t *data, size_t size)
{
	static struct domcfg cfg, again;
	char err[DOMCFG_ERR_MAX], *xml;
	size_t len;
	int r;

	err[0] = '\0';
	/* Relative paths resolve against /: "bin/sh" style kernels exist on any machine. */
	r = domcfg_parse_memory((const char *)data, size, "fuzz.xml", "/", &cfg, err, sizeof(err));
	if (r && (r != -EINVAL && r != -EFBIG && r != -ENOMEM))
		return fprintf(stderr, "unexpected error %d\n", r), -1;
	if (r && !err[0])
		return fprintf(stderr, "refused without a message\n"), -1;
	if (r)
		return 0;
	if (domcfg_render_xml(&cfg, 1, &xml, &len))
		return fprintf(stderr, "accepted but cannot render\n"), -1;
	r = domcfg_parse_memory(xml, len, "again.xml", "/", &again, err, sizeof(err));
	free(xml);
	if (r)
		return fprintf(stderr, "rendered output refused: %s\n", err), -1;
	return 1;
}

#ifdef LAMINA_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fuzz_one(data, size) < 0)
		abort();
	return 0;
}
#else
static const char *const fuzz_seeds[] = {
    "<domain type='xen'><name>a</name><memory unit='MiB'>4</memory><currentMemory>3000</currentMemory>"
    "<vcpu placement='static'>2</vcpu><os><type arch='x86_64' machine='xenpvh'>xenpvh</type>"
    "<kernel>/bin/sh</kernel><initrd>bin/sh</initrd><cmdline>app=hello x=&amp;</cmdline></os>"
    "<on_poweroff>preserve</on_poweroff><on_crash>coredump-restart</on_crash><devices>"
    "<console type='pty'><target type='xen' port='0'/></console><disk type='file' device='disk'>"
    "<source file='/bin/sh'/><target dev='xvda' bus='xen'/><readonly/></disk><interface type='bridge'>"
    "<mac address='00:16:3e:00:00:01'/><source bridge='br0'/></interface></devices></domain>",
    "<domain type='xen'><name>b</name><uuid>0123456789abcdef0123456789ABCDEF</uuid>"
    "<title>t</title><description>d</description><metadata><x xmlns='urn:x'/></metadata>"
    "<memory unit='KB'>9000</memory><os><type>xenpvh</type><kernel>/bin/sh</kernel></os></domain>",
};

static const char *const fuzz_tokens[] = {
    "<",	">",	       "/",
    "'",	"\"",	       "&amp;",
    "&#0;",	"&x;",	       "<![CDATA[x]]>",
    "<!--c-->", " unit='GiB'", "99999999999999999999",
    "-1",	"0",	       "64",
    "65",	"xvdzz",       "<devices>",
    "</os>",	"\xff\xfe",    "\x00",
};

int main(int argc, char **argv)
{
	unsigned seed = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 20261125u;
	long iters = argc > 2 ? strtol(argv[2], NULL, 0) : 100000, accepted = 0;
	char buf[4096];

	for (long i = 0; i < iters; i++) {
		const char *s = fuzz_seeds[(unsigned)i % (sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]))];
		size_t len = strlen(s);
		int edits = 1 + rand_r(&seed) % 4;

		memcpy(buf, s, len);
		while (edits--) {
			size_t at = len ? (size_t)rand_r(&seed) % len : 0;

			switch (rand_r(&seed) % 4) {
			case 0: /* flip a byte */
				if (len)
					buf[at] ^= (char)(1u << (rand_r(&seed) % 8));
				break;
			case 1: /* truncate */
				len = at;
				break;
			case 2: { /* insert a token */
				const char *t = fuzz_tokens[rand_r(&seed) %
							    (sizeof(fuzz_tokens) / sizeof(fuzz_tokens[0]))];
				size_t tl = strlen(t) ? strlen(t) : 1;

				if (len + tl < sizeof(buf)) {
					memmove(buf + at + tl, buf + at, len - at);
					memcpy(buf + at, t, tl);
					len += tl;
				}
				break;
			}
			default: /* delete a run */
				if (len) {
					size_t n = (size_t)rand_r(&seed) % 16;

					if (n > len - at)
						n = len - at;
					memmove(buf + at, buf + at + n, len - at - n);
					len -= n;
				}
				break;
			}
		}
		switch (fuzz_one((const uint8_t *)buf, len)) {
		case 1:
			accepted++;
			break;
		case 0:
			break;
		default:
			fprintf(stderr, "FAIL at iteration %ld (seed %u): %.*s\n", i, seed, (int)len, buf);
			return 1;
		}
	}
	printf("domcfg fuzz: %ld inputs, %ld accepted, the rest refused with a message\n", iters, accepted);
	if (accepted == 0 || accepted == iters)
		return fprintf(stderr, "FAIL: the campaign did not exercise both outcomes\n"), 1;
	return 0;
}
#endif
