/* The Domain-0 end of `./run bench net`: a UDP sink that counts what a guest sends, and a UDP
 * blaster that sends to a guest as fast as the socket takes it (sendmmsg batches). Both stop on
 * their own (a time bound, or one idle second), so a bench can never hang on them.
 *   net-udp sink PORT MAX_SECS        -> "pkts=N bytes=N usec=N"
 *   net-udp blast DST PORT SIZE SECS  -> "pkts=N bytes=N usec=N" */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NETU_BATCH 64
#define NETU_MAX 2048

static uint64_t netu_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int netu_sink(int s, unsigned max_secs)
{
	static char bufs[NETU_BATCH][NETU_MAX];
	struct mmsghdr msgs[NETU_BATCH];
	struct iovec iov[NETU_BATCH];
	uint64_t pkts = 0, bytes = 0, first = 0, last = 0, end = netu_now_us() + (uint64_t)max_secs * 1000000u;
	struct pollfd pfd = { .fd = s, .events = POLLIN };

	for (int i = 0; i < NETU_BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], NETU_MAX };
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (netu_now_us() < end) {
		int n;

		if (poll(&pfd, 1, 200) <= 0) {
			if (pkts && netu_now_us() - last > 1000000u)
				break; /* the stream is over */
			continue;
		}
		n = recvmmsg(s, msgs, NETU_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			continue;
		last = netu_now_us();
		if (!pkts)
			first = last;
		for (int i = 0; i < n; i++)
			bytes += msgs[i].msg_len;
		pkts += (uint64_t)n;
	}
	printf("pkts=%llu bytes=%llu usec=%llu\n", (unsigned long long)pkts, (unsigned long long)bytes,
	       (unsigned long long)(last - first));
	return 0;
}

static int netu_blast(int s, const struct sockaddr_in *to, size_t size, unsigned secs)
{
	static char buf[NETU_MAX];
	struct mmsghdr msgs[NETU_BATCH];
	struct iovec iov = { buf, size };
	uint64_t pkts = 0, t0 = netu_now_us(), end = t0 + (uint64_t)secs * 1000000u;

	for (size_t i = 0; i < size; i++)
		buf[i] = (char)i;
	for (int i = 0; i < NETU_BATCH; i++) {
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = (void *)to;
		msgs[i].msg_hdr.msg_namelen = sizeof(*to);
	}
	while (netu_now_us() < end) {
		int n = sendmmsg(s, msgs, NETU_BATCH, 0);

		if (n > 0)
			pkts += (uint64_t)n;
		else if (errno != ENOBUFS && errno != EAGAIN)
			return -errno;
	}
	printf("pkts=%llu bytes=%llu usec=%llu\n", (unsigned long long)pkts, (unsigned long long)(pkts * size),
	       (unsigned long long)(netu_now_us() - t0));
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int s, rc, big = 8 << 20;

	if (argc == 4 && strcmp(argv[1], "sink") == 0) {
		s = socket(AF_INET, SOCK_DGRAM, 0);
		a.sin_port = htons((uint16_t)atoi(argv[2]));
		setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
			perror("net-udp: bind");
			return 1;
		}
		rc = netu_sink(s, (unsigned)atoi(argv[3]));
	} else if (argc == 6 && strcmp(argv[1], "blast") == 0) {
		size_t size = (size_t)atoi(argv[4]);

		s = socket(AF_INET, SOCK_DGRAM, 0);
		a.sin_port = htons((uint16_t)atoi(argv[3]));
		if (s < 0 || inet_pton(AF_INET, argv[2], &a.sin_addr) != 1 || size == 0 || size > 1472) {
			fprintf(stderr, "net-udp: bad destination or size\n");
			return 2;
		}
		rc = netu_blast(s, &a, size, (unsigned)atoi(argv[5]));
	} else {
		fprintf(stderr, "usage: net-udp sink PORT MAX_SECS | net-udp blast DST PORT SIZE SECS\n");
		return 2;
	}
	close(s);
	return rc < 0 ? 1 : 0;
}
