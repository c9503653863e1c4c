/* hostload: host conditions caused on purpose, for the host-jitter tests and bench/host-overhead.
 *   hostload spin CPU SECONDS             a busy loop pinned to CPU (two on one CPU preempt each other)
 *   hostload faults MB ROUNDS             map MB of fresh memory and touch every page, ROUNDS times (minor faults)
 *   hostload slowread MS ROUNDS           read() from a pipe whose writer waits MS first, ROUNDS times
 *   hostload pingpong SECONDS             two threads pass a token through a pair of pipes; prints {"rounds_per_s":N}
 *   hostload syscalls SECONDS             getppid() in a loop; prints {"calls_per_s":N,"calls":N}
 * Prints {"ready":PID} first (the tests watch that pid), then its result, if any. With
 * HOSTLOAD_WAIT set in the environment it then waits for a line on stdin before it starts, so a
 * probe can attach to the pid first. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s)) {
		perror("sched_setaffinity");
		exit(2);
	}
}

static int ab[2], ba[2];
static volatile int stop;

static void *echo(void *arg)
{
	char c;
	(void)arg;
	while (read(ab[0], &c, 1) == 1 && write(ba[1], &c, 1) == 1)
		;
	return NULL;
}

int main(int argc, char **argv)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives what started it (a benchmark or test killed) */
	if (argc < 3) {
		fprintf(stderr, "usage: hostload spin CPU SECONDS | faults MB ROUNDS | slowread MS ROUNDS | pingpong SECONDS | syscalls SECONDS\n");
		return 2;
	}
	printf("{\"ready\":%d}\n", getpid());
	fflush(stdout);
	if (getenv("HOSTLOAD_WAIT")) {
		char line[16];
		if (!fgets(line, sizeof(line), stdin))
			return 2;
	}
	const char *mode = argv[1];
	if (!strcmp(mode, "spin") && argc >= 4) {
		pin(atoi(argv[2]));
		double end = now() + atof(argv[3]);
		volatile unsigned long x = 0;
		while (now() < end)
			for (int i = 0; i < 10000; i++)
				x++;
		return 0;
	}
	if (!strcmp(mode, "faults") && argc >= 4) {
		size_t bytes = (size_t)atol(argv[2]) << 20;
		long page = sysconf(_SC_PAGESIZE);
		for (int r = 0; r < atoi(argv[3]); r++) {
			char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED) {
				perror("mmap");
				return 2;
			}
			for (size_t o = 0; o < bytes; o += page)
				m[o] = 1;
			munmap(m, bytes);
		}
		return 0;
	}
	if (!strcmp(mode, "slowread") && argc >= 4) {
		int ms = atoi(argv[2]);
		for (int r = 0; r < atoi(argv[3]); r++) {
			int p[2];
			char c;
			if (pipe(p))
				return 2;
			pid_t child = fork();
			if (child == 0) {
				usleep(ms * 1000);
				if (write(p[1], "x", 1) != 1)
					_exit(1);
				_exit(0);
			}
			close(p[1]);
			if (read(p[0], &c, 1) != 1)
				return 2;
			close(p[0]);
			waitpid(child, NULL, 0);
		}
		return 0;
	}
	if (!strcmp(mode, "pingpong")) {
		pthread_t t;
		if (pipe(ab) || pipe(ba) || pthread_create(&t, NULL, echo, NULL))
			return 2;
		double start = now(), end = start + atof(argv[2]);
		long rounds = 0;
		char c = 'x';
		while (now() < end) {
			for (int i = 0; i < 100; i++)
				if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
					return 2;
			rounds += 100;
		}
		printf("{\"rounds_per_s\":%.0f}\n", rounds / (now() - start));
		return 0;
	}
	if (!strcmp(mode, "syscalls")) {
		double start = now(), end = start + atof(argv[2]);
		long calls = 0;
		while (now() < end) {
			for (int i = 0; i < 1000; i++)
				getppid();
			calls += 1000;
		}
		printf("{\"calls_per_s\":%.0f,\"calls\":%ld}\n", calls / (now() - start), calls);
		return 0;
	}
	fprintf(stderr, "hostload: unknown mode %s\n", mode);
	return 2;
}
