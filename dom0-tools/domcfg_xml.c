/* Domain XML parsing with libxml2: the document is read once with network and entity loading
 * off, every element Lamina implements is dispatched from one table, anything else is refused. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "domcfg.h"

int domcfg_fail(struct domcfg_parser *p, xmlNode *node, const char *fmt, ...)
{
	char msg[DOMCFG_ERR_MAX];
	xmlChar *path = node ? xmlGetNodePath(node) : NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s: %s: %s", p->label, path ? (const char *)path : "/", msg);
	xmlFree(path);
	return -EINVAL;
}

int domcfg_attrs_only(struct domcfg_parser *p, xmlNode *node, const char *const *allowed)
{
	for (xmlAttr *a = node->properties; a; a = a->next) {
		const char *const *ok = allowed;

		while (*ok && (a->ns || strcmp(*ok, (const char *)a->name)))
			ok++;
		if (!*ok)
			return domcfg_fail(p, node, "attribute '%s' is not supported by Lamina",
					   (const char *)a->name);
	}
	return 0;
}

int domcfg_text(struct domcfg_parser *p, xmlNode *node, char *buf, size_t size)
{
	size_t used = 0;

	for (xmlNode *c = node->children; c; c = c->next) {
		size_t len;

		if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE)
			continue;
		if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
			return domcfg_fail(p, node, "expected text, found element <%s>",
					   (const char *)c->name);
		len = c->content ? strlen((const char *)c->content) : 0;
		if (used + len >= size)
			return domcfg_fail(p, node, "longer than %zu bytes", size - 1);
		memcpy(buf + used, c->content, len);
		used += len;
	}
	buf[used] = '\0';
	return 0;
}

int domcfg_attr(struct domcfg_parser *p, xmlNode *node, const char *name, char *buf, size_t size)
{
	xmlChar *v = xmlGetNoNsProp(node, (const xmlChar *)name);
	size_t len;

	if (!v)
		return -ENOENT;
	len = strlen((const char *)v);
	if (len >= size) {
		xmlFree(v);
		return domcfg_fail(p, node, "attribute '%s' is longer than %zu bytes", name, size - 1);
	}
	memcpy(buf, v, len + 1);
	xmlFree(v);
	return 0;
}

static int domcfg_value_fail(struct domcfg_parser *p, xmlNode *node, int r, const char *why)
{
	return r ? domcfg_fail(p, node, "%s", why) : 0;
}

static int domcfg_name(struct domcfg_parser *p, xmlNode *n)
{
	char why[DOMCFG_ERR_MAX];
	int r = domcfg_attrs_only(p, n, (const char *const[]){NULL});

	if (!r)
		r = domcfg_text(p, n, p->cfg->name, sizeof(p->cfg->name));
	if (!r)
		r = domcfg_value_fail(p, n, domcfg_check_name(p->cfg->name, why, sizeof(why)), why);
	return r;
}

static int domcfg_uuid(struct domcfg_parser *p, xmlNode *n)
{
	char text[128], why[DOMCFG_ERR_MAX];
	int r = domcfg_attrs_only(p, n, (const char *const[]){NULL});

	if (!r)
		r = domcfg_text(p, n, text, sizeof(text));
	if (!r)
		r = domcfg_value_fail(p, n, domcfg_parse_uuid(text, p->cfg->uuid, why, sizeof(why)), why);
	if (!r)
		p->cfg->uuid_generated = 0;
	return r;
}

static int domcfg_title(struct domcfg_parser *p, xmlNode *n)
{
	int r = domcfg_attrs_only(p, n, (const char *const[]){NULL});

	if (!r)
		r = domcfg_text(p, n, p->cfg->title, sizeof(p->cfg->title));
	if (!r && strchr(p->cfg->title, '\n'))
		r = domcfg_fail(p, n, "a title must be a single line");
	return r;
}

static int domcfg_description(struct domcfg_parser *p, xmlNode *n)
{
	int r = domcfg_attrs_only(p, n, (const char *const[]){NULL});

	return r ? r : domcfg_text(p, n, p->cfg->description, sizeof(p->cfg->description));
}

static int domcfg_metadata(struct domcfg_parser *p, xmlNode *n)
{
	return 0; /* applications' own data: Lamina keeps out of it */
}

static int domcfg_size(struct domcfg_parser *p, xmlNode *n, uint64_t *kib)
{
	char text[64], unit[16], why[DOMCFG_ERR_MAX];
	int r = domcfg_attrs_only(p, n, (const char *const[]){"unit", NULL});

	if (!r)
		r = domcfg_text(p, n, text, sizeof(text));
	if (r)
		return r;
	r = domcfg_attr(p, n, "unit", unit, sizeof(unit));
	if (r && r != -ENOENT)
		return r;
	r = domcfg_parse_size(text, r == -ENOENT ? NULL : unit, kib, why, sizeof(why));
	return domcfg_value_fail(p, n, r, why);
}

static int domcfg_memory(struct domcfg_parser *p, xmlNode *n)
{
	return domcfg_size(p, n, &p->cfg->max_memory_kib);
}

static int domcfg_current_memory(struct domcfg_parser *p, xmlNode *n)
{
	return domcfg_size(p, n, &p->cfg->memory_kib);
}

static int domcfg_vcpu(struct domcfg_parser *p, xmlNode *n)
{
	char text[64], placement[16], why[DOMCFG_ERR_MAX];
	uint64_t v;
	int r = domcfg_attrs_only(p, n, (const char *const[]){"placement", NULL});

	if (!r && domcfg_attr(p, n, "placement", placement, sizeof(placement)) == 0 &&
	    strcmp(placement, "static"))
		return domcfg_fail(p, n, "placement '%s' is not supported by Lamina (only 'static')",
				   placement);
	if (!r)
		r = domcfg_text(p, n, text, sizeof(text));
	if (!r)
		r = domcfg_value_fail(p, n, domcfg_parse_uint(text, UINT32_MAX, &v, why, sizeof(why)), why);
	if (r)
		return r;
	if (v < 1 || v > LAMINA_MAX_VCPUS)
		return domcfg_fail(p, n, "%llu is not in 1..%u", (unsigned long long)v, LAMINA_MAX_VCPUS);
	p->cfg->vcpus = (uint32_t)v;
	return 0;
}

static int domcfg_action(struct domcfg_parser *p, xmlNode *n, int crash, uint8_t *action)
{
	char text[64], why[DOMCFG_ERR_MAX];
	int r = domcfg_attrs_only(p, n, (const char *const[]){NULL});

	if (!r)
		r = domcfg_text(p, n, text, sizeof(text));
	if (!r)
		r = domcfg_value_fail(p, n, domcfg_parse_action(text, crash, action, why, sizeof(why)), why);
	return r;
}

static int domcfg_on_poweroff(struct domcfg_parser *p, xmlNode *n)
{
	return domcfg_action(p, n, 0, &p->cfg->on_poweroff);
}

static int domcfg_on_reboot(struct domcfg_parser *p, xmlNode *n)
{
	return domcfg_action(p, n, 0, &p->cfg->on_reboot);
}

static int domcfg_on_crash(struct domcfg_parser *p, xmlNode *n)
{
	return domcfg_action(p, n, 1, &p->cfg->on_crash);
}

static int domcfg_os_type(struct domcfg_parser *p, xmlNode *n)
{
	char text[32], v[32];
	int r = domcfg_attrs_only(p, n, (const char *const[]){"arch", "machine", NULL});

	if (!r && domcfg_attr(p, n, "arch", v, sizeof(v)) == 0 && strcmp(v, "x86_64"))
		return domcfg_fail(p, n, "arch '%s' is not supported by Lamina (only x86_64)", v);
	if (!r && domcfg_attr(p, n, "machine", v, sizeof(v)) == 0 && strcmp(v, "xenpvh"))
		return domcfg_fail(p, n, "machine '%s' is not supported by Lamina (only xenpvh)", v);
	if (!r)
		r = domcfg_text(p, n, text, sizeof(text));
	if (!r && strcmp(text, "xenpvh"))
		r = domcfg_fail(p, n, "\"%s\": Lamina runs PVH guests only (<type>xenpvh</type>)", text);
	return r;
}

static int domcfg_os_file(struct domcfg_parser *p, xmlNode *n, char *out, size_t size)
{
	char text[LAMINA_PATH_MAX], why[DOMCFG_ERR_MAX];
	int r = domcfg_attrs_only(p, n, (const char *const[]){NULL});

	if (!r)
		r = domcfg_text(p, n, text, sizeof(text));
	if (!r)
		r = domcfg_value_fail(
		    p, n, domcfg_resolve_file(text, p->basedir, 0, out, size, why, sizeof(why)), why);
	return r;
}

static int domcfg_os_kernel(struct domcfg_parser *p, xmlNode *n)
{
	return domcfg_os_file(p, n, p->cfg->kernel, sizeof(p->cfg->kernel));
}

static int domcfg_os_initrd(struct domcfg_parser *p, xmlNode *n)
{
	return domcfg_os_file(p, n, p->cfg->initrd, sizeof(p->cfg->initrd));
}

static int domcfg_os_cmdline(struct domcfg_parser *p, xmlNode *n)
{
	int r = domcfg_attrs_only(p, n, (const char *const[]){NULL});

	if (!r)
		r = domcfg_text(p, n, p->cfg->cmdline, sizeof(p->cfg->cmdline));
	for (const char *c = p->cfg->cmdline; !r && *c; c++)
		if ((unsigned char)*c < 0x20 && *c != '\t')
			r = domcfg_fail(p, n, "control character 0x%02x in the command line",
					(unsigned char)*c);
	return r;
}

struct domcfg_elem {
	const char *name;
	int (*parse)(struct domcfg_parser *p, xmlNode *node);
};

static int domcfg_children(struct domcfg_parser *p, xmlNode *parent, const struct domcfg_elem *table,
			   size_t n, unsigned *seen)
{
	for (xmlNode *c = parent->children; c; c = c->next) {
		size_t i;
		int r;

		if (c->type == XML_TEXT_NODE) {
			if (strspn((const char *)c->content, " \t\r\n") != strlen((const char *)c->content))
				return domcfg_fail(p, parent, "unexpected text");
			continue;
		}
		if (c->type != XML_ELEMENT_NODE)
			continue;
		for (i = 0; i < n; i++)
			if (!c->ns && !strcmp((const char *)c->name, table[i].name))
				break;
		if (i == n)
			return domcfg_fail(p, c, "element <%s> is not supported by Lamina",
					   (const char *)c->name);
		if (*seen & (1u << i))
			return domcfg_fail(p, c, "element <%s> is given more than once", table[i].name);
		*seen |= 1u << i;
		r = table[i].parse(p, c);
		if (r)
			return r;
	}
	return 0;
}

static const struct domcfg_elem domcfg_os_elems[] = {
    {"type", domcfg_os_type},
    {"kernel", domcfg_os_kernel},
    {"initrd", domcfg_os_initrd},
    {"cmdline", domcfg_os_cmdline},
};
enum { DOMCFG_OS_TYPE = 1u << 0, DOMCFG_OS_KERNEL = 1u << 1 };

static int domcfg_os(struct domcfg_parser *p, xmlNode *n)
{
	unsigned seen = 0;
	int r = domcfg_attrs_only(p, n, (const char *const[]){NULL});

	if (!r)
		r = domcfg_children(p, n, domcfg_os_elems,
				    sizeof(domcfg_os_elems) / sizeof(domcfg_os_elems[0]), &seen);
	if (r)
		return r;
	if (!(seen & DOMCFG_OS_TYPE))
		return domcfg_fail(p, n, "<type>xenpvh</type> is required");
	if (!(seen & DOMCFG_OS_KERNEL))
		return domcfg_fail(p, n, "<kernel> is required (Lamina boots a PVH kernel directly)");
	return 0;
}

static const struct domcfg_elem domcfg_domain_elems[] = {
    {"name", domcfg_name},
    {"uuid", domcfg_uuid},
    {"title", domcfg_title},
    {"description", domcfg_description},
    {"metadata", domcfg_metadata},
    {"memory", domcfg_memory},
    {"currentMemory", domcfg_current_memory},
    {"vcpu", domcfg_vcpu},
    {"os", domcfg_os},
    {"on_poweroff", domcfg_on_poweroff},
    {"on_reboot", domcfg_on_reboot},
    {"on_crash", domcfg_on_crash},
    {"devices", domcfg_parse_devices},
};
enum {
	DOMCFG_SEEN_NAME = 1u << 0,
	DOMCFG_SEEN_UUID = 1u << 1,
	DOMCFG_SEEN_MEMORY = 1u << 5,
	DOMCFG_SEEN_CURRENT = 1u << 6,
	DOMCFG_SEEN_OS = 1u << 8,
};

static int domcfg_domain(struct domcfg_parser *p, xmlNode *root)
{
	struct domcfg *cfg = p->cfg;
	unsigned seen = 0;
	char type[32];
	int r;

	if (root->ns || strcmp((const char *)root->name, "domain"))
		return domcfg_fail(p, root, "the root element is <%s>, not <domain>",
				   (const char *)root->name);
	r = domcfg_attrs_only(p, root, (const char *const[]){"type", "id", NULL});
	if (r)
		return r;
	r = domcfg_attr(p, root, "type", type, sizeof(type));
	if (r == -ENOENT)
		return domcfg_fail(p, root, "attribute type='xen' is required");
	if (r)
		return r;
	if (strcmp(type, "xen"))
		return domcfg_fail(p, root, "type '%s' is not supported: Lamina domains are type='xen'",
				   type);
	r = domcfg_children(p, root, domcfg_domain_elems,
			    sizeof(domcfg_domain_elems) / sizeof(domcfg_domain_elems[0]), &seen);
	if (r)
		return r;
	if (!(seen & DOMCFG_SEEN_NAME))
		return domcfg_fail(p, root, "<name> is required");
	if (!(seen & DOMCFG_SEEN_MEMORY))
		return domcfg_fail(p, root, "<memory> is required");
	if (!(seen & DOMCFG_SEEN_OS))
		return domcfg_fail(p, root, "<os> is required");
	if (!(seen & DOMCFG_SEEN_CURRENT))
		cfg->memory_kib = cfg->max_memory_kib;
	if (!(seen & DOMCFG_SEEN_UUID)) {
		uuid_generate_random(cfg->uuid);
		cfg->uuid_generated = 1;
	}
	{
		char why[DOMCFG_ERR_MAX];

		if (domcfg_check(cfg, why, sizeof(why)))
			return snprintf(p->err, p->errlen, "%s: %s", p->label, why), -EINVAL;
	}
	return 0;
}

static void domcfg_defaults(struct domcfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vcpus = 1;
	cfg->on_poweroff = LAMINA_ACT_DESTROY;
	cfg->on_reboot = LAMINA_ACT_RESTART;
	cfg->on_crash = LAMINA_ACT_DESTROY;
}

int domcfg_parse_memory(const char *xml, size_t len, const char *label, const char *basedir,
			struct domcfg *cfg, char *err, size_t errlen)
{
	struct domcfg_parser p = {
	    .label = label, .basedir = basedir, .cfg = cfg, .err = err, .errlen = errlen};
	xmlParserCtxt *ctxt;
	xmlDoc *doc;
	xmlNode *root;
	int r;

	domcfg_defaults(cfg);
	if (len > DOMCFG_MAX_FILE || len > INT_MAX)
		return snprintf(err, errlen, "%s: larger than %d bytes", label, DOMCFG_MAX_FILE), -EFBIG;
	ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return snprintf(err, errlen, "%s: out of memory", label), -ENOMEM;
	doc =
	    xmlCtxtReadMemory(ctxt, xml, (int)len, label, NULL,
			      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	if (!doc) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		char msg[256];
		size_t n;

		snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "unreadable");
		n = strlen(msg);
		while (n && msg[n - 1] == '\n')
			msg[--n] = '\0';
		snprintf(err, errlen, "%s:%d: not well-formed XML: %s", label, e ? e->line : 0, msg);
		r = -EINVAL;
		goto out_ctxt;
	}
	root = xmlDocGetRootElement(doc);
	if (!root) {
		snprintf(err, errlen, "%s: empty document", label);
		r = -EINVAL;
		goto out_doc;
	}
	r = domcfg_domain(&p, root);
out_doc:
	xmlFreeDoc(doc);
out_ctxt:
	xmlFreeParserCtxt(ctxt);
	return r;
}

/* The directory of path, absolute, so a kernel path still means the same file to lamina-hv. */
static int domcfg_basedir(const char *path, char *out, size_t size)
{
	char copy[PATH_MAX], cwd[PATH_MAX];
	const char *dir;
	int n;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return -ENAMETOOLONG;
	dir = dirname(copy);
	if (dir[0] == '/')
		n = snprintf(out, size, "%s", dir);
	else if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	else if (!strcmp(dir, "."))
		n = snprintf(out, size, "%s", cwd);
	else
		n = snprintf(out, size, "%s/%s", cwd, dir);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int domcfg_parse_file(const char *path, struct domcfg *cfg, char *err, size_t errlen)
{
	char basedir[PATH_MAX];
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return r = -errno, snprintf(err, errlen, "%s: %s", path, strerror(-r)), r;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out_close;
	}
	if (st.st_size > DOMCFG_MAX_FILE) {
		r = -EFBIG;
		snprintf(err, errlen, "%s: larger than %d bytes", path, DOMCFG_MAX_FILE);
		goto out_close;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out_close;
	}
	while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
			goto out_free;
		}
		got += (size_t)n;
	}
	r = domcfg_basedir(path, basedir, sizeof(basedir));
	if (r) {
		snprintf(err, errlen, "%s: cannot resolve its directory: %s", path, strerror(-r));
		goto out_free;
	}
	r = domcfg_parse_memory(buf, got, path, basedir, cfg, err, errlen);
out_free:
	free(buf);
out_close:
	close(fd);
	return r;
}

int domcfg_to_ctl(const struct domcfg *cfg, uint32_t flags, struct lamina_ctl_domcfg *out)
{
	memset(out, 0, sizeof(*out));
	if (strlen(cfg->name) >= sizeof(out->name) || strlen(cfg->kernel) >= sizeof(out->kernel) ||
	    strlen(cfg->initrd) >= sizeof(out->ramdisk) || strlen(cfg->cmdline) >= sizeof(out->cmdline))
		return -ENAMETOOLONG;
	strcpy(out->name, cfg->name);
	memcpy(out->uuid, cfg->uuid, sizeof(out->uuid));
	out->memory_kib = cfg->memory_kib;
	out->max_memory_kib = cfg->max_memory_kib;
	out->vcpus = cfg->vcpus;
	out->on_poweroff = cfg->on_poweroff;
	out->on_reboot = cfg->on_reboot;
	out->on_crash = cfg->on_crash;
	out->flags = flags;
	strcpy(out->kernel, cfg->kernel);
	strcpy(out->ramdisk, cfg->initrd);
	strcpy(out->cmdline, cfg->cmdline);
	return 0;
}
