/* Replays fuzz corpora without libFuzzer: each file of each argument goes through the harness. */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* A harness without one-time setup simply does not define it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static void replay_file(const char *path, unsigned *count)
{
    g_autofree char *buf = NULL;
    gsize len = 0;
    g_autoptr(GError) err = NULL;

    if (!g_file_get_contents(path, &buf, &len, &err)) {
        fprintf(stderr, "replay: %s\n", err->message);
        exit(1);
    }
    /*
     * Hand over an exact-size copy, so that ASan sees a read one past the
     * end as libFuzzer's own buffer would show it.
     */
    len = MIN(len, FUZZ_MAX_INPUT);
    g_autofree uint8_t *exact = g_memdup2(buf, len);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, (size_t)len);
    LLVMFuzzerTestOneInput(exact, len);
    (*count)++;
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_path(const char *path, unsigned *count)
{
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GPtrArray) names = NULL;
    const char *name;

    if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
        replay_file(path, count);
        return;
    }
    dir = g_dir_open(path, 0, NULL);
    if (!dir) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        exit(1);
    }
    /* Sorted, so a failure is reproducible by position as well as by name. */
    names = g_ptr_array_new_with_free_func(g_free);
    while ((name = g_dir_read_name(dir))) {
        if (name[0] != '.') {
            g_ptr_array_add(names, g_build_filename(path, name, NULL));
        }
    }
    g_ptr_array_sort(names, cmp_str);
    for (guint i = 0; i < names->len; i++) {
        replay_file(names->pdata[i], count);
    }
}

int main(int argc, char **argv)
{
    unsigned count = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS-DIR-OR-FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    for (int i = 1; i < argc; i++) {
        replay_path(argv[i], &count);
    }
    /* An empty corpus would make this test pass without testing anything. */
    if (!count) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    printf("replayed %u inputs\n", count);
    return 0;
}
