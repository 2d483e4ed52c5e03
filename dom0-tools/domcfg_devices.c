/* The <devices> part of a domain XML: the PV console, file- or block-backed disks and bridged
 * network interfaces, each checked against what Lamina's back-ends implement. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <libxml/tree.h>

#include "domcfg.h"

static int domcfg_only_children(struct domcfg_parser *p, xmlNode *n, const char *const *allowed)
{
	for (xmlNode *c = n->children; c; c = c->next) {
		const char *const *ok = allowed;

		if (c->type == XML_TEXT_NODE &&
		    strspn((const char *)c->content, " \t\r\n") == strlen((const char *)c->content))
			continue;
		if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE)
			continue;
		if (c->type != XML_ELEMENT_NODE)
			return domcfg_fail(p, n, "unexpected text");
		while (*ok && (c->ns || strcmp(*ok, (const char *)c->name)))
			ok++;
		if (!*ok)
			return domcfg_fail(p, c, "element <%s> is not supported by Lamina",
					   (const char *)c->name);
	}
	return 0;
}

static int domcfg_child_once(struct domcfg_parser *p, xmlNode *n, const char *name, xmlNode **out)
{
	int count = 0;

	*out = NULL;
	for (xmlNode *c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && !c->ns && !strcmp((const char *)c->name, name)) {
			if (count++)
				return domcfg_fail(p, c, "element <%s> is given more than once", name);
			*out = c;
		}
	return 0;
}

static int domcfg_console(struct domcfg_parser *p, xmlNode *n)
{
	char v[32];
	xmlNode *t;
	int r = domcfg_attrs_only(p, n, (const char *const[]){"type", NULL});

	if (!r)
		r = domcfg_only_children(p, n, (const char *const[]){"target", NULL});
	if (r)
		return r;
	if (p->cfg->has_console)
		return domcfg_fail(p, n, "Lamina gives a domain one console");
	if (domcfg_attr(p, n, "type", v, sizeof(v)) != 0 || strcmp(v, "pty"))
		return domcfg_fail(p, n, "only <console type='pty'> is supported");
	r = domcfg_child_once(p, n, "target", &t);
	if (!r && t) {
		r = domcfg_attrs_only(p, t, (const char *const[]){"type", "port", NULL});
		if (!r && domcfg_attr(p, t, "type", v, sizeof(v)) == 0 && strcmp(v, "xen"))
			return domcfg_fail(p, t, "console target type '%s' is not supported (only 'xen')", v);
		if (!r && domcfg_attr(p, t, "port", v, sizeof(v)) == 0 && strcmp(v, "0"))
			return domcfg_fail(p, t, "console port %s is not supported (only 0)", v);
	}
	if (!r)
		p->cfg->has_console = 1;
	return r;
}

/* xvda .. xvdzz, as Xen's toolstack names PV disks. */
static int domcfg_target_ok(const char *t)
{
	size_t len = strlen(t);

	return len >= 4 && len <= 5 && !strncmp(t, "xvd", 3) &&
	       strspn(t + 3, "abcdefghijklmnopqrstuvwxyz") == len - 3;
}

static int domcfg_disk(struct domcfg_parser *p, xmlNode *n)
{
	struct domcfg_disk *d;
	char type[16], device[16], why[DOMCFG_ERR_MAX], path[LAMINA_PATH_MAX], v[32];
	xmlNode *src, *tgt, *ro, *drv;
	int r;

	if (p->cfg->ndisks >= DOMCFG_MAX_DISKS)
		return domcfg_fail(p, n, "more than %d disks", DOMCFG_MAX_DISKS);
	d = &p->cfg->disks[p->cfg->ndisks];
	memset(d, 0, sizeof(*d));
	r = domcfg_attrs_only(p, n, (const char *const[]){"type", "device", NULL});
	if (!r)
		r = domcfg_only_children(
		    p, n, (const char *const[]){"driver", "source", "target", "readonly", NULL});
	if (r)
		return r;
	if (domcfg_attr(p, n, "type", type, sizeof(type)) != 0 ||
	    (strcmp(type, "file") && strcmp(type, "block")))
		return domcfg_fail(p, n, "only <disk type='file'> and <disk type='block'> are supported");
	d->is_block = !strcmp(type, "block");
	if (domcfg_attr(p, n, "device", device, sizeof(device)) == 0 && strcmp(device, "disk"))
		return domcfg_fail(p, n, "device '%s' is not supported (only 'disk')", device);
	if ((r = domcfg_child_once(p, n, "driver", &drv)) || (r = domcfg_child_once(p, n, "source", &src)) ||
	    (r = domcfg_child_once(p, n, "target", &tgt)) || (r = domcfg_child_once(p, n, "readonly", &ro)))
		return r;
	if (drv) {
		r = domcfg_attrs_only(p, drv, (const char *const[]){"name", "type", NULL});
		if (!r && domcfg_attr(p, drv, "type", v, sizeof(v)) == 0 && strcmp(v, "raw"))
			return domcfg_fail(p, drv, "image format '%s' is not supported (only 'raw')", v);
		if (r)
			return r;
	}
	if (!src)
		return domcfg_fail(p, n, "<source %s='...'/> is required", d->is_block ? "dev" : "file");
	r = domcfg_attrs_only(p, src, (const char *const[]){d->is_block ? "dev" : "file", NULL});
	if (!r && domcfg_attr(p, src, d->is_block ? "dev" : "file", path, sizeof(path)) != 0)
		return domcfg_fail(p, src, "attribute '%s' is required", d->is_block ? "dev" : "file");
	if (!r && domcfg_resolve_file(path, p->basedir, d->is_block, d->source, sizeof(d->source), why,
				      sizeof(why)))
		return domcfg_fail(p, src, "%s", why);
	if (r)
		return r;
	if (!tgt)
		return domcfg_fail(p, n, "<target dev='xvdX'/> is required");
	r = domcfg_attrs_only(p, tgt, (const char *const[]){"dev", "bus", NULL});
	if (!r && domcfg_attr(p, tgt, "bus", v, sizeof(v)) == 0 && strcmp(v, "xen"))
		return domcfg_fail(p, tgt, "bus '%s' is not supported (only 'xen')", v);
	if (!r &&
	    (domcfg_attr(p, tgt, "dev", d->target, sizeof(d->target)) != 0 || !domcfg_target_ok(d->target)))
		return domcfg_fail(p, tgt, "dev must name a PV disk, xvda to xvdzz");
	if (r)
		return r;
	if (ro) {
		r = domcfg_attrs_only(p, ro, (const char *const[]){NULL});
		if (!r)
			r = domcfg_only_children(p, ro, (const char *const[]){NULL});
		if (r)
			return r;
		d->readonly = 1;
	}
	p->cfg->ndisks++;
	return 0;
}

static int domcfg_bridge_ok(const char *b)
{
	size_t len = strlen(b);

	return len >= 1 && len < DOMCFG_BRIDGE_MAX &&
	       strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == len &&
	       b[0] != '-' && strcmp(b, ".") && strcmp(b, "..");
}

static int domcfg_interface(struct domcfg_parser *p, xmlNode *n)
{
	struct domcfg_nic *nic;
	char type[16], why[DOMCFG_ERR_MAX], mac[32];
	xmlNode *src, *m;
	int r;

	if (p->cfg->nnics >= DOMCFG_MAX_NICS)
		return domcfg_fail(p, n, "more than %d interfaces", DOMCFG_MAX_NICS);
	nic = &p->cfg->nics[p->cfg->nnics];
	memset(nic, 0, sizeof(*nic));
	r = domcfg_attrs_only(p, n, (const char *const[]){"type", NULL});
	if (!r)
		r = domcfg_only_children(p, n, (const char *const[]){"source", "mac", NULL});
	if (r)
		return r;
	if (domcfg_attr(p, n, "type", type, sizeof(type)) != 0 || strcmp(type, "bridge"))
		return domcfg_fail(p, n, "only <interface type='bridge'> is supported");
	if ((r = domcfg_child_once(p, n, "source", &src)) || (r = domcfg_child_once(p, n, "mac", &m)))
		return r;
	if (!src)
		return domcfg_fail(p, n, "<source bridge='...'/> is required");
	r = domcfg_attrs_only(p, src, (const char *const[]){"bridge", NULL});
	if (!r && (domcfg_attr(p, src, "bridge", nic->bridge, sizeof(nic->bridge)) != 0 ||
		   !domcfg_bridge_ok(nic->bridge)))
		return domcfg_fail(p, src, "bridge must be a network interface name of 1-%d characters",
				   DOMCFG_BRIDGE_MAX - 1);
	if (r)
		return r;
	if (m) {
		r = domcfg_attrs_only(p, m, (const char *const[]){"address", NULL});
		if (!r && domcfg_attr(p, m, "address", mac, sizeof(mac)) != 0)
			return domcfg_fail(p, m, "attribute 'address' is required");
		if (!r && domcfg_parse_mac(mac, nic->mac, why, sizeof(why)))
			return domcfg_fail(p, m, "%s", why);
		if (r)
			return r;
		nic->has_mac = 1;
	}
	p->cfg->nnics++;
	return 0;
}

static const struct {
	const char *name;
	int (*parse)(struct domcfg_parser *p, xmlNode *node);
} domcfg_device_elems[] = {
    {"console", domcfg_console},
    {"disk", domcfg_disk},
    {"interface", domcfg_interface},
};

int domcfg_parse_devices(struct domcfg_parser *p, xmlNode *n)
{
	int r = domcfg_attrs_only(p, n, (const char *const[]){NULL});

	for (xmlNode *c = n->children; !r && c; c = c->next) {
		size_t i;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		for (i = 0; i < sizeof(domcfg_device_elems) / sizeof(domcfg_device_elems[0]); i++)
			if (!c->ns && !strcmp((const char *)c->name, domcfg_device_elems[i].name))
				break;
		if (i == sizeof(domcfg_device_elems) / sizeof(domcfg_device_elems[0]))
			return domcfg_fail(p, c, "device <%s> is not supported by Lamina",
					   (const char *)c->name);
		r = domcfg_device_elems[i].parse(p, c);
	}
	if (!r)
		r = domcfg_only_children(p, n, (const char *const[]){"console", "disk", "interface", NULL});
	return r;
}
