// diskfill: a WASI command guest that writes 1 MiB chunks to big.bin in the
// build dir until a write fails, then reports how far it got and why.
#include <errno.h>
#include <stdio.h>
#include <string.h>

static char chunk[1 << 20];

int main(void) {
    memset(chunk, 'x', sizeof chunk);
    FILE *f = fopen("big.bin", "w");
    if (!f) { perror("fopen"); return 2; }
    long mib = 0;
    int err = 0;
    for (;;) {
        if (fwrite(chunk, 1, sizeof chunk, f) != sizeof chunk) { err = errno; break; }
        mib++;
        if (fflush(f) != 0) { err = errno; break; }
    }
    fclose(f);
    printf("wrote %ld MiB\n", mib);
    printf("errno: %s\n", strerror(err));
    return 0;
}
