/* Console output of the guest kernel: bytes are gathered into a line and flushed once per line (or
 * full buffer), to the PV console ring once it is in use (one notify per flush), otherwise with
 * one HYPERVISOR_console_io(CONSOLEIO_write) per line: each exit costs tens of us. */
#include "hypercall.h"
#include "kernel.h"

void console_init(struct console *c)
{
	c->len = 0;
	c->bytes = 0;
	c->flushes = 0;
	c->last_error = 0;
	c->ring = NULL;
}

void console_attach_ring(struct console *c, struct console_ring *ring)
{
	console_flush(c);
	c->ring = ring;
}

static void console_emit(struct console *c, const char *buf, size_t n)
{
	long rc = c->ring ? console_ring_write(c->ring, buf, n) : HYPERVISOR_console_io(CONSOLEIO_write, n, buf);

	if (rc < 0)
		c->last_error = rc;
	c->bytes += n;
	c->flushes++;
}

void console_flush(struct console *c)
{
	if (c->len == 0)
		return;
	console_emit(c, c->line, c->len);
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

void console_write_block(struct console *c, const char *s, size_t n)
{
	console_flush(c);
	if (n)
		console_emit(c, s, n);
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
