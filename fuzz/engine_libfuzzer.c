/* libFuzzer engine: the harness core behind LLVMFuzzerTestOneInput.  Built
 * with -fsanitize=fuzzer,address,undefined; lode's sources are compiled into
 * the same binary with the same instrumentation.  A failure aborts (the crash
 * is libFuzzer's signal) after printing the op and the lode-replay command. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#ifndef LODE_REPLAY_BIN
#define LODE_REPLAY_BIN "lode-replay"
#endif

int LLVMFuzzerInitialize(int* argc, char*** argv);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  (void)argv;
  /* The simulation by default; LODE_FUZZ_MODE=real runs real threads and the real OS. */
  const char* m = getenv("LODE_FUZZ_MODE");
  fz_config_t cfg = {.fail_mode = FZ_FAIL_ABORT,
                     .mode = m != NULL && strcmp(m, "real") == 0 ? FZ_MODE_REAL : FZ_MODE_SIM,
                     .verbose = false,
                     .replay_cmd = fz_replay_command(LODE_REPLAY_BIN)};
  if (!fz_init(&cfg)) exit(2);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz_run_bytes(data, size);
  return 0;
}
