/* Renders a validated configuration as normalized libvirt domain XML (sizes in KiB, defaults
 * spelled out, generated uuid included) with libxml2, so text is always escaped correctly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "domcfg.h"

static xmlNode *domcfg_add(xmlNode *parent, const char *name, const char *text)
{
	return xmlNewTextChild(parent, NULL, (const xmlChar *)name, (const xmlChar *)text);
}

static void domcfg_prop(xmlNode *n, const char *name, const char *value)
{
	if (n)
		xmlNewProp(n, (const xmlChar *)name, (const xmlChar *)value);
}

static void domcfg_add_size(xmlNode *parent, const char *name, uint64_t kib)
{
	char num[32];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)kib);
	domcfg_prop(domcfg_add(parent, name, num), "unit", "KiB");
}

static void domcfg_render_os(xmlNode *root, const struct domcfg *cfg)
{
	xmlNode *os = domcfg_add(root, "os", NULL);
	xmlNode *type = domcfg_add(os, "type", "xenpvh");

	domcfg_prop(type, "arch", "x86_64");
	domcfg_prop(type, "machine", "xenpvh");
	domcfg_add(os, "kernel", cfg->kernel);
	if (cfg->initrd[0])
		domcfg_add(os, "initrd", cfg->initrd);
	if (cfg->cmdline[0])
		domcfg_add(os, "cmdline", cfg->cmdline);
}

static void domcfg_render_devices(xmlNode *root, const struct domcfg *cfg)
{
	xmlNode *devs, *n, *c;
	char mac[18];

	if (!cfg->ndisks && !cfg->nnics && !cfg->has_console)
		return;
	devs = domcfg_add(root, "devices", NULL);
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		const struct domcfg_disk *d = &cfg->disks[i];

		n = domcfg_add(devs, "disk", NULL);
		domcfg_prop(n, "type", d->is_block ? "block" : "file");
		domcfg_prop(n, "device", "disk");
		c = domcfg_add(n, "driver", NULL);
		domcfg_prop(c, "name", "lamina");
		domcfg_prop(c, "type", "raw");
		c = domcfg_add(n, "source", NULL);
		domcfg_prop(c, d->is_block ? "dev" : "file", d->source);
		c = domcfg_add(n, "target", NULL);
		domcfg_prop(c, "dev", d->target);
		domcfg_prop(c, "bus", "xen");
		if (d->readonly)
			domcfg_add(n, "readonly", NULL);
	}
	for (unsigned i = 0; i < cfg->nnics; i++) {
		const struct domcfg_nic *nic = &cfg->nics[i];

		n = domcfg_add(devs, "interface", NULL);
		domcfg_prop(n, "type", "bridge");
		if (nic->has_mac) {
			domcfg_format_mac(nic->mac, mac);
			domcfg_prop(domcfg_add(n, "mac", NULL), "address", mac);
		}
		domcfg_prop(domcfg_add(n, "source", NULL), "bridge", nic->bridge);
	}
	if (cfg->has_console) {
		n = domcfg_add(devs, "console", NULL);
		domcfg_prop(n, "type", "pty");
		c = domcfg_add(n, "target", NULL);
		domcfg_prop(c, "type", "xen");
		domcfg_prop(c, "port", "0");
	}
}

static int domcfg_build(xmlNode *root, const struct domcfg *cfg, long domid)
{
	char num[32], uuid[37];

	domcfg_prop(root, "type", "xen");
	if (domid >= 0) {
		snprintf(num, sizeof(num), "%ld", domid);
		domcfg_prop(root, "id", num);
	}
	domcfg_add(root, "name", cfg->name);
	domcfg_format_uuid(cfg->uuid, uuid);
	domcfg_add(root, "uuid", uuid);
	if (cfg->title[0])
		domcfg_add(root, "title", cfg->title);
	if (cfg->description[0])
		domcfg_add(root, "description", cfg->description);
	domcfg_add_size(root, "memory", cfg->max_memory_kib);
	domcfg_add_size(root, "currentMemory", cfg->memory_kib);
	snprintf(num, sizeof(num), "%u", cfg->vcpus);
	domcfg_prop(domcfg_add(root, "vcpu", num), "placement", "static");
	domcfg_render_os(root, cfg);
	domcfg_add(root, "on_poweroff", domcfg_action_name(cfg->on_poweroff));
	domcfg_add(root, "on_reboot", domcfg_action_name(cfg->on_reboot));
	domcfg_add(root, "on_crash", domcfg_action_name(cfg->on_crash));
	domcfg_render_devices(root, cfg);
	return 0;
}

int domcfg_render_xml(const struct domcfg *cfg, long domid, char **out, size_t *len)
{
	xmlBuffer *buf = NULL;
	xmlSaveCtxt *save;
	xmlDoc *doc;
	xmlNode *root;
	int r = -ENOMEM;

	doc = xmlNewDoc((const xmlChar *)"1.0");
	if (!doc)
		return -ENOMEM;
	root = xmlNewNode(NULL, (const xmlChar *)"domain");
	if (!root)
		goto out_doc;
	xmlDocSetRootElement(doc, root);
	r = domcfg_build(root, cfg, domid);
	if (r)
		goto out_doc;
	r = -ENOMEM;
	buf = xmlBufferCreate();
	if (!buf)
		goto out_doc;
	save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
	if (!save)
		goto out_buf;
	if (xmlSaveDoc(save, doc) < 0) {
		xmlSaveClose(save);
		r = -EIO;
		goto out_buf;
	}
	xmlSaveClose(save);
	*len = (size_t)xmlBufferLength(buf);
	*out = malloc(*len + 1);
	if (!*out)
		goto out_buf;
	memcpy(*out, xmlBufferContent(buf), *len);
	(*out)[*len] = '\0';
	r = 0;
out_buf:
	xmlBufferFree(buf);
out_doc:
	xmlFreeDoc(doc);
	return r;
}
