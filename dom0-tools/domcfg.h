/* Domain configuration: owns the parsed, validated form of a libvirt-style domain XML file, its
 * rendering back to XML, and the per-domain toolstack state file ($RUNDIR/domains/NAME.json). */
#ifndef LAMINA_DOMCFG_H
#define LAMINA_DOMCFG_H

#include <stddef.h>
#include <stdint.h>
#include <lamina/abi.h>
#include <lamina/control.h>

#define DOMCFG_MAX_FILE (1024 * 1024) /* bytes of XML read at most */
#define DOMCFG_TITLE_MAX 256
#define DOMCFG_DESC_MAX 4096
#define DOMCFG_MAX_DISKS 16
#define DOMCFG_MAX_NICS 8
#define DOMCFG_TARGET_MAX 16 /* "xvda".."xvdzz" and the NUL */
#define DOMCFG_BRIDGE_MAX 16 /* IFNAMSIZ */
#define DOMCFG_ERR_MAX 640

struct domcfg_disk {
	char source[LAMINA_PATH_MAX]; /* absolute path of the image file or block device */
	char target[DOMCFG_TARGET_MAX];
	uint8_t is_block; /* type='block' (source dev=) rather than type='file' */
	uint8_t readonly;
};

struct domcfg_nic {
	char bridge[DOMCFG_BRIDGE_MAX];
	uint8_t mac[6];
	uint8_t has_mac; /* 0: the toolstack generates one at create */
};

struct domcfg {
	char name[LAMINA_NAME_MAX];
	uint8_t uuid[16];
	uint8_t uuid_generated;			  /* no <uuid> in the file: generated with libuuid */
	uint8_t has_console;			  /* <devices><console type='pty'/> */
	uint8_t on_poweroff, on_reboot, on_crash; /* enum lamina_action */
	uint32_t vcpus;
	uint64_t max_memory_kib;      /* <memory> */
	uint64_t memory_kib;	      /* <currentMemory>, else <memory> */
	char kernel[LAMINA_PATH_MAX]; /* absolute */
	char initrd[LAMINA_PATH_MAX]; /* "" for none */
	char cmdline[LAMINA_CMDLINE_MAX];
	char title[DOMCFG_TITLE_MAX];
	char description[DOMCFG_DESC_MAX];
	unsigned ndisks, nnics;
	struct domcfg_disk disks[DOMCFG_MAX_DISKS];
	struct domcfg_nic nics[DOMCFG_MAX_NICS];
};

/* Parse and validate a domain XML file. label names the file in messages (usually path); relative
 * kernel/initrd/disk paths resolve against basedir (the file's directory). On failure returns
 * -errno and writes "LABEL: /xpath: reason" into err. */
int domcfg_parse_file(const char *path, struct domcfg *cfg, char *err, size_t errlen);
int domcfg_parse_memory(const char *xml, size_t len, const char *label, const char *basedir,
			struct domcfg *cfg, char *err, size_t errlen);

/* The request lamina-hv takes; flags are LAMINA_CFG_*. -ENAMETOOLONG if a field does not fit. */
int domcfg_to_ctl(const struct domcfg *cfg, uint32_t flags, struct lamina_ctl_domcfg *out);

/* Normalized libvirt XML; domid < 0 leaves out the id attribute. *out is malloc'd, NUL-terminated. */
int domcfg_render_xml(const struct domcfg *cfg, long domid, char **out, size_t *len);

/* The toolstack's per-domain state file: the config plus the domain id, as JSON (yajl). */
int domcfg_state_path(const char *rundir, const char *name, char *path, size_t size);
int domcfg_state_write(const char *rundir, const struct domcfg *cfg, uint32_t domid);
int domcfg_state_read(const char *rundir, const char *name, struct domcfg *cfg, uint32_t *domid);
int domcfg_state_remove(const char *rundir, const char *name);
/* The same JSON to and from memory (for tests and the state file). *out is malloc'd. */
int domcfg_json_gen(const struct domcfg *cfg, uint32_t domid, char **out, size_t *len);
int domcfg_json_parse(const char *json, struct domcfg *cfg, uint32_t *domid, char *err, size_t errlen);

/* Value rules shared by the XML and JSON readers. Each returns 0 or -EINVAL with why in err. */
int domcfg_check_name(const char *name, char *err, size_t errlen);
/* "1024" with unit "MiB" (NULL: KiB) to KiB, rounded up; refuses garbage and overflow. */
int domcfg_parse_size(const char *text, const char *unit, uint64_t *kib, char *err, size_t errlen);
int domcfg_parse_uint(const char *text, uint64_t max, uint64_t *out, char *err, size_t errlen);
int domcfg_parse_uuid(const char *text, uint8_t uuid[16], char *err, size_t errlen);
void domcfg_format_uuid(const uint8_t uuid[16], char out[37]);
int domcfg_parse_mac(const char *text, uint8_t mac[6], char *err, size_t errlen);
void domcfg_format_mac(const uint8_t mac[6], char out[18]);
/* Action names; on_crash alone takes the coredump-* ones. */
int domcfg_parse_action(const char *text, int crash, uint8_t *action, char *err, size_t errlen);
const char *domcfg_action_name(uint8_t action);
/* Resolve path against basedir into out (absolute), then require a readable regular file
 * (or block device when allow_block). */
int domcfg_resolve_file(const char *path, const char *basedir, int allow_block, char *out, size_t size,
			char *err, size_t errlen);
/* Check the rules that tie fields together (memory >= minimum, vcpus in range, ...). */
int domcfg_check(const struct domcfg *cfg, char *err, size_t errlen);

/* Parser internals shared by domcfg_xml.c and domcfg_devices.c. */
struct _xmlNode;
struct domcfg_parser {
	const char *label;   /* the file, as named in messages */
	const char *basedir; /* relative paths resolve against it */
	struct domcfg *cfg;
	char *err;
	size_t errlen;
};
int domcfg_fail(struct domcfg_parser *p, struct _xmlNode *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Refuse any attribute of node not in allowed (a NULL-terminated list). */
int domcfg_attrs_only(struct domcfg_parser *p, struct _xmlNode *node, const char *const *allowed);
/* Copy node's text (no child elements allowed) into buf; an error if it does not fit. */
int domcfg_text(struct domcfg_parser *p, struct _xmlNode *node, char *buf, size_t size);
/* Copy attribute name of node into buf; -ENOENT if absent (no message), -EINVAL if too long. */
int domcfg_attr(struct domcfg_parser *p, struct _xmlNode *node, const char *name, char *buf, size_t size);
int domcfg_parse_devices(struct domcfg_parser *p, struct _xmlNode *node);

#endif
