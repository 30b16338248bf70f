// openloop.c: opens a file again and again without closing it, as a guest
// hoarding descriptors would, until refused (or argv[1] opens succeeded).
// Then checks that a directory open is refused too, that its pre-opened
// directory still works, and that closing one descriptor (if it got any)
// lets it open one more. Exits without closing anything: the module's close must.
// Built by build.sh; run by internal/sandboxfs tests with the build dir as "/".

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	int max = argc > 1 ? atoi(argv[1]) : 1000;
	int *fds = calloc(max, sizeof *fds);
	int n = 0;
	while (n < max) {
		int fd = open("inside.txt", O_RDONLY);
		if (fd < 0) {
			printf("refused: %s\n", strerror(errno));
			break;
		}
		fds[n++] = fd;
	}
	printf("opened %d\n", n);
	if (n == max) return 0; // no limit met

	int d = open(".", O_RDONLY | O_DIRECTORY);
	if (d < 0) printf("dir refused: %s\n", strerror(errno));
	else printf("dir opened\n");

	// The pre-opened dir (wazero opened it lazily at start, for
	// fd_prestat_get) still works.
	struct stat st;
	if (fstat(3, &st) == 0 && S_ISDIR(st.st_mode)) printf("preopen ok\n");
	else printf("preopen: %s\n", strerror(errno));

	if (n == 0) return 0;
	if (close(fds[0]) != 0) printf("close: %s\n", strerror(errno));
	int fd = open("inside.txt", O_RDONLY);
	if (fd >= 0) printf("reopen ok\n");
	else printf("reopen: %s\n", strerror(errno));
	fd = open("inside.txt", O_RDONLY);
	if (fd < 0) printf("refused again: %s\n", strerror(errno));
	else printf("opened again\n");
	return 0;
}
