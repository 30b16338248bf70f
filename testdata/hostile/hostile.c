// hostile: a WASI command guest for the adversarial suite
// (test/adversarial). It reads its script lines through the host ABI
// (script_count, script_line: callable during _start) and runs each as an
// attack command. Every line it logs starts with "guest: ", so that the
// suite can tell them from the runner's own lines.
//
//   echo TEXT...             log TEXT
//   mem [KIB]                malloc KIB-KiB blocks (default 1024) and touch
//                            them until malloc fails; log how far it got
//   grow PAGES               memory.grow(PAGES) at once; log the result
//   openfiles [MAX]          open new files until refused (or MAX), keep them
//   write PATH BYTES         write BYTES to PATH in 64 KiB pieces until refused
//   entries [MAX]            create empty files until refused (or MAX)
//   artdata NAME SIZE COUNT  artifact_add_data NAME-i of SIZE bytes, COUNT times
//   log BYTES                write BYTES of log in 100-byte lines
//   sections N BYTES         open and close N sections with BYTES-byte headers
//   secret VAR FILL CHUNK [REPEAT]
//                            log FILL filler bytes, then VAR's value REPEAT
//                            times (default 1), each followed by a space, in
//                            CHUNK-byte log_write calls
//   read PATH                open and read PATH; log what came back
//   writefile PATH           open PATH for writing and write to it
//   env                      log the environment, var_names and their values
//   pwd                      log the working dir
//   sleepwasi MS             sleep with WASI (poll_oneoff), ignoring cancellation
//   sleepms MS               sleep_ms once, ignore what it returns
//   sleeploop N MS           sleep_ms N times, ignoring "canceled"
//   spin                     loop forever without host calls
//   http METHOD URL          http_request; log the return code and status
//   exit N                   exit with status N
//   trap                     trap (unreachable)
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HOST(name) __attribute__((import_module("wasmrunner:host/v1"), import_name(#name)))
HOST(script_count) int32_t script_count(void);
HOST(script_line) int32_t script_line(int32_t index, char *buf, int32_t cap);
HOST(log_write) int32_t log_write(const char *p, int32_t n);
HOST(log_line) int32_t log_line(const char *p, int32_t n);
HOST(section_start) int32_t section_start(const char *name, int32_t name_len, const char *hdr, int32_t hdr_len);
HOST(section_end) int32_t section_end(const char *name, int32_t name_len);
HOST(var_get) int32_t var_get(const char *name, int32_t name_len, char *buf, int32_t cap);
HOST(var_names) int32_t var_names(char *buf, int32_t cap);
HOST(artifact_add_data) int32_t artifact_add_data(const char *name, int32_t name_len, const char *data, int32_t data_len);
HOST(sleep_ms) int32_t sleep_ms(int64_t ms);
HOST(http_request) int32_t http_request(const char *req, int32_t req_len, char *buf, int32_t cap);

extern char **environ;

static void say(const char *fmt, ...) {
    static char buf[8192];
    int n = snprintf(buf, sizeof buf, "guest: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1) n = sizeof buf - 1;
    log_line(buf, n);
}

// Shared buffers: the guest owns all memory.
static char line[65536];
static char big[1 << 20];

static long long num(const char *s, long long def) { return s ? atoll(s) : def; }

// Kept where the compiler cannot see them unused (else it drops the
// mallocs altogether).
void *volatile kept[1 << 16];

static int cmd_mem(char **a) {
    long long kib = num(a[1], 1024), total = 0;
    for (long long i = 0; i < (long long)(sizeof kept / sizeof kept[0]); i++) {
        volatile char *p = malloc((size_t)kib * 1024);
        if (!p) break;
        for (long long off = 0; off < kib * 1024; off += 4096) p[off] = 1;
        kept[i] = (void *)p;
        total += kib;
    }
    say("mem: malloc refused after %lld KiB", total);
    return 0;
}

static int cmd_grow(char **a) {
    long long pages = num(a[1], 1);
    int r = __builtin_wasm_memory_grow(0, (unsigned long)pages);
    say("grow: memory.grow(%lld) = %d", pages, r);
    return 0;
}

static int open_fds[1 << 16];
static int nopen;

static int cmd_openfiles(char **a) {
    long long max = num(a[1], 1 << 16);
    char name[64];
    int err = 0;
    while (nopen < max && nopen < (int)(sizeof open_fds / sizeof open_fds[0])) {
        snprintf(name, sizeof name, "fd-%d", nopen);
        int fd = open(name, O_CREAT | O_RDWR, 0644);
        if (fd < 0) { err = errno; break; }
        open_fds[nopen++] = fd;
    }
    say("openfiles: %d open, then errno %d (%s)", nopen, err, err ? strerror(err) : "none");
    return 0;
}

static int cmd_write(char **a) {
    if (!a[1]) return 2;
    long long want = num(a[2], 1LL << 40), done = 0;
    int fd = open(a[1], O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) { say("write %s: open: errno %d (%s)", a[1], errno, strerror(errno)); return 0; }
    memset(big, 'w', sizeof big);
    int err = 0;
    while (done < want) {
        size_t n = want - done < 65536 ? (size_t)(want - done) : 65536;
        ssize_t w = write(fd, big, n);
        if (w <= 0) { err = w < 0 ? errno : 0; break; }
        done += w;
    }
    close(fd);
    say("write %s: wrote %lld bytes, then errno %d (%s)", a[1], done, err, err ? strerror(err) : "none");
    return 0;
}

static int cmd_entries(char **a) {
    long long max = num(a[1], 1LL << 40), n = 0;
    char name[64];
    int err = 0;
    while (n < max) {
        snprintf(name, sizeof name, "e-%lld", n);
        int fd = open(name, O_CREAT | O_WRONLY, 0644);
        if (fd < 0) { err = errno; break; }
        close(fd);
        n++;
    }
    say("entries: created %lld, then errno %d (%s)", n, err, err ? strerror(err) : "none");
    return 0;
}

static int cmd_artdata(char **a) {
    if (!a[1]) return 2;
    long long size = num(a[2], 1 << 20), count = num(a[3], 1), i;
    if (size > (long long)sizeof big) {
        // Bigger than the static buffer: one buffer from the heap.
        char *p = malloc((size_t)size);
        if (!p) { say("artdata: no memory for %lld bytes", size); return 0; }
        memset(p, 'a', (size_t)size);
        char name[256];
        int rc = 0;
        for (i = 0; i < count; i++) {
            snprintf(name, sizeof name, "%s-%lld", a[1], i);
            rc = artifact_add_data(name, strlen(name), p, (int32_t)size);
            if (rc < 0) break;
        }
        say("artdata: added %lld of %lld bytes, then rc %d", i, size, rc);
        free(p);
        return 0;
    }
    memset(big, 'a', (size_t)size);
    char name[256];
    int rc = 0;
    for (i = 0; i < count; i++) {
        snprintf(name, sizeof name, "%s-%lld", a[1], i);
        rc = artifact_add_data(name, strlen(name), big, (int32_t)size);
        if (rc < 0) break;
    }
    say("artdata: added %lld of %lld bytes, then rc %d", i, size, rc);
    return 0;
}

static int cmd_log(char **a) {
    long long want = num(a[1], 1 << 20), done = 0;
    char l[100];
    memset(l, 'x', sizeof l);
    l[sizeof l - 1] = '\n';
    while (done < want) {
        int n = want - done < (long long)sizeof l ? (int)(want - done) : (int)sizeof l;
        if (log_write(l, n) < 0) break;
        done += n;
    }
    say("log: wrote %lld bytes", done);
    return 0;
}

static int cmd_sections(char **a) {
    long long n = num(a[1], 1000), hb = num(a[2], 4096), i;
    if (hb > (long long)sizeof big) hb = sizeof big;
    memset(big, 'h', (size_t)hb);
    char name[64];
    int rc = 0;
    for (i = 0; i < n; i++) {
        int nl = snprintf(name, sizeof name, "s%lld", i);
        rc = section_start(name, nl, big, (int32_t)hb);
        if (rc < 0) break;
        rc = section_end(name, nl);
        if (rc < 0) break;
    }
    say("sections: %lld opened, then rc %d", i, rc);
    return 0;
}

static int cmd_secret(char **a) {
    if (!a[1]) return 2;
    long long fill = num(a[2], 0), chunk = num(a[3], 1), repeat = num(a[4], 1);
    static char val[4096];
    int n = var_get(a[1], strlen(a[1]), val, sizeof val);
    if (n < 0) { say("secret: var_get %s = %d", a[1], n); return 0; }
    memset(big, 'f', sizeof big);
    while (fill > 0) {
        int k = fill < (long long)sizeof big ? (int)fill : (int)sizeof big;
        log_write(big, k);
        fill -= k;
    }
    if (chunk < 1) chunk = 1;
    for (long long r = 0; r < repeat; r++) {
        for (int i = 0; i < n; i += chunk) {
            int k = n - i < chunk ? n - i : (int)chunk;
            log_write(val + i, k);
        }
        log_write(" ", 1);
    }
    log_write("\n", 1);
    return 0;
}

static void show(const char *what, const char *p, int n) {
    static char esc[1024];
    int j = 0;
    for (int i = 0; i < n && j < (int)sizeof esc - 5; i++) {
        unsigned char c = p[i];
        if (c >= 32 && c < 127) esc[j++] = c;
        else j += snprintf(esc + j, sizeof esc - j, "\\x%02x", c);
    }
    esc[j] = 0;
    say("%s: %d bytes: %s", what, n, esc);
}

static int cmd_read(char **a) {
    if (!a[1]) return 2;
    int fd = open(a[1], O_RDONLY);
    if (fd < 0) { say("read %s: errno %d (%s)", a[1], errno, strerror(errno)); return 0; }
    ssize_t n = read(fd, big, 4096);
    int err = errno;
    close(fd);
    if (n < 0) { say("read %s: read: errno %d (%s)", a[1], err, strerror(err)); return 0; }
    char what[300];
    snprintf(what, sizeof what, "read %s", a[1]);
    show(what, big, (int)n);
    return 0;
}

static int cmd_writefile(char **a) {
    if (!a[1]) return 2;
    int fd = open(a[1], O_WRONLY | O_TRUNC);
    if (fd < 0) { say("writefile %s: open: errno %d (%s)", a[1], errno, strerror(errno)); return 0; }
    ssize_t n = write(fd, "pwned\n", 6);
    int err = errno;
    close(fd);
    if (n < 0) say("writefile %s: write: errno %d (%s)", a[1], err, strerror(err));
    else say("writefile %s: wrote %zd bytes", a[1], n);
    return 0;
}

static int cmd_env(char **a) {
    (void)a;
    for (char **e = environ; e && *e; e++) say("env: %s", *e);
    int n = var_names(big, sizeof big);
    if (n < 0) { say("var_names = %d", n); return 0; }
    static char val[65536];
    for (int i = 0; i < n;) {
        const char *name = big + i;
        int l = strnlen(name, n - i);
        int v = var_get(name, l, val, sizeof val - 1);
        if (v >= 0) { val[v < (int)sizeof val - 1 ? v : (int)sizeof val - 1] = 0; say("var: %.*s=%s", l, name, val); }
        else say("var: %.*s: var_get %d", l, name, v);
        i += l + 1;
    }
    return 0;
}

static int cmd_pwd(char **a) {
    (void)a;
    char d[4096];
    if (!getcwd(d, sizeof d)) { say("pwd: errno %d", errno); return 0; }
    say("pwd: %s", d);
    return 0;
}

static int cmd_sleepwasi(char **a) {
    long long ms = num(a[1], 10000);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    // Slept through whatever happens: an interrupted sleep goes on.
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    say("sleepwasi: slept %lld ms", ms);
    return 0;
}

static int cmd_sleepms(char **a) {
    long long ms = num(a[1], 10000);
    int rc = sleep_ms(ms);
    say("sleepms: sleep_ms(%lld) = %d", ms, rc);
    return 0;
}

static int cmd_sleeploop(char **a) {
    long long n = num(a[1], 10), ms = num(a[2], 1000), canceled = 0;
    for (long long i = 0; i < n; i++) {
        if (sleep_ms(ms) != 0) canceled++;
    }
    say("sleeploop: %lld sleeps, %lld canceled", n, canceled);
    return 0;
}

static int cmd_spin(char **a) {
    (void)a;
    volatile unsigned long long x = 0;
    for (;;) x++;
    return 0;
}

static int cmd_http(char **a) {
    if (!a[1] || !a[2]) return 2;
    char req[2048];
    int n = snprintf(req, sizeof req, "%s %s\r\n\r\n", a[1], a[2]);
    int rc = http_request(req, n, big, sizeof big);
    if (rc < 0) { say("http %s %s: rc %d", a[1], a[2], rc); return 0; }
    int l = 0;
    while (l < rc && l < (int)sizeof big && big[l] != '\r') l++;
    say("http %s %s: rc %d, status %.*s", a[1], a[2], rc, l, big);
    return 0;
}

int main(void) {
    int count = script_count();
    for (int i = 0; i < count; i++) {
        int n = script_line(i, line, sizeof line - 1);
        if (n < 0 || n >= (int)sizeof line) { say("script_line %d = %d", i, n); return 126; }
        line[n] = 0;
        char *argv[16] = {0};
        int argc = 0;
        for (char *t = strtok(line, " "); t && argc < 15; t = strtok(NULL, " ")) argv[argc++] = t;
        if (argc == 0) continue;
        const char *c = argv[0];
        int rc;
        if (!strcmp(c, "echo")) {
            static char out[65536];
            int o = 0;
            for (int k = 1; k < argc; k++) o += snprintf(out + o, sizeof out - o, k > 1 ? " %s" : "%s", argv[k]);
            say("%s", out);
            rc = 0;
        }
        else if (!strcmp(c, "mem")) rc = cmd_mem(argv);
        else if (!strcmp(c, "grow")) rc = cmd_grow(argv);
        else if (!strcmp(c, "openfiles")) rc = cmd_openfiles(argv);
        else if (!strcmp(c, "write")) rc = cmd_write(argv);
        else if (!strcmp(c, "entries")) rc = cmd_entries(argv);
        else if (!strcmp(c, "artdata")) rc = cmd_artdata(argv);
        else if (!strcmp(c, "log")) rc = cmd_log(argv);
        else if (!strcmp(c, "sections")) rc = cmd_sections(argv);
        else if (!strcmp(c, "secret")) rc = cmd_secret(argv);
        else if (!strcmp(c, "read")) rc = cmd_read(argv);
        else if (!strcmp(c, "writefile")) rc = cmd_writefile(argv);
        else if (!strcmp(c, "env")) rc = cmd_env(argv);
        else if (!strcmp(c, "pwd")) rc = cmd_pwd(argv);
        else if (!strcmp(c, "sleepwasi")) rc = cmd_sleepwasi(argv);
        else if (!strcmp(c, "sleepms")) rc = cmd_sleepms(argv);
        else if (!strcmp(c, "sleeploop")) rc = cmd_sleeploop(argv);
        else if (!strcmp(c, "spin")) rc = cmd_spin(argv);
        else if (!strcmp(c, "http")) rc = cmd_http(argv);
        else if (!strcmp(c, "exit")) exit((int)num(argv[1], 0));
        else if (!strcmp(c, "trap")) __builtin_trap();
        else { say("unknown command %s", c); rc = 127; }
        if (rc != 0) return rc;
    }
    return 0;
}
