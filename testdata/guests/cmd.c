// cmd: a WASI command guest. It prints its environment's GREETING, writes
// out/c.txt in the build dir (its "/"), lists the build dir, and exits with
// the code in EXIT_CODE (default 0).
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int main(void) {
    const char *g = getenv("GREETING");
    printf("greeting from C: %s\n", g ? g : "(unset)");
    const char *hidden = getenv("HIDDEN_VAR");
    printf("hidden: %s\n", hidden ? hidden : "(unset)");
    mkdir("out", 0755);
    FILE *f = fopen("out/c.txt", "w");
    if (!f) { perror("fopen"); return 2; }
    fputs("written by C\n", f);
    fclose(f);
    DIR *d = opendir(".");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] != '.') printf("entry: %s\n", e->d_name);
        }
        closedir(d);
    }
    const char *cfg = getenv("CONFIG_FILE");
    if (cfg) {
        FILE *c = fopen(cfg, "r");
        if (!c) { printf("config file %s: cannot open\n", cfg); return 3; }
        char line[256];
        while (fgets(line, sizeof line, c)) printf("config: %s", line);
        fclose(c);
    }
    fprintf(stderr, "to stderr\n");
    const char *code = getenv("EXIT_CODE");
    return code ? atoi(code) : 0;
}
