/* Timers, blocking and polling against the fake runner with real sleeps (short, bounded) and the
 * event thread running: set_timer_op and the VCPUOP timers raise VIRQ_TIMER, SCHEDOP_block
 * returns at once when an event is pending and otherwise sleeps until one is, SCHEDOP_poll
 * honours its ports and its timeout, CALLBACKOP_register records the entry. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "hv_test.h"

#include <xen/callback.h>
#include <xen/event_channel.h>
#include <xen/sched.h>
#include <xen/vcpu.h>

static struct evtchn_world g_w;

struct tt {
	struct hv_fixture h;
	struct domain *d;
	struct vcpu *v;
	uint32_t timer_port;
};

static void tt_init(struct tt *t, uint32_t domid)
{
	struct evtchn_bind_virq bv = {.virq = VIRQ_TIMER, .vcpu = 0};

	CU_ASSERT_FATAL(hv_fixture_init(&t->h, 1) == 0);
	t->d = t->h.d;
	t->v = t->h.v;
	t->d->domid = domid;
	t->h.f->block_real = true;
	CU_ASSERT_FATAL(evtchn_domain_init(&g_w, t->d, EVTCHN_GUEST_MAX_PORT) == 0);
	memcpy(hv_buf(&t->h, 0), &bv, sizeof(bv));
	CU_ASSERT_FATAL(fake_hypercall(t->v, __HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq, HV_BUF_GVA, 0, 0,
				       0) == 0);
	memcpy(&bv, hv_buf(&t->h, 0), sizeof(bv));
	t->timer_port = bv.port;
}

static bool tt_pending(struct tt *t, uint32_t port)
{
	return (t->d->shared_info->evtchn_pending[port / 64] >> (port % 64)) & 1;
}

static void tt_clear(struct tt *t)
{
	memset(t->d->shared_info->evtchn_pending, 0, sizeof(t->d->shared_info->evtchn_pending));
	t->v->info->evtchn_upcall_pending = 0;
	t->v->info->evtchn_pending_sel = 0;
}

static uint64_t now_ms(void)
{
	return domain_mono_ns() / 1000000u;
}

/* Waits (up to 2 s) for the timer port to become pending. */
static bool tt_wait_pending(struct tt *t, uint32_t port)
{
	uint64_t end = now_ms() + 2000;

	while (!tt_pending(t, port) && now_ms() < end) {
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	return tt_pending(t, port);
}

static void test_set_timer_op(void)
{
	struct tt t;
	uint64_t t0, fired;

	tt_init(&t, 20);
	tt_clear(&t);
	t0 = now_ms();
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_set_timer_op, domain_now_ns(t.d) + 20000000ull, 0, 0, 0,
				       0),
			0);
	CU_ASSERT_FALSE(tt_pending(&t, t.timer_port));
	CU_ASSERT(tt_wait_pending(&t, t.timer_port));
	fired = now_ms() - t0;
	CU_ASSERT(fired >= 19 && fired < 500);
	CU_ASSERT_EQUAL(t.v->info->evtchn_upcall_pending, 1);
	CU_ASSERT(t.h.f->upcalls >= 1);
	/* cancel: nothing fires */
	tt_clear(&t);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_set_timer_op, domain_now_ns(t.d) + 20000000ull, 0, 0, 0,
				       0),
			0);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_set_timer_op, 0, 0, 0, 0, 0), 0);
	usleep(50000);
	CU_ASSERT_FALSE(tt_pending(&t, t.timer_port));
	/* a deadline in the past fires at once */
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_set_timer_op, 1, 0, 0, 0, 0), 0);
	CU_ASSERT(tt_wait_pending(&t, t.timer_port));
	fake_domain_destroy(t.h.f);
}

static void test_vcpu_timers(void)
{
	struct vcpu_set_singleshot_timer ss;
	struct vcpu_set_periodic_timer pt;
	struct tt t;
	uint64_t fired;

	tt_init(&t, 21);
	tt_clear(&t);
	/* singleshot with the "future" flag refuses the past */
	ss = (struct vcpu_set_singleshot_timer){.timeout_abs_ns = 1, .flags = VCPU_SSHOTTMR_future};
	memcpy(hv_buf(&t.h, 0x100), &ss, sizeof(ss));
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_vcpu_op, VCPUOP_set_singleshot_timer, 0, HV_BUF_GVA + 0x100,
				       0, 0),
			-ETIME);
	ss = (struct vcpu_set_singleshot_timer){.timeout_abs_ns = domain_now_ns(t.d) + 5000000ull};
	memcpy(hv_buf(&t.h, 0x100), &ss, sizeof(ss));
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_vcpu_op, VCPUOP_set_singleshot_timer, 0, HV_BUF_GVA + 0x100,
				       0, 0),
			0);
	CU_ASSERT(tt_wait_pending(&t, t.timer_port));
	/* periodic: under 1 ms refused; 5 ms fires repeatedly until stopped */
	pt.period_ns = 100000;
	memcpy(hv_buf(&t.h, 0x100), &pt, sizeof(pt));
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_vcpu_op, VCPUOP_set_periodic_timer, 0, HV_BUF_GVA + 0x100, 0,
				       0),
			-EINVAL);
	pt.period_ns = 5000000;
	memcpy(hv_buf(&t.h, 0x100), &pt, sizeof(pt));
	fired = atomic_load(&t.v->timer[EVTCHN_TIMER_PERIODIC].fired);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_vcpu_op, VCPUOP_set_periodic_timer, 0, HV_BUF_GVA + 0x100, 0,
				       0),
			0);
	usleep(60000);
	CU_ASSERT(atomic_load(&t.v->timer[EVTCHN_TIMER_PERIODIC].fired) >= fired + 5);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_vcpu_op, VCPUOP_stop_periodic_timer, 0, 0, 0, 0), 0);
	usleep(10000);
	fired = atomic_load(&t.v->timer[EVTCHN_TIMER_PERIODIC].fired);
	usleep(30000);
	CU_ASSERT_EQUAL(atomic_load(&t.v->timer[EVTCHN_TIMER_PERIODIC].fired), fired);
	/* only the calling vCPU's timers */
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_vcpu_op, VCPUOP_stop_singleshot_timer, 3, 0, 0, 0), -ENOENT);
	fake_domain_destroy(t.h.f);
}

static void test_block(void)
{
	struct tt t;
	uint64_t t0, took;

	tt_init(&t, 22);
	tt_clear(&t);
	/* pending already: returns at once, and unmasks delivery */
	t.v->info->evtchn_upcall_mask = 1;
	t.v->info->evtchn_upcall_pending = 1;
	t0 = now_ms();
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_sched_op, SCHEDOP_block, 0, 0, 0, 0), 0);
	CU_ASSERT(now_ms() - t0 < 50);
	CU_ASSERT_EQUAL(t.v->info->evtchn_upcall_mask, 0);
	/* nothing pending: sleeps until the timer's VIRQ */
	tt_clear(&t);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_set_timer_op, domain_now_ns(t.d) + 30000000ull, 0, 0, 0,
				       0),
			0);
	t0 = now_ms();
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_sched_op, SCHEDOP_block, 0, 0, 0, 0), 0);
	took = now_ms() - t0;
	CU_ASSERT(took >= 25 && took < 1000);
	CU_ASSERT_EQUAL(t.v->info->evtchn_upcall_pending, 1);
	fake_domain_destroy(t.h.f);
}

struct sender {
	struct domain *d;
	uint32_t port;
	unsigned delay_ms;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	usleep(s->delay_ms * 1000u);
	evtchn_send(s->d, s->port);
	return NULL;
}

static long tt_poll(struct tt *t, const uint32_t *ports, unsigned n, uint64_t timeout)
{
	struct sched_poll p;

	memset(&p, 0, sizeof(p));
	memcpy(hv_buf(&t->h, 0x800), ports, n * sizeof(*ports));
	set_xen_guest_handle(p.ports, (evtchn_port_t *)(uintptr_t)(HV_BUF_GVA + 0x800));
	p.nr_ports = n;
	p.timeout = timeout;
	memcpy(hv_buf(&t->h, 0x400), &p, sizeof(p));
	return fake_hypercall(t->v, __HYPERVISOR_sched_op, SCHEDOP_poll, HV_BUF_GVA + 0x400, 0, 0, 0);
}

static void test_poll(void)
{
	struct evtchn_bind_ipi ip = {.vcpu = 0};
	struct sender snd;
	pthread_t th;
	uint32_t ports[2];
	uint64_t t0, took;
	struct tt t;

	tt_init(&t, 23);
	memcpy(hv_buf(&t.h, 0), &ip, sizeof(ip));
	CU_ASSERT_FATAL(fake_hypercall(t.v, __HYPERVISOR_event_channel_op, EVTCHNOP_bind_ipi, HV_BUF_GVA, 0, 0, 0) ==
			0);
	memcpy(&ip, hv_buf(&t.h, 0), sizeof(ip));
	tt_clear(&t);
	/* bounds */
	ports[0] = 5000;
	CU_ASSERT_EQUAL(tt_poll(&t, ports, 1, 0), -EINVAL);
	CU_ASSERT_EQUAL(tt_poll(&t, ports, EVTCHN_POLL_MAX + 1, 0), -EINVAL);
	/* timeout: returns after it, never later than a generous bound */
	ports[0] = ip.port;
	t0 = now_ms();
	CU_ASSERT_EQUAL(tt_poll(&t, ports, 1, domain_now_ns(t.d) + 20000000ull), 0);
	took = now_ms() - t0;
	CU_ASSERT(took >= 19 && took < 1000);
	/* a timeout already passed returns at once */
	t0 = now_ms();
	CU_ASSERT_EQUAL(tt_poll(&t, ports, 1, 1), 0);
	CU_ASSERT(now_ms() - t0 < 50);
	/* a masked port still ends the poll when it becomes pending */
	t.d->shared_info->evtchn_mask[0] |= 1ul << ip.port;
	snd = (struct sender){t.d, ip.port, 20};
	pthread_create(&th, NULL, sender_main, &snd);
	t0 = now_ms();
	ports[1] = 3;
	CU_ASSERT_EQUAL(tt_poll(&t, ports, 2, domain_now_ns(t.d) + 5000000000ull), 0);
	took = now_ms() - t0;
	pthread_join(th, NULL);
	CU_ASSERT(took < 2000);
	CU_ASSERT(tt_pending(&t, ip.port));
	CU_ASSERT_EQUAL(t.v->info->evtchn_upcall_pending, 0); /* masked: no upcall */
	CU_ASSERT_FALSE(atomic_load(&t.v->polling));
	/* pending on entry: at once */
	t0 = now_ms();
	CU_ASSERT_EQUAL(tt_poll(&t, ports, 1, 0), 0);
	CU_ASSERT(now_ms() - t0 < 50);
	fake_domain_destroy(t.h.f);
}

static void test_callback_register(void)
{
	struct callback_register cb = {.type = CALLBACKTYPE_event, .address = 0xffff800000123000ull};
	struct callback_unregister cu = {.type = CALLBACKTYPE_event};
	struct tt t;

	tt_init(&t, 24);
	memcpy(hv_buf(&t.h, 0), &cb, sizeof(cb));
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_callback_op, CALLBACKOP_register, HV_BUF_GVA, 0, 0, 0), 0);
	CU_ASSERT_EQUAL(t.v->event_callback, cb.address);
	cb.address = 0x0000900000000000ull; /* not canonical */
	memcpy(hv_buf(&t.h, 0), &cb, sizeof(cb));
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_callback_op, CALLBACKOP_register, HV_BUF_GVA, 0, 0, 0),
			-EINVAL);
	cb.type = CALLBACKTYPE_failsafe;
	cb.address = 0x1000;
	memcpy(hv_buf(&t.h, 0), &cb, sizeof(cb));
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_callback_op, CALLBACKOP_register, HV_BUF_GVA, 0, 0, 0),
			-ENOSYS);
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_callback_op, 7, HV_BUF_GVA, 0, 0, 0), -ENOSYS);
	memcpy(hv_buf(&t.h, 0), &cu, sizeof(cu));
	CU_ASSERT_EQUAL(fake_hypercall(t.v, __HYPERVISOR_callback_op, CALLBACKOP_unregister, HV_BUF_GVA, 0, 0, 0), 0);
	CU_ASSERT_EQUAL(t.v->event_callback, 0);
	fake_domain_destroy(t.h.f);
}

static const CU_TestInfo tests[] = {
    {"set_timer_op fires VIRQ_TIMER, cancels, past fires", test_set_timer_op},
    {"VCPUOP singleshot and periodic timers", test_vcpu_timers},
    {"SCHEDOP_block", test_block},
    {"SCHEDOP_poll: bounds, timeout, masked port", test_poll},
    {"CALLBACKOP_register / unregister", test_callback_register},
    CU_TEST_INFO_NULL,
};

int main(void)
{
	int rc;

	if (evtchn_world_init(&g_w, true) != 0)
		return 1;
	rc = hv_test_main("timers and blocking", tests);
	evtchn_world_fini(&g_w);
	return rc;
}
