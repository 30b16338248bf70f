// manyfiles: a WASI command guest that creates empty files f0..f9999 in the
// build dir until one cannot be created, then reports how many it made and
// why it stopped.
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    int n, err = 0;
    char name[16];
    for (n = 0; n < 10000; n++) {
        snprintf(name, sizeof name, "f%d", n);
        FILE *f = fopen(name, "w");
        if (!f) { err = errno; break; }
        fclose(f);
    }
    printf("created %d files\n", n);
    if (err) printf("errno: %s\n", strerror(err));
    return 0;
}
