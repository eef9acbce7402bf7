/* AFL++ engine: persistent mode with the test case in shared memory
 * (__AFL_FUZZ_INIT / __AFL_LOOP / __AFL_FUZZ_TESTCASE_BUF, defined by
 * afl-clang-fast).  The fork server starts after fz_init (deferred init), when
 * no worker thread exists.  Built by any other compiler the file still
 * compiles, and then runs the one input named on the command line (or stdin)
 * once, which is how a crash is reproduced outside afl-fuzz. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LODE_REPLAY_BIN
#define LODE_REPLAY_BIN "lode-replay"
#endif

#ifdef __AFL_FUZZ_TESTCASE_LEN
__AFL_FUZZ_INIT();
#endif

int main(int argc, char** argv) {
  /* The simulation by default; LODE_FUZZ_MODE=real runs real threads and the real OS. */
  const char* m = getenv("LODE_FUZZ_MODE");
  fz_config_t cfg = {.fail_mode = FZ_FAIL_ABORT,
                     .mode = m != NULL && strcmp(m, "real") == 0 ? FZ_MODE_REAL : FZ_MODE_SIM,
                     .verbose = false,
                     .replay_cmd = fz_replay_command(LODE_REPLAY_BIN)};
  if (!fz_init(&cfg)) exit(2);
#ifdef __AFL_FUZZ_TESTCASE_LEN
  (void)argc;
  (void)argv;
#ifdef __AFL_HAVE_MANUAL_CONTROL
  __AFL_INIT();
#endif
  unsigned char* buf = __AFL_FUZZ_TESTCASE_BUF;
  while (__AFL_LOOP(100000)) {
    size_t len = (size_t)__AFL_FUZZ_TESTCASE_LEN;
    fz_run_bytes(buf, len);
  }
  return 0;
#else
  FILE* in = stdin;
  if (argc > 2) {
    fprintf(stderr, "usage: %s [INPUT]   (reads stdin without INPUT)\n", argv[0]);
    return 2;
  }
  if (argc == 2 && (in = fopen(argv[1], "rb")) == NULL) {
    perror(argv[1]);
    return 1;
  }
  static uint8_t data[FZ_MAX_OPS * 8];
  size_t len = fread(data, 1, sizeof(data), in);
  if (in != stdin) fclose(in);
  if (argc == 2) fz_set_input_name(argv[1]);
  fz_run_bytes(data, len);
  return 0;
#endif
}
