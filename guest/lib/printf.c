/* printf-style formatting for the guest kernel, into bounded buffers only: the console and the
 * trap reporter both format into their own storage and never overrun it. */
#include "lib.h"

struct fmt_out {
	char *buf;
	size_t size;
	size_t len; /* what the full output needs, may exceed size */
};

struct fmt_spec {
	bool left;
	bool zero;
	unsigned int width;
	unsigned int lng; /* number of 'l' (z counts as 2) */
};

static const struct {
	long value;
	const char *name;
} lib_errnos[] = {
#define XEN_ERRNO(name, value) {value, #name},
#include <xen/errno.h>
};

const char *lib_errno_name(long err)
{
	long v = err < 0 ? -err : err;

	for (size_t i = 0; i < LIB_ARRAY_SIZE(lib_errnos); i++) {
		if (lib_errnos[i].value == v)
			return lib_errnos[i].name;
	}
	return NULL;
}

static void fmt_putc(struct fmt_out *o, char c)
{
	if (o->size && o->len < o->size - 1)
		o->buf[o->len] = c;
	o->len++;
}

static void fmt_pad(struct fmt_out *o, char c, unsigned int n)
{
	while (n--)
		fmt_putc(o, c);
}

static void fmt_str(struct fmt_out *o, const struct fmt_spec *sp, const char *s, size_t n)
{
	unsigned int pad = sp->width > n ? (unsigned int)(sp->width - n) : 0;

	if (!sp->left)
		fmt_pad(o, ' ', pad);
	for (size_t i = 0; i < n; i++)
		fmt_putc(o, s[i]);
	if (sp->left)
		fmt_pad(o, ' ', pad);
}

static void fmt_num(struct fmt_out *o, const struct fmt_spec *sp, uint64_t v, bool neg, unsigned int base,
		    bool upper, const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	size_t n = 0, plen = prefix ? strlen(prefix) : 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	size_t body = n + plen + (neg ? 1 : 0);
	unsigned int pad = sp->width > body ? (unsigned int)(sp->width - body) : 0;

	if (!sp->left && !sp->zero)
		fmt_pad(o, ' ', pad);
	if (neg)
		fmt_putc(o, '-');
	for (size_t i = 0; i < plen; i++)
		fmt_putc(o, prefix[i]);
	if (!sp->left && sp->zero)
		fmt_pad(o, '0', pad);
	while (n)
		fmt_putc(o, tmp[--n]);
	if (sp->left)
		fmt_pad(o, ' ', pad);
}

static const char *fmt_parse_spec(const char *f, struct fmt_spec *sp)
{
	*sp = (struct fmt_spec){0};
	for (;; f++) {
		if (*f == '-')
			sp->left = true;
		else if (*f == '0')
			sp->zero = true;
		else
			break;
	}
	while (*f >= '0' && *f <= '9') {
		if (sp->width < 1000)
			sp->width = sp->width * 10 + (unsigned int)(*f - '0');
		f++;
	}
	for (;; f++) {
		if (*f == 'l')
			sp->lng++;
		else if (*f == 'z')
			sp->lng = 2;
		else
			break;
	}
	return f;
}

static uint64_t fmt_arg_unsigned(va_list *ap, unsigned int lng)
{
	if (lng >= 2)
		return va_arg(*ap, unsigned long long);
	if (lng == 1)
		return va_arg(*ap, unsigned long);
	return va_arg(*ap, unsigned int);
}

static int64_t fmt_arg_signed(va_list *ap, unsigned int lng)
{
	if (lng >= 2)
		return va_arg(*ap, long long);
	if (lng == 1)
		return va_arg(*ap, long);
	return va_arg(*ap, int);
}

int lib_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct fmt_out o = {.buf = buf, .size = size, .len = 0};
	va_list aq;

	va_copy(aq, ap);
	for (const char *f = fmt; *f; f++) {
		struct fmt_spec sp;

		if (*f != '%') {
			fmt_putc(&o, *f);
			continue;
		}
		f = fmt_parse_spec(f + 1, &sp);
		switch (*f) {
		case 'd':
		case 'i': {
			int64_t v = fmt_arg_signed(&aq, sp.lng);
			fmt_num(&o, &sp, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0, 10, false,
				NULL);
			break;
		}
		case 'u':
			fmt_num(&o, &sp, fmt_arg_unsigned(&aq, sp.lng), false, 10, false, NULL);
			break;
		case 'x':
		case 'X':
			fmt_num(&o, &sp, fmt_arg_unsigned(&aq, sp.lng), false, 16, *f == 'X', NULL);
			break;
		case 'o':
			fmt_num(&o, &sp, fmt_arg_unsigned(&aq, sp.lng), false, 8, false, NULL);
			break;
		case 'p':
			fmt_num(&o, &sp, (uint64_t)(uintptr_t)va_arg(aq, void *), false, 16, false, "0x");
			break;
		case 'c': {
			char c = (char)va_arg(aq, int);
			fmt_str(&o, &sp, &c, 1);
			break;
		}
		case 's': {
			const char *s = va_arg(aq, const char *);
			if (!s)
				s = "(null)";
			fmt_str(&o, &sp, s, strlen(s));
			break;
		}
		case '%':
			fmt_putc(&o, '%');
			break;
		case '\0':
			f--; /* a lone '%' at the end: stop at the NUL */
			break;
		default:
			fmt_putc(&o, '%');
			fmt_putc(&o, *f);
			break;
		}
	}
	va_end(aq);
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len > INT32_MAX ? INT32_MAX : (int)o.len;
}

int lib_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = lib_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
