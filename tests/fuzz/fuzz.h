/* The libFuzzer entry points every harness defines, shared with the corpus replayer. */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Largest input a harness looks at; longer inputs are cut here, as -max_len would. */
#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: one-time setup before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* FUZZ_VERBOSE=1: harnesses say what became of an input (to check a seed does its job). */
#define fuzz_verbose(...)                                                           \
    do {                                                                            \
        if (getenv("FUZZ_VERBOSE")) {                                               \
            fprintf(stderr, __VA_ARGS__);                                           \
        }                                                                           \
    } while (0)

/* Shared by harnesses: little-endian reads that never run past the input. */
static inline uint64_t fuzz_take(const uint8_t **data, size_t *size, unsigned bytes)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < bytes && *size; i++) {
        v |= (uint64_t)**data << (8 * i);
        (*data)++;
        (*size)--;
    }
    return v;
}

#endif
