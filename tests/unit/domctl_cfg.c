/* Unit tests of the domain-config library: units and limits, every refusal path of the XML
 * parser, relative paths, uuid generation, rendering round trips. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <CUnit/Basic.h>

#include "domcfg.h"
#include "test_util.h"

struct cfg_fixture {
	char dir[64];
	char kernel[128];
};

static struct cfg_fixture fx;

static int cfg_suite_init(void)
{
	FILE *f;

	if (tu_mkdtemp(fx.dir, sizeof(fx.dir), "lamina-unit-cfg") < 0)
		return -1;
	snprintf(fx.kernel, sizeof(fx.kernel), "%s/kernel", fx.dir);
	f = fopen(fx.kernel, "w");
	if (!f)
		return -1;
	fputs("kernel\n", f);
	fclose(f);
	return 0;
}

static int cfg_suite_clean(void)
{
	return tu_rmtree(fx.dir) == 0 ? 0 : -1;
}

/* A valid document with one fragment swapped in: MEM for <memory>, EXTRA before </domain>. */
static int cfg_parse(const char *mem, const char *extra, struct domcfg *cfg, char *err, size_t errlen)
{
	char xml[8192];

	snprintf(
	    xml, sizeof(xml),
	    "<domain type='xen'><name>t</name>%s<os><type>xenpvh</type><kernel>%s</kernel></os>%s</domain>",
	    mem ? mem : "<memory unit='MiB'>16</memory>", fx.kernel, extra ? extra : "");
	return domcfg_parse_memory(xml, strlen(xml), "t.xml", fx.dir, cfg, err, errlen);
}

static void test_units(void)
{
	static const struct {
		const char *text, *unit;
		uint64_t kib;
	} ok[] = {
	    {"16", NULL, 16},	   {"1", "b", 1},	{"1024", "bytes", 1},  {"1025", "B", 2},
	    {"1", "KB", 1},	   {"1000", "KB", 977}, {"1", "k", 1},	       {"1", "KiB", 1},
	    {"1", "kib", 1},	   {"1", "MB", 977},	{"1", "M", 1024},      {"1", "MiB", 1024},
	    {"1", "GB", 976563},   {"1", "G", 1048576}, {"1", "GiB", 1048576}, {"2", "T", 2147483648ull},
	    {" 7\n", "MiB", 7168}, {"0", "GiB", 0},
	};
	static const struct {
		const char *text, *unit, *why;
	} bad[] = {
	    {"12x", NULL, "not a number"},    {"", "MiB", "required"},
	    {"-1", NULL, "not a number"},     {"1", "Q", "unknown unit"},
	    {"1", "MiBB", "unknown unit"},    {"1", "KiBi", "unknown unit"},
	    {"1.5", "GiB", "not a number"},   {"99999999999999999999", NULL, "too large"},
	    {"20000000", "EiB", "too large"}, {"0x10", NULL, "not a number"},
	};
	char err[256];
	uint64_t kib;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		kib = 12345;
		CU_ASSERT_EQUAL_FATAL(domcfg_parse_size(ok[i].text, ok[i].unit, &kib, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(kib, ok[i].kib);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(domcfg_parse_size(bad[i].text, bad[i].unit, &kib, err, sizeof(err)), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].why));
	}
}

static void test_limits(void)
{
	struct domcfg cfg;
	char err[DOMCFG_ERR_MAX], mem[128];

	snprintf(mem, sizeof(mem), "<memory>%u</memory>", LAMINA_MIN_MEMORY_KIB);
	CU_ASSERT_EQUAL(cfg_parse(mem, NULL, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.memory_kib, LAMINA_MIN_MEMORY_KIB);
	snprintf(mem, sizeof(mem), "<memory>%u</memory>", LAMINA_MIN_MEMORY_KIB - 1);
	CU_ASSERT_EQUAL(cfg_parse(mem, NULL, &cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "t.xml: /domain/memory: 2047 KiB is less than the minimum"));
	/* the minimum also applies to currentMemory, which may not exceed memory */
	CU_ASSERT_EQUAL(cfg_parse("<memory>4096</memory><currentMemory>2048</currentMemory>", NULL, &cfg, err,
				  sizeof(err)),
			0);
	CU_ASSERT_EQUAL(cfg.memory_kib, 2048);
	CU_ASSERT_EQUAL(cfg.max_memory_kib, 4096);
	CU_ASSERT_EQUAL(cfg_parse("<memory>4096</memory><currentMemory>4097</currentMemory>", NULL, &cfg, err,
				  sizeof(err)),
			-EINVAL);
	CU_ASSERT_EQUAL(cfg_parse("<memory>4096</memory><currentMemory>2047</currentMemory>", NULL, &cfg, err,
				  sizeof(err)),
			-EINVAL);
	/* vcpus 1..LAMINA_MAX_VCPUS */
	CU_ASSERT_EQUAL(cfg_parse(NULL, "<vcpu>1</vcpu>", &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg_parse(NULL, "<vcpu>64</vcpu>", &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.vcpus, LAMINA_MAX_VCPUS);
	CU_ASSERT_EQUAL(cfg_parse(NULL, "<vcpu>0</vcpu>", &cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(cfg_parse(NULL, "<vcpu>65</vcpu>", &cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(cfg_parse(NULL, "<vcpu>4294967296</vcpu>", &cfg, err, sizeof(err)), -EINVAL);
	/* defaults */
	CU_ASSERT_EQUAL(cfg_parse(NULL, NULL, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.vcpus, 1);
	CU_ASSERT_EQUAL(cfg.on_poweroff, LAMINA_ACT_DESTROY);
	CU_ASSERT_EQUAL(cfg.on_reboot, LAMINA_ACT_RESTART);
	CU_ASSERT_EQUAL(cfg.on_crash, LAMINA_ACT_DESTROY);
}

static void test_names(void)
{
	static const char *const good[] = {"a", "web-1", "a.b_c", "1a", "A0"};
	static const char *const bad[] = {"", "-a", ".a", "a b", "a/b", "123", "é", "a\n"};
	char err[256], longname[80];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CU_ASSERT_EQUAL(domcfg_check_name(good[i], err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(domcfg_check_name(bad[i], err, sizeof(err)), -EINVAL);
	memset(longname, 'n', 63);
	longname[63] = '\0';
	CU_ASSERT_EQUAL(domcfg_check_name(longname, err, sizeof(err)), 0);
	longname[63] = 'n';
	longname[64] = '\0';
	CU_ASSERT_EQUAL(domcfg_check_name(longname, err, sizeof(err)), -EINVAL);
}

/* Every refusal names the element (XPath-ish) and the reason; nothing else is accepted. */
static void test_refusals(void)
{
	static const struct {
		const char *mem, *extra, *want;
	} cases[] = {
	    {"<memory>1x</memory>", NULL, "/domain/memory: \"1x\" is not a number"},
	    {"<memory unit='parsec'>1</memory>", NULL, "/domain/memory: unknown unit"},
	    {"<memory foo='1'>16384</memory>", NULL, "/domain/memory: attribute 'foo'"},
	    {"<memory>16384</memory><memory>16384</memory>", NULL,
	     "/domain/memory[2]: element <memory> is given"},
	    {NULL, "<uuid>zz</uuid>", "/domain/uuid: \"zz\" is not a UUID"},
	    {NULL, "<on_poweroff>coredump-destroy</on_poweroff>", "only valid in on_crash"},
	    {NULL, "<on_reboot>reboot</on_reboot>", "/domain/on_reboot: \"reboot\" is not an action"},
	    {NULL, "<on_crash>coredump-destroy</on_crash><on_crash>destroy</on_crash>",
	     "given more than once"},
	    {NULL, "<vcpu placement='auto'>1</vcpu>", "placement 'auto'"},
	    {NULL, "<cpu/>", "/domain/cpu: element <cpu> is not supported"},
	    {NULL, "<devices><video/></devices>", "/domain/devices/video: device <video>"},
	    {NULL,
	     "<devices><disk type='file'><source file='/nonexistent'/><target dev='xvda'/></disk></devices>",
	     "/domain/devices/disk/source: /nonexistent: No such file"},
	    {NULL, "<devices><interface type='bridge'/></devices>", "<source bridge='...'/> is required"},
	    {NULL, "<title>a\nb</title>", "/domain/title: a title must be a single line"},
	    {NULL, "<name>x</name>", "/domain/name[2]"},
	};
	struct domcfg cfg;
	char err[DOMCFG_ERR_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(cfg_parse(cases[i].mem, cases[i].extra, &cfg, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].want))
			fprintf(stderr, "\ncase %zu: got '%s', want '%s'\n", i, err, cases[i].want);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
		CU_ASSERT_EQUAL(strncmp(err, "t.xml: ", 7), 0);
	}
	/* Documents that are not even XML, or far too large. */
	CU_ASSERT_EQUAL(domcfg_parse_memory("<domain", 7, "t.xml", fx.dir, &cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not well-formed XML"));
	CU_ASSERT_EQUAL(domcfg_parse_memory("", 0, "t.xml", fx.dir, &cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(
	    domcfg_parse_memory("x", DOMCFG_MAX_FILE + 1, "t.xml", fx.dir, &cfg, err, sizeof(err)), -EFBIG);
	/* An entity bomb is refused by libxml2's own limits, not expanded. */
	{
		const char *bomb =
		    "<!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
		    "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]><domain type='xen'><name>&c;</name>"
		    "</domain>";

		CU_ASSERT_EQUAL(
		    domcfg_parse_memory(bomb, strlen(bomb), "t.xml", fx.dir, &cfg, err, sizeof(err)),
		    -EINVAL);
	}
}

static void test_relative_paths(void)
{
	char path[256], xml[512], err[DOMCFG_ERR_MAX], cwd[512];
	struct domcfg cfg;
	FILE *f;

	/* The kernel is named relative to the XML file's directory, not the working directory. */
	snprintf(path, sizeof(path), "%s/rel.xml", fx.dir);
	snprintf(xml, sizeof(xml),
		 "<domain type='xen'><name>r</name><memory>4096</memory>"
		 "<os><type>xenpvh</type><kernel>kernel</kernel></os></domain>");
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(xml, f);
	fclose(f);
	CU_ASSERT_EQUAL(domcfg_parse_file(path, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.kernel, fx.kernel);
	/* The same file named relatively from elsewhere still resolves to an absolute path. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
	CU_ASSERT_EQUAL_FATAL(chdir("/tmp"), 0);
	CU_ASSERT_EQUAL(domcfg_parse_file(path + strlen("/tmp/"), &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.kernel, fx.kernel);
	CU_ASSERT_EQUAL(cfg.kernel[0], '/');
	CU_ASSERT_EQUAL(chdir(cwd), 0);
	/* A missing file is named in the error. */
	snprintf(path, sizeof(path), "%s/none.xml", fx.dir);
	CU_ASSERT_EQUAL(domcfg_parse_file(path, &cfg, err, sizeof(err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "none.xml"));
}

static void test_uuid(void)
{
	struct domcfg a, b;
	char err[DOMCFG_ERR_MAX], s[37];
	uint8_t u[16];

	CU_ASSERT_EQUAL_FATAL(cfg_parse(NULL, NULL, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cfg_parse(NULL, NULL, &b, err, sizeof(err)), 0);
	CU_ASSERT(a.uuid_generated && b.uuid_generated);
	CU_ASSERT_NOT_EQUAL(memcmp(a.uuid, b.uuid, 16), 0);
	CU_ASSERT_EQUAL(a.uuid[6] >> 4, 4);	 /* version 4, random */
	CU_ASSERT_EQUAL(a.uuid[8] & 0xc0, 0x80); /* RFC 4122 variant */
	domcfg_format_uuid(a.uuid, s);
	CU_ASSERT_EQUAL(strlen(s), 36);
	CU_ASSERT(s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-');
	CU_ASSERT_EQUAL(domcfg_parse_uuid(s, u, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(memcmp(u, a.uuid, 16), 0);
	/* Both libvirt spellings, any case; the canonical form is lower-case with dashes. */
	CU_ASSERT_EQUAL(
	    cfg_parse(NULL, "<uuid>0123456789ABCDEF0123456789ABCDEF</uuid>", &a, err, sizeof(err)), 0);
	CU_ASSERT_FALSE(a.uuid_generated);
	domcfg_format_uuid(a.uuid, s);
	CU_ASSERT_STRING_EQUAL(s, "01234567-89ab-cdef-0123-456789abcdef");
	CU_ASSERT_EQUAL(domcfg_parse_uuid("01234567-89ab-cdef-0123-456789abcdef", u, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(domcfg_parse_uuid("0123456789ab-cdef-0123-456789abcdef", u, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_EQUAL(domcfg_parse_uuid("01234567-89ab-cdef-0123-456789abcdeg", u, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_EQUAL(domcfg_parse_uuid("0123456789abcdef0123456789abcdef00", u, err, sizeof(err)),
			-EINVAL);
}

static void test_render_roundtrip(void)
{
	char extra[1024], err[DOMCFG_ERR_MAX], *xml;
	struct domcfg a, b;
	size_t len;

	snprintf(extra, sizeof(extra),
		 "<uuid>11111111-2222-3333-4444-555555555555</uuid><title>t &amp; &lt;x&gt;</title>"
		 "<vcpu>3</vcpu><on_crash>coredump-restart</on_crash><devices><disk type='file'><source "
		 "file='%s'/>"
		 "<target dev='xvdc'/><readonly/></disk><interface type='bridge'><mac "
		 "address='00:16:3e:01:02:03'/>"
		 "<source bridge='br0'/></interface><console type='pty'/></devices>",
		 fx.kernel);
	CU_ASSERT_EQUAL_FATAL(cfg_parse(NULL, extra, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(domcfg_render_xml(&a, 7, &xml, &len), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(xml, "<domain type=\"xen\" id=\"7\">"));
	CU_ASSERT_PTR_NOT_NULL(strstr(xml, "<title>t &amp; &lt;x&gt;</title>"));
	CU_ASSERT_EQUAL_FATAL(domcfg_parse_memory(xml, len, "r.xml", fx.dir, &b, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);
	free(xml);
}

static void test_json_state(void)
{
	char extra[512], err[DOMCFG_ERR_MAX], *json;
	struct domcfg a, b;
	uint32_t domid = 0;
	size_t len;

	snprintf(
	    extra, sizeof(extra),
	    "<description>line1\nline2 \"quoted\" \\ back</description><devices><interface type='bridge'>"
	    "<source bridge='br0'/></interface></devices>");
	CU_ASSERT_EQUAL_FATAL(cfg_parse(NULL, extra, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(domcfg_json_gen(&a, 42, &json, &len), 0);
	CU_ASSERT_EQUAL(strlen(json), len);
	CU_ASSERT_EQUAL_FATAL(domcfg_json_parse(json, &b, &domid, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(domid, 42);
	CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);
	free(json);
	/* The state file is input too: every malformed one is refused. */
	{
		static const char *const bad[] = {
		    "",
		    "[]",
		    "{\"domid\":1}",
		    "{\"domid\":-1,\"name\":\"a\"}",
		    "{\"domid\":1,\"name\":\"bad name\",\"uuid\":\"01234567-89ab-cdef-0123-456789abcdef\"}",
		    "{\"domid\":1,\"name\":\"a\",\"uuid\":\"x\"}",
		    "{\"domid\":1,\"name\":\"a\",\"uuid\":\"01234567-89ab-cdef-0123-456789abcdef\","
		    "\"kernel\":\"/k\","
		    "\"memory_kib\":4096,\"max_memory_kib\":4096,\"vcpus\":65,\"on_poweroff\":\"destroy\","
		    "\"on_reboot\":\"restart\",\"on_crash\":\"destroy\"}",
		    "{\"domid\":1,\"name\":\"a\",\"uuid\":\"01234567-89ab-cdef-0123-456789abcdef\","
		    "\"kernel\":\"/k\","
		    "\"memory_kib\":4096,\"max_memory_kib\":4096,\"vcpus\":1,\"on_poweroff\":\"coredump-"
		    "destroy\","
		    "\"on_reboot\":\"restart\",\"on_crash\":\"destroy\"}",
		    "{\"domid\":1,\"name\":\"a\",\"uuid\":\"01234567-89ab-cdef-0123-456789abcdef\","
		    "\"kernel\":\"/k\","
		    "\"memory_kib\":4096,\"max_memory_kib\":4096,\"vcpus\":1,\"on_poweroff\":\"destroy\","
		    "\"on_reboot\":\"restart\",\"on_crash\":\"destroy\",\"interfaces\":[{\"bridge\":\"b\","
		    "\"mac\":\"zz\"}]}",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CU_ASSERT_EQUAL(domcfg_json_parse(bad[i], &b, &domid, err, sizeof(err)), -EINVAL);
	}
}

static void test_state_files(void)
{
	struct domcfg a, b;
	char err[DOMCFG_ERR_MAX], path[256];
	uint32_t domid = 0;
	struct stat st;

	CU_ASSERT_EQUAL_FATAL(cfg_parse(NULL, NULL, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(domcfg_state_write(fx.dir, &a, 9), 0);
	CU_ASSERT_EQUAL(domcfg_state_path(fx.dir, "t", path, sizeof(path)), 0);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	CU_ASSERT_EQUAL(domcfg_state_read(fx.dir, "t", &b, &domid), 0);
	CU_ASSERT_EQUAL(domid, 9);
	CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);
	CU_ASSERT_EQUAL(domcfg_state_remove(fx.dir, "t"), 0);
	CU_ASSERT_EQUAL(domcfg_state_read(fx.dir, "t", &b, &domid), -ENOENT);
	CU_ASSERT_EQUAL(domcfg_state_remove(fx.dir, "t"), 0);
}

static void test_to_ctl(void)
{
	struct lamina_ctl_domcfg req;
	struct domcfg cfg;
	char err[DOMCFG_ERR_MAX];

	CU_ASSERT_EQUAL_FATAL(
	    cfg_parse("<memory unit='MiB'>8</memory><currentMemory unit='MiB'>4</currentMemory>",
		      "<vcpu>2</vcpu><on_crash>preserve</on_crash>", &cfg, err, sizeof(err)),
	    0);
	CU_ASSERT_EQUAL(domcfg_to_ctl(&cfg, LAMINA_CFG_START_PAUSED, &req), 0);
	CU_ASSERT_STRING_EQUAL(req.name, "t");
	CU_ASSERT_EQUAL(req.memory_kib, 4096);
	CU_ASSERT_EQUAL(req.max_memory_kib, 8192);
	CU_ASSERT_EQUAL(req.vcpus, 2);
	CU_ASSERT_EQUAL(req.on_crash, LAMINA_ACT_PRESERVE);
	CU_ASSERT_EQUAL(req.flags, LAMINA_CFG_START_PAUSED);
	CU_ASSERT_STRING_EQUAL(req.kernel, fx.kernel);
	CU_ASSERT_STRING_EQUAL(req.ramdisk, "");
}

int main(void)
{
	static const struct tu_test tests[] = {
	    {"units", test_units},
	    {"limits", test_limits},
	    {"names", test_names},
	    {"refusals", test_refusals},
	    {"relative paths", test_relative_paths},
	    {"uuid generation and format", test_uuid},
	    {"render round trip", test_render_roundtrip},
	    {"json state round trip and refusals", test_json_state},
	    {"state files", test_state_files},
	    {"control request", test_to_ctl},
	};

	return tu_run_suite("domcfg", cfg_suite_init, cfg_suite_clean, tests, TU_COUNT(tests));
}
