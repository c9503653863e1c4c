/* sendframe: sends raw Ethernet frames, given in hex, out of an interface (AF_PACKET), for the
 * tests that feed malformed and spoofed packets to the time-sync programs.
 *   sendframe IFACE HEX [HEX...]                   prints {"sent":N} */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: sendframe IFACE HEX [HEX...]\n");
		return 2;
	}
	int s = socket(AF_PACKET, SOCK_RAW, 0);
	if (s < 0) {
		perror("sendframe: socket");
		return 1;
	}
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_ifindex = if_nametoindex(argv[1]), .sll_halen = 6 };
	if (!a.sll_ifindex) {
		fprintf(stderr, "sendframe: no interface %s\n", argv[1]);
		return 1;
	}
	int sent = 0;
	for (int i = 2; i < argc; i++) {
		size_t n = strlen(argv[i]) / 2;
		unsigned char buf[2048];
		if (n > sizeof(buf))
			return 1;
		for (size_t j = 0; j < n; j++)
			sscanf(argv[i] + 2 * j, "%2hhx", &buf[j]);
		memcpy(a.sll_addr, buf, 6);
		if (sendto(s, buf, n, 0, (struct sockaddr *)&a, sizeof(a)) != (ssize_t)n) {
			perror("sendframe: sendto");
			return 1;
		}
		sent++;
	}
	printf("{\"sent\":%d}\n", sent);
	close(s);
	return 0;
}
