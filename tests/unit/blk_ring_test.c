/* The shared-ring library (include/lamina/ring.h) with both ends in one process: requests and
 * responses across the index wrap, event suppression on both sides, the final-check race, the
 * run-away producer check, copy-once of a slot and the sizes of multi-page rings. */
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>

#include <lamina/ring.h>

struct ring_pair {
	struct blkif_sring *s;
	struct blkif_front_ring f;
	struct blkif_back_ring b;
};

static void ring_pair_init(struct ring_pair *p, unsigned order)
{
	size_t sz = LAMINA_RING_PAGE_SIZE << order;

	p->s = aligned_alloc(LAMINA_RING_PAGE_SIZE, sz);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->s);
	memset(p->s, 0, sz);
	SHARED_RING_INIT(p->s);
	FRONT_RING_ATTACH(&p->f, p->s, 0, sz);
	BACK_RING_ATTACH(&p->b, p->s, 0, sz);
}

static void front_queue(struct ring_pair *p, uint64_t id)
{
	struct blkif_request *r = RING_GET_REQUEST(&p->f, p->f.req_prod_pvt);

	memset(r, 0, sizeof(*r));
	r->operation = BLKIF_OP_READ;
	r->id = id;
	p->f.req_prod_pvt++;
}

static void test_sizes(void)
{
	CU_ASSERT_EQUAL(lamina_blk_ring_slots(0), 32);
	CU_ASSERT_EQUAL(lamina_blk_ring_slots(1), 64);
	CU_ASSERT_EQUAL(lamina_blk_ring_slots(LAMINA_RING_MAX_ORDER), 512);
	for (unsigned o = 0; o <= LAMINA_RING_MAX_ORDER; o++) {
		struct ring_pair p;

		ring_pair_init(&p, o);
		CU_ASSERT_EQUAL(RING_SIZE(&p.f), lamina_blk_ring_slots(o));
		CU_ASSERT_EQUAL(RING_SIZE(&p.b), lamina_blk_ring_slots(o));
		free(p.s);
	}
}

/* Ten thousand requests through a 32-slot ring: the indexes wrap the ring hundreds of times, every
 * id arrives in order and every response comes back. */
static void test_round_trip_wrap(void)
{
	struct ring_pair p;
	uint64_t next_req = 0, next_rsp = 0, seen = 0;
	struct blkif_request copy;
	RING_IDX prod;
	int n;

	ring_pair_init(&p, 0);
	while (next_rsp < 10000) {
		while (!RING_FULL(&p.f) && next_req < 10000)
			front_queue(&p, next_req++);
		lamina_ring_front_push(&p.f);
		n = lamina_ring_back_avail(&p.s->req_prod, p.b.req_cons, p.b.rsp_prod_pvt, RING_SIZE(&p.b), &prod);
		CU_ASSERT_FATAL(n >= 0);
		while (p.b.req_cons != prod) {
			lamina_blk_copy_request(&p.b, p.b.req_cons++, &copy);
			CU_ASSERT_EQUAL(copy.id, seen);
			seen++;
			lamina_blk_put_response(&p.b, copy.id, copy.operation, BLKIF_RSP_OKAY);
		}
		lamina_ring_back_push(&p.b);
		n = lamina_ring_front_avail(&p.f, &prod);
		CU_ASSERT_FATAL(n >= 0);
		while (p.f.rsp_cons != prod) {
			CU_ASSERT_EQUAL(RING_GET_RESPONSE(&p.f, p.f.rsp_cons)->id, next_rsp);
			next_rsp++;
			p.f.rsp_cons++;
		}
	}
	CU_ASSERT_EQUAL(seen, 10000);
	CU_ASSERT(p.s->req_prod > 300 * RING_SIZE(&p.f));
	free(p.s);
}

/* The back-end asks to be told once (req_event = cons + 1); a front-end pushing a batch notifies
 * once, then not again until the back-end re-arms after draining. */
static void test_event_suppression(void)
{
	struct ring_pair p;
	int notify, pushes = 0, notifies = 0;

	ring_pair_init(&p, 0);
	for (int i = 0; i < 8; i++) {
		front_queue(&p, (uint64_t)i);
		notify = lamina_ring_front_push(&p.f);
		pushes++;
		notifies += notify;
	}
	CU_ASSERT_EQUAL(pushes, 8);
	CU_ASSERT_EQUAL(notifies, 1); /* req_event was 1: only the first push crossed it */
	p.b.req_cons = p.s->req_prod;
	CU_ASSERT_EQUAL(lamina_ring_back_final_check(&p.b), 0); /* drained: re-armed, nothing new */
	CU_ASSERT_EQUAL(p.s->req_event, p.b.req_cons + 1);
	front_queue(&p, 99);
	CU_ASSERT_EQUAL(lamina_ring_front_push(&p.f), 1);

	/* Responses: the front-end armed rsp_event = 1 at init; 8 responses in one push notify once. */
	for (int i = 0; i < 9; i++)
		lamina_blk_put_response(&p.b, (uint64_t)i, BLKIF_OP_READ, 0);
	CU_ASSERT_EQUAL(lamina_ring_back_push(&p.b), 1);
	lamina_blk_put_response(&p.b, 9, BLKIF_OP_READ, 0);
	CU_ASSERT_EQUAL(lamina_ring_back_push(&p.b), 0); /* front-end has not re-armed: suppressed */
	p.f.rsp_cons = p.s->rsp_prod;
	CU_ASSERT_EQUAL(lamina_ring_front_final_check(&p.f), 0);
	lamina_blk_put_response(&p.b, 10, BLKIF_OP_READ, 0);
	CU_ASSERT_EQUAL(lamina_ring_back_push(&p.b), 1);
	free(p.s);
}

/* A request pushed between the back-end's last look and its re-arming is found by the final check. */
static void test_final_check_race(void)
{
	struct ring_pair p;

	ring_pair_init(&p, 0);
	front_queue(&p, 1);
	lamina_ring_front_push(&p.f);
	p.b.req_cons = 1;
	front_queue(&p, 2); /* the race: pushed while req_event still points at 1 */
	lamina_ring_front_push(&p.f);
	CU_ASSERT_EQUAL(lamina_ring_back_final_check(&p.b), 1);
	free(p.s);
}

/* Hostile producers: any req_prod further than the ring size ahead of what is answered is refused,
 * whatever the wrap; a legal one just below the wrap point is accepted. */
static void test_runaway_producer(void)
{
	struct ring_pair p;
	RING_IDX prod;

	ring_pair_init(&p, 0);
	p.s->req_prod = 33;
	CU_ASSERT_EQUAL(lamina_ring_back_avail(&p.s->req_prod, 0, 0, 32, &prod), -1);
	CU_ASSERT_EQUAL(prod, 33);
	p.s->req_prod = 32;
	CU_ASSERT_EQUAL(lamina_ring_back_avail(&p.s->req_prod, 0, 0, 32, &prod), 32);
	/* 16 consumed, none answered yet: 32 + 1 outstanding is too many even though prod - cons = 17 */
	p.s->req_prod = 33;
	CU_ASSERT_EQUAL(lamina_ring_back_avail(&p.s->req_prod, 16, 0, 32, &prod), -1);
	/* producer moved backwards */
	p.s->req_prod = 5;
	CU_ASSERT_EQUAL(lamina_ring_back_avail(&p.s->req_prod, 16, 16, 32, &prod), -1);
	p.s->req_prod = 0xffffffffu;
	CU_ASSERT_EQUAL(lamina_ring_back_avail(&p.s->req_prod, 0, 0, 32, &prod), -1);
	/* across the 2^32 wrap */
	p.s->req_prod = 10;
	CU_ASSERT_EQUAL(lamina_ring_back_avail(&p.s->req_prod, 0xfffffff0u, 0xfffffff0u, 32, &prod), 26);
	free(p.s);
}

/* The copy is private: rewriting the shared slot afterwards changes nothing the back-end holds,
 * and any index (masked) stays inside the ring. */
static void test_copy_once(void)
{
	struct ring_pair p;
	struct blkif_request copy;

	ring_pair_init(&p, 0);
	front_queue(&p, 7);
	RING_GET_REQUEST(&p.f, 0)->nr_segments = 3;
	lamina_blk_copy_request(&p.b, 0, &copy);
	RING_GET_REQUEST(&p.f, 0)->nr_segments = 200;
	CU_ASSERT_EQUAL(copy.nr_segments, 3);
	CU_ASSERT_EQUAL(copy.id, 7);
	lamina_blk_copy_request(&p.b, 0xffffffe0u, &copy); /* masks to slot 0 */
	CU_ASSERT_EQUAL(copy.nr_segments, 200);
	free(p.s);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("blk_ring", NULL, NULL);
	CU_add_test(s, "slot counts of 1..16-page rings", test_sizes);
	CU_add_test(s, "10000 requests across the wrap", test_round_trip_wrap);
	CU_add_test(s, "event suppression both ways", test_event_suppression);
	CU_add_test(s, "final check catches the race", test_final_check_race);
	CU_add_test(s, "run-away producer refused", test_runaway_producer);
	CU_add_test(s, "request copied once", test_copy_once);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
