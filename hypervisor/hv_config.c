/* Create-request validation: every field of a lamina_ctl_domcfg from a client is checked here,
 * once, and a normalised copy is what the rest of the daemon uses. */
#include <errno.h>
#include <string.h>

#include "hv.h"

bool hv_name_valid(const char *name, size_t max)
{
	size_t i, n = strnlen(name, max);

	if (n == 0 || n >= max)
		return false; /* empty, or no NUL inside the field */
	for (i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (alnum)
			continue;
		if (i == 0 || (c != '-' && c != '_' && c != '.'))
			return false; /* names become file names: first character alphanumeric */
	}
	return true;
}

/* An optional absolute path, NUL-terminated inside its field. */
static int hv_path_check(const char *p, size_t max, bool required)
{
	size_t n = strnlen(p, max);

	if (n >= max)
		return -EINVAL;
	if (n == 0)
		return required ? -EINVAL : 0;
	if (p[0] != '/')
		return -EINVAL;
	return 0;
}

int hv_domcfg_validate(const struct lamina_ctl_domcfg *in, struct lamina_ctl_domcfg *out, const char **why)
{
	struct lamina_ctl_domcfg c;
	size_t n;

	memcpy(&c, in, sizeof(c)); /* copy once; only the copy is looked at */
	*why = NULL;
	if (!hv_name_valid(c.name, sizeof(c.name))) {
		*why = "name: 1-63 characters of [A-Za-z0-9._-], starting alphanumeric, NUL-terminated";
		return -EINVAL;
	}
	n = strnlen(c.name, sizeof(c.name));
	memset(c.name + n, 0, sizeof(c.name) - n);
	if (c.memory_kib < LAMINA_MIN_MEMORY_KIB) {
		*why = "memory_kib below the minimum (2048)";
		return -EINVAL;
	}
	if (c.memory_kib > HV_MAX_MEMORY_KIB) {
		*why = "memory_kib above the maximum (3 GiB)";
		return -E2BIG;
	}
	c.memory_kib = (c.memory_kib + 3) & ~3ull; /* whole 4 KiB pages */
	if (c.max_memory_kib == 0)
		c.max_memory_kib = c.memory_kib;
	if (c.max_memory_kib > HV_MAX_MEMORY_KIB) {
		*why = "max_memory_kib above the maximum (3 GiB)";
		return -E2BIG;
	}
	c.max_memory_kib = (c.max_memory_kib + 3) & ~3ull;
	if (c.max_memory_kib < c.memory_kib) {
		*why = "max_memory_kib below memory_kib";
		return -EINVAL;
	}
	if (c.vcpus < 1 || c.vcpus > LAMINA_MAX_VCPUS) {
		*why = "vcpus outside 1..64";
		return -EINVAL;
	}
	if (c.on_poweroff > LAMINA_ACT_COREDUMP_RESTART || c.on_reboot > LAMINA_ACT_COREDUMP_RESTART ||
	    c.on_crash > LAMINA_ACT_COREDUMP_RESTART) {
		*why = "on_poweroff/on_reboot/on_crash: unknown action";
		return -EINVAL;
	}
	if (c.flags & ~LAMINA_CFG_START_PAUSED) {
		*why = "flags: unknown bits";
		return -EINVAL;
	}
	if (c.pad0 || c.pad1) {
		*why = "padding fields must be zero";
		return -EINVAL;
	}
	if (hv_path_check(c.kernel, sizeof(c.kernel), true) < 0) {
		*why = "kernel: an absolute path, NUL-terminated, is required";
		return -EINVAL;
	}
	if (hv_path_check(c.ramdisk, sizeof(c.ramdisk), false) < 0) {
		*why = "ramdisk: empty or an absolute path, NUL-terminated";
		return -EINVAL;
	}
	n = strnlen(c.cmdline, sizeof(c.cmdline));
	if (n >= sizeof(c.cmdline)) {
		*why = "cmdline: not NUL-terminated";
		return -EINVAL;
	}
	/* Bytes after each string's NUL are not the client's business: clear them. */
	memset(c.cmdline + n, 0, sizeof(c.cmdline) - n);
	n = strnlen(c.kernel, sizeof(c.kernel));
	memset(c.kernel + n, 0, sizeof(c.kernel) - n);
	n = strnlen(c.ramdisk, sizeof(c.ramdisk));
	memset(c.ramdisk + n, 0, sizeof(c.ramdisk) - n);
	memcpy(out, &c, sizeof(c));
	return 0;
}
