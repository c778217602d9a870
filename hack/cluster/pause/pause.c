/*
 * The pod sandbox's process (what registry.k8s.io/pause does): hold the pod's namespaces, reap
 * orphaned children, exit on SIGINT/SIGTERM. Built static (`gcc -static`) into a FROM-scratch image
 * by scripts/cluster, because no image registry is reachable from the test machines.
 */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) {
	(void)sig;
	_exit(0);
}

static void reap(int sig) {
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
}

int main(void) {
	struct sigaction stop = {.sa_handler = quit};
	struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
	if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
	    sigaction(SIGCHLD, &child, NULL) < 0) {
		return 1;
	}
	for (;;) {
		pause();
	}
}
