/*
 * fuzz.h: what the libFuzzer targets share. A target defines FUZZ_NAME
 * (its name, a string literal) before including this.
 */
#ifndef FLM_FUZZ_H
#define FLM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A finding: say what, then abort so that libFuzzer keeps the input. */
#define FAIL(...) do { \
	fprintf(stderr, FUZZ_NAME ": " __VA_ARGS__); \
	fputc('\n', stderr); \
	abort(); \
} while (0)

/* sodium_init(), or a finding. */
static inline void
fuzz_sodium_init(void)
{
	if (sodium_init() < 0)
		FAIL("sodium_init failed");
}

#endif
