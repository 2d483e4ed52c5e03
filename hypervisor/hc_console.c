/* console_io: the guest's emergency console. Writes go to the domain's console through
 * domain_ops->console_write in bounded chunks; there is never anything to read. */
#include "hc_handlers.h"

/* Bytes one CONSOLEIO_write may carry; a longer write is refused whole. */
#define HC_CONSOLE_MAX_WRITE (64u * 1024u)
#define HC_CONSOLE_CHUNK 256u

static long hc_console_write(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	uint32_t count = (uint32_t)arg[1];
	uint64_t gva = arg[2];
	char buf[HC_CONSOLE_CHUNK];

	if (count == 0)
		return 0;
	if (count > HC_CONSOLE_MAX_WRITE)
		return -EINVAL;
	while (count) {
		uint32_t n = count < HC_CONSOLE_CHUNK ? count : HC_CONSOLE_CHUNK;
		int rc = hc_copy_in(v, buf, gva, n);

		if (rc)
			return rc;
		rc = v->d->ops->console_write(v->d, buf, n);
		if (rc < 0)
			return rc;
		gva += n;
		count -= n;
	}
	return 0;
}

static long hc_console_read(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	return 0; /* number of bytes read: Lamina has no input for this console */
}

static const struct hc_subop hc_console_ops[] = {
    [CONSOLEIO_write] = {CONSOLEIO_write, "write", hc_console_write},
    [CONSOLEIO_read] = {CONSOLEIO_read, "read", hc_console_read},
};

/* console_io(unsigned int cmd, unsigned int count, char *buffer) */
long hc_console_io(struct vcpu *v, const uint64_t arg[HYPERCALL_NR_ARGS])
{
	const struct hc_subop *op = hc_subop_find(
	    hc_console_ops, sizeof(hc_console_ops) / sizeof(hc_console_ops[0]), (uint32_t)arg[0]);

	return op ? op->fn(v, arg) : -ENOSYS;
}
