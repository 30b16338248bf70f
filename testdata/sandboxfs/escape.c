// escape.c: a hostile WASI guest that tries to reach files outside its
// mounted directory. Built by build.sh; run by internal/sandboxfs tests.
//
// The host mounts a build dir as "/" whose sibling "outside" holds "secret",
// "outlink" (-> secret) and "emptydir". In the build dir the host creates:
//   inside.txt, sub/                regular entries
//   link_out -> ../outside          pre-existing dir link leaving the dir
//   link_sec -> ../outside/secret   pre-existing file link leaving the dir
//   chain1 -> chain2 -> link_out    a chain that ends outside
//   abs_link -> <abs>/secret        an absolute link (argv[1] is <abs>)
//
// Each attempt prints one line to stdout, "NAME: blocked" or
// "NAME: ESCAPED <detail>", then "DONE <count>". Errno details go to stderr.
// No attempt succeeds unless something outside was read, listed, stat'ed or
// changed (setup steps that must work, such as creating a link, are not
// attempts).

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int count;
static const char *outside; // host path of the outside dir (argv[1])

static void blocked(const char *name) {
	printf("%s: blocked\n", name);
	fprintf(stderr, "%s: %s\n", name, strerror(errno));
	count++;
}

static void escaped(const char *name, const char *detail) {
	printf("%s: ESCAPED %s\n", name, detail);
	count++;
}

// read_fd reads up to 63 bytes of fd into buf as a one-line string.
static void read_fd(int fd, char *buf) {
	ssize_t n = read(fd, buf, 63);
	if (n < 0) {
		snprintf(buf, 64, "(opened; read: %s)", strerror(errno));
		return;
	}
	buf[n] = 0;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\n') buf[i] = ' ';
}

// try_open: any successful open is an escape; show what was read.
static void try_open(const char *name, const char *path) {
	errno = 0;
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		blocked(name);
		return;
	}
	char buf[64];
	read_fd(fd, buf);
	close(fd);
	escaped(name, buf);
}

static void try_fopen(const char *name, const char *path, const char *mode) {
	errno = 0;
	FILE *f = fopen(path, mode);
	if (!f) {
		blocked(name);
		return;
	}
	char buf[64] = "(opened for writing)";
	if (mode[0] == 'r') {
		size_t n = fread(buf, 1, 63, f);
		buf[n] = 0;
		for (size_t i = 0; i < n; i++)
			if (buf[i] == '\n') buf[i] = ' ';
	}
	fclose(f);
	escaped(name, buf);
}

static void try_create(const char *name, const char *path) {
	errno = 0;
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0) {
		blocked(name);
		return;
	}
	write(fd, "planted\n", 8);
	close(fd);
	escaped(name, "(created)");
}

static void try_stat(const char *name, const char *path, int follow) {
	struct stat st;
	errno = 0;
	int rc = follow ? stat(path, &st) : lstat(path, &st);
	if (rc != 0) {
		blocked(name);
		return;
	}
	char buf[64];
	snprintf(buf, sizeof buf, "(ino=%llu size=%lld)", (unsigned long long)st.st_ino,
	         (long long)st.st_size);
	escaped(name, buf);
}

// try_opendir: any listing that contains an entry of the outside dir (or of
// its parent) is an escape. The build dir has no entry with these names.
static void try_opendir(const char *name, const char *path) {
	errno = 0;
	DIR *d = opendir(path);
	if (!d) {
		blocked(name);
		return;
	}
	char seen[64] = "";
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, "secret") || !strcmp(e->d_name, "outside") ||
		    !strcmp(e->d_name, "emptydir")) {
			snprintf(seen, sizeof seen, "(listed %s)", e->d_name);
			break;
		}
	}
	closedir(d);
	if (seen[0]) {
		escaped(name, seen);
	} else {
		errno = 0;
		blocked(name);
	}
}

// try_rc: a mutating call that must fail.
static void try_rc(const char *name, int rc) {
	if (rc != 0) {
		blocked(name);
		return;
	}
	escaped(name, "(call succeeded)");
}

// setup: a step that is legitimate inside the dir; failure is reported on
// stderr only (the attempt that follows then reports blocked).
static void setup(const char *what, int rc) {
	if (rc != 0) fprintf(stderr, "setup %s: %s\n", what, strerror(errno));
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: escape <host path of outside dir>\n");
		return 2;
	}
	outside = argv[1];
	char abs_secret[512];
	snprintf(abs_secret, sizeof abs_secret, "%s/secret", outside);
	setvbuf(stdout, NULL, _IOLBF, 0);

	// Reads and stats.
	try_open("dotdot_open", "../outside/secret");
	try_open("abs_dotdot_open", "/../outside/secret");
	try_open("nested_dotdot_open", "sub/../../outside/secret");
	try_fopen("dotdot_fopen", "../outside/secret", "r");
	try_open("host_abs_open", abs_secret);
	try_open("dirlink_open", "link_out/secret");
	try_fopen("dirlink_fopen_abs", "/link_out/secret", "r");
	try_open("dirlink_dotdot_open", "/link_out/../link_out/secret");
	try_open("filelink_open", "link_sec");
	try_open("chain_open", "chain1/secret");
	try_open("abs_prelink_open", "abs_link");
	try_stat("dirlink_stat", "link_out/secret", 1);
	try_stat("dirlink_stat_dir", "link_out", 1);
	try_stat("filelink_stat", "link_sec", 1);
	try_stat("dirlink_lstat", "link_out/secret", 0);
	try_stat("abs_prelink_stat", "abs_link", 1);
	try_opendir("dirlink_opendir", "link_out");
	try_opendir("chain_opendir", "chain1");
	try_opendir("root_parent_opendir", "/..");
	try_opendir("dotdot_opendir", "..");
	{
		char buf[256];
		errno = 0;
		ssize_t n = readlink("link_out/outlink", buf, sizeof buf - 1);
		if (n < 0) {
			blocked("dirlink_readlink");
		} else {
			buf[n] = 0;
			escaped("dirlink_readlink", buf);
		}
	}

	// Links the guest makes itself.
	setup("symlink mine", symlink("../outside", "mine"));
	try_open("guest_dirlink_open", "mine/secret");
	try_opendir("guest_dirlink_opendir", "mine");
	try_stat("guest_dirlink_stat", "mine/secret", 1);
	setup("symlink mine_sec", symlink("../outside/secret", "mine_sec"));
	try_open("guest_filelink_open", "mine_sec");
	setup("symlink mine_abs", symlink(abs_secret, "mine_abs"));
	try_open("guest_abslink_open", "mine_abs");
	setup("mkdir sub2", mkdir("sub2", 0755));
	setup("symlink sub2/up", symlink("../../outside", "sub2/up"));
	try_open("guest_nested_link_open", "sub2/up/secret");
	// A link that points inside when made, and outside after a rename.
	setup("mkdir d1", mkdir("d1", 0755));
	setup("symlink d1/up", symlink("..", "d1/up"));
	setup("rename d1/up up", rename("d1/up", "up"));
	try_open("renamed_link_open", "up/outside/secret");
	// A hard link to the dir link is a second dir link.
	setup("link hl_dir", link("link_out", "hl_dir"));
	try_open("hardlinked_dirlink_open", "hl_dir/secret");
	// chdir is emulated by wasi-libc; paths still resolve through the mount.
	if (chdir("link_out") == 0) {
		try_open("chdir_dirlink_open", "secret");
		chdir("/");
	} else {
		blocked("chdir_dirlink_open");
	}
	if (chdir("sub") == 0) {
		try_open("chdir_sub_dotdot_open", "../../outside/secret");
		chdir("/");
	} else {
		blocked("chdir_sub_dotdot_open");
	}

	// *at calls on directory descriptors. wazero resolves them by the path
	// the descriptor was opened with, so a dir renamed away and replaced by a
	// link after the open is reached through the link.
	{
		int rootfd = open(".", O_RDONLY | O_DIRECTORY);
		errno = 0;
		int fd = rootfd < 0 ? -1 : openat(rootfd, "link_out/secret", O_RDONLY);
		if (fd < 0) {
			blocked("at_rootfd_dirlink_open");
		} else {
			char buf[64];
			read_fd(fd, buf);
			close(fd);
			escaped("at_rootfd_dirlink_open", buf);
		}
		if (rootfd >= 0) close(rootfd);
	}
	{
		setup("mkdir swapd", mkdir("swapd", 0755));
		int dfd = open("swapd", O_RDONLY | O_DIRECTORY);
		setup("open swapd", dfd < 0 ? -1 : 0);
		setup("rename swapd", rename("swapd", "swapd_old"));
		setup("symlink swapd", symlink("../outside", "swapd"));
		errno = 0;
		int fd = dfd < 0 ? -1 : openat(dfd, "secret", O_RDONLY);
		if (fd < 0) {
			blocked("at_swapped_dirfd_open");
		} else {
			char buf[64];
			read_fd(fd, buf);
			close(fd);
			escaped("at_swapped_dirfd_open", buf);
		}
		if (dfd >= 0) close(dfd);
	}

	// Changes outside. Destructive ones last.
	try_create("create_through_dirlink", "link_out/planted");
	setup("symlink dang", symlink("../outside/planted2", "dang"));
	try_create("create_through_dangling_link", "dang");
	try_create("create_dotdot", "../planted3");
	try_fopen("append_through_filelink", "link_sec", "a");
	try_rc("mkdir_through_dirlink", mkdir("link_out/newdir", 0755));
	try_rc("mkdir_dotdot", mkdir("../planted_dir", 0755));
	try_rc("symlink_into_dirlink", symlink("x", "link_out/newlink"));
	try_rc("link_from_outside", link("link_out/secret", "stolen_hard"));
	try_rc("link_into_outside", link("inside.txt", "link_out/hard_planted"));
	try_rc("rename_into_outside", rename("inside.txt", "link_out/planted4"));
	{
		struct timespec ts[2] = {{.tv_sec = 1}, {.tv_sec = 1}};
		try_rc("utimens_through_filelink", utimensat(AT_FDCWD, "link_sec", ts, 0));
		try_rc("utimens_through_dirlink", utimensat(AT_FDCWD, "link_out/secret", ts, 0));
	}
	try_rc("truncate_through_filelink", truncate("link_sec", 0));
	try_rc("rmdir_through_dirlink", rmdir("link_out/emptydir"));
	try_rc("rename_from_outside", rename("link_out/secret", "stolen"));
	try_rc("unlink_through_dirlink", unlink("link_out/outlink"));
	try_rc("unlink_dotdot", unlink("../outside/secret"));
	try_rc("unlink_through_chain", unlink("chain1/secret"));

	printf("DONE %d\n", count);
	return 0;
}
