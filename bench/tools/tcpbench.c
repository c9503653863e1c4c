/* tcpbench: the traffic of bench/observer-overhead, in C so the measurement is the kernel's
 * path and not a runtime's.
 *   tcpbench server PORT                       echo every byte back (many connections, one at a time)
 *   tcpbench pingpong ADDR PORT SECONDS SIZE   round trips of SIZE-byte messages; prints {"rtt_per_s":N}
 *   tcpbench bulk ADDR PORT SECONDS            send as fast as possible; prints {"bytes_per_s":N}
 * The server answers ping-pong with the same bytes and discards bulk data (first byte 'B'). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int full(int fd, char *b, size_t n, int rd)
{
	for (size_t d = 0; d < n;) {
		ssize_t r = rd ? read(fd, b + d, n - d) : write(fd, b + d, n - d);
		if (r <= 0)
			return -1;
		d += r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives what started it (a benchmark or test killed) */
	static char buf[1 << 16];
	int one = 1;
	if (argc == 3 && !strcmp(argv[1], "server")) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
		if (bind(s, (void *)&a, sizeof a) || listen(s, 16)) {
			perror("tcpbench server");
			return 1;
		}
		printf("{\"listening\":%s}\n", argv[2]);
		fflush(stdout);
		for (;;) {
			int c = accept(s, 0, 0);
			if (c < 0)
				continue;
			setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			ssize_t r = read(c, buf, sizeof buf);
			if (r > 0 && buf[0] == 'B') {
				while (read(c, buf, sizeof buf) > 0)
					;
			} else {
				while (r > 0 && full(c, buf, r, 0) == 0)
					r = read(c, buf, sizeof buf);
			}
			close(c);
		}
	}
	if (argc < 5) {
		fprintf(stderr, "usage: tcpbench server PORT | pingpong ADDR PORT SECONDS SIZE | bulk ADDR PORT SECONDS\n");
		return 2;
	}
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
	inet_pton(AF_INET, argv[2], &a.sin_addr);
	if (connect(c, (void *)&a, sizeof a)) {
		perror("tcpbench connect");
		return 1;
	}
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	double secs = atof(argv[4]), t0 = now(), end = t0 + secs;
	if (!strcmp(argv[1], "pingpong")) {
		size_t size = argc > 5 ? atoi(argv[5]) : 100;
		memset(buf, 'P', size);
		long n = 0;
		while ((n & 63) || now() < end) {
			if (full(c, buf, size, 0) || full(c, buf, size, 1))
				return 1;
			n++;
		}
		printf("{\"rtt_per_s\":%.1f}\n", n / (now() - t0));
	} else {
		memset(buf, 'B', sizeof buf);
		double bytes = 0;
		while (now() < end) {
			if (full(c, buf, sizeof buf, 0))
				return 1;
			bytes += sizeof buf;
		}
		shutdown(c, SHUT_WR);
		while (read(c, buf, sizeof buf) > 0)
			;
		printf("{\"bytes_per_s\":%.0f}\n", bytes / (now() - t0));
	}
	close(c);
	return 0;
}
