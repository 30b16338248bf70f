// fs_ok.c: ordinary file work a job handler does in its build dir. Prints
// "ok" only if every step worked; otherwise "FAIL <step>: <errno>" lines.
// Built by build.sh; run by internal/sandboxfs tests with the build dir as "/".

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failed;

#define CHECK(step, cond)                                                     \
	do {                                                                      \
		errno = 0;                                                            \
		if (!(cond)) {                                                        \
			printf("FAIL %s: %s\n", step, errno ? strerror(errno) : "check"); \
			failed = 1;                                                       \
		}                                                                     \
	} while (0)

static int write_file(const char *path, const char *mode, const char *s) {
	FILE *f = fopen(path, mode);
	if (!f) return 0;
	size_t n = fwrite(s, 1, strlen(s), f);
	return fclose(f) == 0 && n == strlen(s);
}

// read_file returns 1 if path holds exactly want.
static int read_file(const char *path, const char *want) {
	char buf[256];
	FILE *f = fopen(path, "r");
	if (!f) return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return strcmp(buf, want) == 0;
}

static off_t size_of(const char *path) {
	struct stat st;
	if (stat(path, &st) != 0) return -1;
	return st.st_size;
}

// list_has returns how many of the given names are entries of dir (and -1 on
// error); "." and ".." must be there too.
static int list_has(const char *dir, const char *a, const char *b) {
	DIR *d = opendir(dir);
	if (!d) return -1;
	int found = 0, dots = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) dots++;
		if (a && !strcmp(e->d_name, a)) found++;
		if (b && !strcmp(e->d_name, b)) found++;
	}
	// Rewind and count again: entries must come back.
	rewinddir(d);
	int again = 0;
	while ((e = readdir(d)) != NULL) again++;
	closedir(d);
	return dots == 2 && again >= 2 ? found : -1;
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);

	CHECK("mkdir out", mkdir("out", 0755) == 0);
	CHECK("mkdir out/a", mkdir("out/a", 0755) == 0);
	CHECK("mkdir /out/a/b (absolute)", mkdir("/out/a/b", 0755) == 0);
	CHECK("mkdir exists", mkdir("out", 0755) != 0 && errno == EEXIST);

	CHECK("write", write_file("out/a/b/log.txt", "w", "hello\n"));
	CHECK("append", write_file("out/a/b/log.txt", "a", "world\n"));
	CHECK("read back", read_file("/out/a/b/log.txt", "hello\nworld\n"));
	CHECK("stat size", size_of("out/a/b/log.txt") == 12);

	// open/lseek/pwrite-ish work on a descriptor.
	int fd = open("out/data.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK("open rdwr", fd >= 0);
	if (fd >= 0) {
		CHECK("write fd", write(fd, "0123456789", 10) == 10);
		CHECK("lseek", lseek(fd, 2, SEEK_SET) == 2);
		char b[4] = {0};
		CHECK("read at 2", read(fd, b, 3) == 3 && memcmp(b, "234", 3) == 0);
		CHECK("pwrite", pwrite(fd, "AB", 2, 8) == 2);
		CHECK("pread", pread(fd, b, 2, 8) == 2 && memcmp(b, "AB", 2) == 0);
		CHECK("ftruncate", ftruncate(fd, 4) == 0);
		struct stat st;
		CHECK("fstat", fstat(fd, &st) == 0 && st.st_size == 4 && S_ISREG(st.st_mode));
		CHECK("fsync", fsync(fd) == 0);
		CHECK("close", close(fd) == 0);
	}
	// O_APPEND descriptor.
	fd = open("out/data.bin", O_WRONLY | O_APPEND);
	CHECK("open append", fd >= 0);
	if (fd >= 0) {
		CHECK("write append", write(fd, "xy", 2) == 2);
		close(fd);
	}
	CHECK("appended", read_file("out/data.bin", "0123xy"));
	CHECK("exclusive create fails", open("out/data.bin", O_WRONLY | O_CREAT | O_EXCL, 0644) < 0 && errno == EEXIST);

	// Rename, list, unlink.
	CHECK("rename", rename("out/a/b/log.txt", "out/log.txt") == 0);
	CHECK("renamed gone", access("out/a/b/log.txt", F_OK) != 0 && errno == ENOENT);
	CHECK("renamed there", read_file("out/log.txt", "hello\nworld\n"));
	CHECK("list", list_has("out", "log.txt", "data.bin") == 2);
	CHECK("list root", list_has("/", "out", NULL) == 1);
	CHECK("list dot", list_has(".", "out", NULL) == 1);
	CHECK("rename dir", rename("out/a", "out/z") == 0);
	CHECK("rmdir nonempty fails", rmdir("out/z") != 0 && (errno == ENOTEMPTY || errno == EEXIST));
	CHECK("rmdir", rmdir("out/z/b") == 0 && rmdir("out/z") == 0);
	CHECK("unlink", unlink("out/data.bin") == 0);
	CHECK("unlink gone", size_of("out/data.bin") == -1 && errno == ENOENT);
	CHECK("list after", list_has("out", "log.txt", "data.bin") == 1);

	// Links inside the dir work.
	CHECK("symlink", symlink("log.txt", "out/link") == 0);
	char target[64] = {0};
	CHECK("readlink", readlink("out/link", target, sizeof target - 1) == 7 && !strcmp(target, "log.txt"));
	CHECK("read through link", read_file("out/link", "hello\nworld\n"));
	CHECK("stat through link", size_of("out/link") == 12);
	struct stat lst;
	CHECK("lstat link", lstat("out/link", &lst) == 0 && S_ISLNK(lst.st_mode));
	CHECK("dir symlink", symlink("out", "outlink") == 0);
	CHECK("read through dir link", read_file("outlink/log.txt", "hello\nworld\n"));
	CHECK("pre-existing inside link", read_file("link_in/file.txt", "in sub\n"));
	CHECK("hard link", link("out/log.txt", "out/hard.txt") == 0);
	CHECK("hard link reads", read_file("out/hard.txt", "hello\nworld\n"));
	CHECK("unlink link", unlink("out/link") == 0 && unlink("outlink") == 0);

	// Times.
	struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1234567890}};
	CHECK("utimensat", utimensat(AT_FDCWD, "out/log.txt", ts, 0) == 0);
	struct stat st;
	CHECK("mtime", stat("out/log.txt", &st) == 0 && st.st_mtim.tv_sec == 1234567890);

	fd = open("out/log.txt", O_RDONLY);
	CHECK("futimens", fd >= 0 && futimens(fd, ts) == 0 && fstat(fd, &st) == 0 &&
	                      st.st_mtim.tv_sec == 1234567890 && st.st_atim.tv_sec == 1000000000);
	if (fd >= 0) close(fd);

	// A directory bigger than one fd_readdir buffer.
	CHECK("mkdir many", mkdir("many", 0755) == 0);
	for (int i = 0; i < 300; i++) {
		char p[64];
		snprintf(p, sizeof p, "many/file-with-a-longish-name-%03d", i);
		int f = open(p, O_WRONLY | O_CREAT, 0644);
		if (f < 0) {
			CHECK("create many", 0);
			break;
		}
		close(f);
	}
	DIR *md = opendir("many");
	int entries = 0;
	if (md) {
		struct dirent *e;
		while ((e = readdir(md)) != NULL)
			if (strncmp(e->d_name, "file-", 5) == 0 && e->d_ino != 0 && e->d_type == DT_REG) entries++;
		closedir(md);
	}
	CHECK("list many", entries == 300);

	// chdir and relative paths.
	CHECK("chdir", chdir("out") == 0);
	CHECK("relative read", read_file("log.txt", "hello\nworld\n"));
	CHECK("chdir back", chdir("/") == 0);

	// *at calls on a descriptor of the root ("." opened by path): wazero
	// passes these paths to the FS with a leading "/".
	int dfd = open(".", O_RDONLY | O_DIRECTORY);
	CHECK("open .", dfd >= 0);
	if (dfd >= 0) {
		int f2 = openat(dfd, "out/log.txt", O_RDONLY);
		CHECK("openat root fd", f2 >= 0);
		if (f2 >= 0) close(f2);
		struct stat ast;
		CHECK("fstatat root fd", fstatat(dfd, "out", &ast, 0) == 0 && S_ISDIR(ast.st_mode));
		CHECK("mkdirat root fd", mkdirat(dfd, "out/at", 0755) == 0);
		CHECK("unlinkat root fd", unlinkat(dfd, "out/at", AT_REMOVEDIR) == 0);
		close(dfd);
	}
	// and on a descriptor of a subdirectory.
	dfd = open("out", O_RDONLY | O_DIRECTORY);
	CHECK("open out", dfd >= 0);
	if (dfd >= 0) {
		int f2 = openat(dfd, "log.txt", O_RDONLY);
		CHECK("openat sub fd", f2 >= 0);
		if (f2 >= 0) close(f2);
		CHECK("renameat sub fd", renameat(dfd, "hard.txt", dfd, "hard2.txt") == 0);
		CHECK("unlinkat sub fd", unlinkat(dfd, "hard2.txt", 0) == 0);
		close(dfd);
	}

	// Errors come back as errors.
	CHECK("missing", open("nope", O_RDONLY) < 0 && errno == ENOENT);
	CHECK("not a dir", opendir("out/log.txt") == NULL && errno == ENOTDIR);

	if (!failed) printf("ok\n");
	return failed;
}
