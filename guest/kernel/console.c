/* Console output of the guest kernel through HYPERVISOR_console_io(CONSOLEIO_write): bytes are
 * gathered into a line and sent with one hypercall per line (each exit costs tens of us). */
#include "hypercall.h"
#include "kernel.h"

void console_init(struct console *c)
{
	c->len = 0;
	c->bytes = 0;
	c->flushes = 0;
	c->last_error = 0;
}

void console_flush(struct console *c)
{
	if (c->len == 0)
		return;
	long rc = HYPERVISOR_console_io(CONSOLEIO_write, c->len, c->line);
	if (rc < 0)
		c->last_error = rc;
	c->bytes += c->len;
	c->flushes++;
	c->len = 0;
}

void console_write(struct console *c, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		c->line[c->len++] = s[i];
		if (s[i] == '\n' || c->len == sizeof(c->line))
			console_flush(c);
	}
}

int kprintf(struct kernel *k, const char *fmt, ...)
{
	char buf[KERNEL_CONSOLE_LINE];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = lib_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	console_write(&k->con, buf, len);
	return (int)len;
}
