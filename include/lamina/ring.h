/* Lamina's shared-ring library: Xen's <xen/io/ring.h> request/response rings for both ends, with
 * the barriers they need and the checks a back-end makes before trusting what a front-end wrote. */
#ifndef LAMINA_RING_H
#define LAMINA_RING_H

/* Header-only and freestanding: the guest kernel and Domain-0 daemons both include it. Needs only
 * size_t, memcpy and uint*_t, which every includer already has. */
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/grant_table.h>

/* <xen/io/ring.h> leaves the barriers to its includer for interface versions >= 3.2.8. x86 keeps
 * stores in order and loads in order, so read and write barriers only stop the compiler; the full
 * barrier (store then load, used before checking the other end's event index) must be a fence. */
#ifndef xen_mb
#define xen_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif
#ifndef xen_rmb
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#endif
#ifndef xen_wmb
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

#include <xen/io/ring.h>
#include <xen/io/blkif.h>

/* The ABI of the block ring is Xen's; check the sizes both ends rely on. */
_Static_assert(sizeof(struct blkif_request) == 112, "blkif_request size");
_Static_assert(sizeof(struct blkif_request_indirect) <= sizeof(struct blkif_request), "indirect fits");
_Static_assert(sizeof(struct blkif_request_discard) <= sizeof(struct blkif_request), "discard fits");
_Static_assert(sizeof(struct blkif_response) == 16, "blkif_response size");
_Static_assert(sizeof(struct blkif_request_segment) == 8, "blkif segment size");
_Static_assert(offsetof(struct blkif_sring, ring) == 64, "blkif sring header");
/* Every request layout keeps id at the same place: responses are matched by it. */
_Static_assert(offsetof(struct blkif_request, id) == 8 && offsetof(struct blkif_request_indirect, id) == 8 &&
		       offsetof(struct blkif_request_discard, id) == 8,
	       "blkif request id offset");

#define LAMINA_RING_PAGE_SIZE 4096u
/* Largest ring this library handles: 2^4 pages (Xen back-ends advertise the same bound). */
#define LAMINA_RING_MAX_ORDER 4u

/* Slots of a blkif ring spanning 2^order pages (a power of two, as ring.h rounds down). */
static inline unsigned int lamina_blk_ring_slots(unsigned int order)
{
	return __CONST_RING_SIZE(blkif, LAMINA_RING_PAGE_SIZE << order);
}

/* One load of an index the other end writes, ordered before the reads of the slots it covers. */
static inline RING_IDX lamina_ring_load_idx(const RING_IDX *idx)
{
	return __atomic_load_n(idx, __ATOMIC_ACQUIRE);
}

/* ---- back-end side: the front-end is hostile ----
 *
 * The back-end keeps its own copies of req_cons and rsp_prod_pvt in a back ring (private memory).
 * lamina_ring_back_avail reads the shared req_prod once and returns how many requests may be
 * consumed now (*prod_out the index to consume up to), or -1 if the producer ran away: more requests outstanding than the ring holds
 * (counting the slots whose responses are not yet pushed) — a broken or hostile front-end. */
static inline int lamina_ring_back_avail(const RING_IDX *shared_req_prod, RING_IDX req_cons, RING_IDX rsp_prod_pvt,
					 unsigned int nr_ents, RING_IDX *prod_out)
{
	RING_IDX prod = lamina_ring_load_idx(shared_req_prod);

	*prod_out = prod; /* for the caller's log line even when refused */
	if ((RING_IDX)(prod - rsp_prod_pvt) > nr_ents || (RING_IDX)(prod - req_cons) > nr_ents)
		return -1;
	return (int)(RING_IDX)(prod - req_cons);
}

/* Copy slot idx out of shared memory once; everything after looks only at *dst. The volatile read
 * stops the compiler from re-reading a field from the shared page later. */
static inline void lamina_ring_copy_slot(void *dst, const void *slot, size_t len)
{
	const volatile unsigned char *s = (const volatile unsigned char *)slot;
	unsigned char *d = (unsigned char *)dst;
	size_t i;

	for (i = 0; i < len; i++)
		d[i] = s[i];
	__atomic_signal_fence(__ATOMIC_ACQ_REL);
}

/* Copy the blkif request at ring index idx (masked here, so any index is safe) into *dst. */
static inline void lamina_blk_copy_request(const struct blkif_back_ring *br, RING_IDX idx, struct blkif_request *dst)
{
	lamina_ring_copy_slot(dst, RING_GET_REQUEST(br, idx), sizeof(*dst));
}

/* Put a response in the next private slot (not yet visible to the front-end). */
static inline void lamina_blk_put_response(struct blkif_back_ring *br, uint64_t id, uint8_t op, int16_t status)
{
	struct blkif_response *r = RING_GET_RESPONSE(br, br->rsp_prod_pvt);

	r->id = id;
	r->operation = op;
	r->status = status;
	br->rsp_prod_pvt++;
}

/* The helpers below work on any ring type <xen/io/ring.h> defines (blkif, netif tx and rx, ...):
 * they are statement-expression macros over its generic macros, evaluating the ring argument once. */

/* Requests the front-end published on back ring br and the back-end may consume now, or -1 if the
 * producer ran away (see lamina_ring_back_avail); *prod_out the index to consume up to. */
#define lamina_ring_back_pending(br, prod_out)                                                               \
	({                                                                                                   \
		__typeof__(br) lrbp_r = (br);                                                                 \
		lamina_ring_back_avail(&lrbp_r->sring->req_prod, lrbp_r->req_cons, lrbp_r->rsp_prod_pvt,      \
				       RING_SIZE(lrbp_r), (prod_out));                                       \
	})

/* Publish the private responses; 1 if the front-end asked to be told (rsp_event). */
#define lamina_ring_back_push(br)                                                                            \
	({                                                                                                   \
		__typeof__(br) lrbpu_r = (br);                                                                \
		int lrbpu_notify;                                                                            \
		RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(lrbpu_r, lrbpu_notify);                                 \
		lrbpu_notify;                                                                                \
	})

/* After draining: re-arm req_event and look again, so a request pushed in between is not missed.
 * 1 if more requests are (claimed to be) there. */
#define lamina_ring_back_final_check(br)                                                                     \
	({                                                                                                   \
		__typeof__(br) lrbf_r = (br);                                                                 \
		int lrbf_more;                                                                               \
		RING_FINAL_CHECK_FOR_REQUESTS(lrbf_r, lrbf_more);                                            \
		lrbf_more;                                                                                   \
	})

/* ---- front-end side ---- */

/* Publish queued requests; 1 if the back-end asked to be told (req_event). */
#define lamina_ring_front_push(fr)                                                                           \
	({                                                                                                   \
		__typeof__(fr) lrfp_r = (fr);                                                                 \
		int lrfp_notify;                                                                             \
		RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(lrfp_r, lrfp_notify);                                    \
		lrfp_notify;                                                                                 \
	})

/* Responses the back-end published and the front-end has not consumed, or -1 past the ring's size.
 * The back-end is trusted by the guest, but a bound still keeps a confused one from walking the
 * front-end off the ring. *prod_out is set only on success. */
#define lamina_ring_front_avail(fr, prod_out)                                                                \
	({                                                                                                   \
		__typeof__(fr) lrfa_r = (fr);                                                                 \
		RING_IDX lrfa_prod = lamina_ring_load_idx(&lrfa_r->sring->rsp_prod);                          \
		int lrfa_n = -1;                                                                             \
		if ((RING_IDX)(lrfa_prod - lrfa_r->rsp_cons) <= RING_SIZE(lrfa_r)) {                          \
			*(prod_out) = lrfa_prod;                                                             \
			lrfa_n = (int)(RING_IDX)(lrfa_prod - lrfa_r->rsp_cons);                              \
		}                                                                                            \
		lrfa_n;                                                                                      \
	})

/* After consuming: re-arm rsp_event and look again. */
#define lamina_ring_front_final_check(fr)                                                                    \
	({                                                                                                   \
		__typeof__(fr) lrff_r = (fr);                                                                 \
		int lrff_more;                                                                               \
		RING_FINAL_CHECK_FOR_RESPONSES(lrff_r, lrff_more);                                           \
		lrff_more;                                                                                   \
	})

#endif
