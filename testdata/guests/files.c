// files: a WASI command guest that tries to reach files. For each path in
// READ (colon-separated) it prints the file's first line or the error; for
// each path in WRITE it tries to write "overwritten" to it. It also prints
// its working directory's view of CI_PROJECT_DIR and CI_BUILDS_DIR.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void each(const char *list, void (*f)(const char *)) {
    if (!list) return;
    char buf[4096];
    strncpy(buf, list, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    for (char *p = strtok(buf, ":"); p; p = strtok(NULL, ":")) f(p);
}

static void readOne(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { printf("read %s: %s\n", path, strerror(errno)); return; }
    char line[256] = "";
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    line[strcspn(line, "\n")] = 0;
    printf("read %s: %s\n", path, line);
    fclose(f);
}

static void writeOne(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) { printf("write %s: %s\n", path, strerror(errno)); return; }
    int ok = fputs("overwritten\n", f) >= 0;
    ok = fclose(f) == 0 && ok;
    printf("write %s: %s\n", path, ok ? "done" : strerror(errno));
}

int main(void) {
    const char *vars[] = {"CI_PROJECT_DIR", "CI_BUILDS_DIR"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(vars[i]);
        printf("%s=%s\n", vars[i], v ? v : "(unset)");
    }
    each(getenv("READ"), readOne);
    each(getenv("WRITE"), writeOne);
    return 0;
}
