/* lode-replay: runs fuzz inputs (raw binary, or .ops text) through the
 * harness outside any fuzz engine, each in a child process so that a crash or
 * an abort inside lode still names its input; converts between the two forms.
 *
 *   lode-replay [-v] [--mode sim|real] [--no-fork] [--bench N] FILE|DIR...
 *   lode-replay --to-text IN [OUT]              binary input -> .ops text
 *   lode-replay --to-bin IN [OUT]               .ops text -> canonical binary
 *   lode-replay --dict [OUT]                    the fuzzing dictionary
 *   lode-replay --list-ops                      the operations, one a line
 *
 * Exit status: 0 every input clean, 1 a failure, 2 usage. */
#include "harness.h"

#include <lode.h>

#include "testing.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static _Noreturn void usage_to(FILE* out, int code) {
  fprintf(out,
          "usage: lode-replay [-v] [--mode sim|real] [--no-fork] [--bench N] FILE|DIR...\n"
          "       lode-replay --to-text BINARY-INPUT [OUT.ops]\n"
          "       lode-replay --to-bin INPUT.ops [OUT]\n"
          "       lode-replay --dict [OUT]\n"
          "       lode-replay --list-ops\n"
          "Replays fuzz inputs (files ending in .ops are text, anything else binary;\n"
          "directories recursively, skipping dot files and README/*.md).\n"
          "  -v          print every operation as it runs, with its results\n"
          "  --mode M    sim (default): simulated threads and OS on one OS thread;\n"
          "              real: real pthreads (one running at a time) and the real OS\n"
          "  --no-fork   run inputs in this process (for a debugger); stops at the first failure\n"
          "  --bench N   run each input N times in this process and print runs per second\n"
          "Exit status: 0 clean, 1 failure, 2 usage.\n");
  exit(code);
}

static _Noreturn void usage(void) { usage_to(stderr, 2); }

typedef struct {
  char** items;
  size_t count, cap;
} list_t;

static void list_add(list_t* l, const char* s) {
  if (l->count == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->items = realloc(l->items, l->cap * sizeof(char*));
    if (l->items == NULL) abort();
  }
  l->items[l->count++] = strdup(s);
}

static int cmp_str(const void* a, const void* b) { return strcmp(*(char* const*)a, *(char* const*)b); }

static bool skipped_name(const char* name) {
  size_t n = strlen(name);
  return name[0] == '.' || strncmp(name, "README", 6) == 0 || (n > 3 && strcmp(name + n - 3, ".md") == 0);
}

/* The directories the walk is inside: a symlink back to one of them would
 * make it go round for ever. */
typedef struct walk_s {
  dev_t dev;
  ino_t ino;
  const struct walk_s* up;
} walk_t;

static int collect(const char* path, list_t* out, const walk_t* up) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "lode-replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    list_add(out, path);
    return 0;
  }
  for (const walk_t* w = up; w != NULL; w = w->up) {
    if (w->dev == st.st_dev && w->ino == st.st_ino) {
      fprintf(stderr, "lode-replay: %s: a directory the walk is already inside (a symlink loop): skipped\n", path);
      return 0;
    }
  }
  const walk_t here = {st.st_dev, st.st_ino, up};
  DIR* d = opendir(path);
  if (d == NULL) {
    fprintf(stderr, "lode-replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  list_t names = {0};
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (!skipped_name(e->d_name)) list_add(&names, e->d_name);
  closedir(d);
  if (names.count) qsort(names.items, names.count, sizeof(char*), cmp_str);
  int rc = 0;
  for (size_t i = 0; i < names.count; i++) {
    size_t n = strlen(path) + strlen(names.items[i]) + 2;
    char* child = malloc(n);
    snprintf(child, n, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", names.items[i]);
    if (collect(child, out, &here) != 0) rc = -1;
    free(child);
    free(names.items[i]);
  }
  free(names.items);
  return rc;
}

static uint8_t* read_file(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 4096, n = 0;
  uint8_t* buf = malloc(cap + 1);
  size_t r;
  while (buf != NULL && (r = fread(buf + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
    }
  }
  fclose(f);
  if (buf == NULL) return NULL;
  buf[n] = '\0';
  *len = n;
  return buf;
}

static bool is_text(const char* path) {
  size_t n = strlen(path);
  return n > 4 && strcmp(path + n - 4, ".ops") == 0;
}

static fz_program_t prog;

/* Loads path into prog; -1 with a message on a parse or read error. */
static int load(const char* path, bool text) {
  size_t len = 0;
  uint8_t* data = read_file(path, &len);
  if (data == NULL) {
    fprintf(stderr, "lode-replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  int rc = 0;
  const uint8_t* nul = text ? memchr(data, '\0', len) : NULL;
  if (nul != NULL) {
    /* the parser stops at a NUL: what follows would be dropped unseen */
    fprintf(stderr, "lode-replay: %s: a NUL byte at offset %zu (a text input is ops, one per line)\n", path,
            (size_t)(nul - data));
    rc = -1;
  } else if (text) {
    char err[200];
    if (fz_parse_text((const char*)data, &prog, err, sizeof(err)) != 0) {
      fprintf(stderr, "lode-replay: %s: %s\n", path, err);
      rc = -1;
    }
  } else {
    fz_decode(data, len, &prog);
  }
  free(data);
  return rc;
}

static FILE* open_out(const char* path) {
  if (path == NULL) return stdout;
  FILE* f = fopen(path, "wb");
  if (f == NULL) {
    fprintf(stderr, "lode-replay: %s: %s\n", path, strerror(errno));
    exit(1);
  }
  return f;
}

/* OUT is created only when there is something to write, and removed when
 * writing it failed: a failed conversion leaves no empty or cut file. */
static int convert(bool to_text, const char* in, const char* outpath) {
  if (load(in, !to_text) != 0) return 1;
  static uint8_t buf[FZ_MAX_OPS * 6];
  size_t n = 0;
  if (!to_text) {
    char err[200];
    n = fz_encode(&prog, buf, sizeof(buf), err, sizeof(err));
    if (n == 0 && prog.count > 0) {
      fprintf(stderr, "lode-replay: %s: %s\n", in, err);
      return 1;
    }
  }
  FILE* out = open_out(outpath);
  if (to_text) {
    fprintf(out, "# converted from %s by lode-replay --to-text\n", in);
    fz_write_text(&prog, out);
  } else {
    fwrite(buf, 1, n, out);
  }
  bool bad = ferror(out) != 0;
  if (out == stdout) return fflush(out) != 0 || bad;
  if (fclose(out) != 0 || bad) {
    fprintf(stderr, "lode-replay: %s: write failed\n", outpath);
    remove(outpath);
    return 1;
  }
  return 0;
}

/* --bench N: a whole positive number, nothing after it. */
static bool parse_runs(const char* s, long* out) {
  if (*s < '0' || *s > '9') return false;
  char* end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v <= 0) return false;
  *out = v;
  return true;
}

/* What is wrong, then the usage (exit 2). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static _Noreturn void bad_usage(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("lode-replay: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  usage();
}

int main(int argc, char** argv) {
  bool verbose = false, fork_each = true;
  fz_mode_t mode = FZ_MODE_SIM;
  long bench = 0;
  int i = 1;
  if (argc >= 2 && (strcmp(argv[1], "--to-text") == 0 || strcmp(argv[1], "--to-bin") == 0)) {
    if (argc < 3) bad_usage("%s needs an input file", argv[1]);
    if (argc > 4) bad_usage("%s: unexpected argument '%s'", argv[1], argv[4]);
    return convert(strcmp(argv[1], "--to-text") == 0, argv[2], argc == 4 ? argv[3] : NULL);
  }
  if (argc >= 2 && strcmp(argv[1], "--dict") == 0) {
    if (argc > 3) bad_usage("%s: unexpected argument '%s'", argv[1], argv[3]);
    FILE* out = open_out(argc == 3 ? argv[2] : NULL);
    fz_write_dict(out);
    return out != stdout && fclose(out) != 0;
  }
  bool help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
  if (argc > 2 && (help || strcmp(argv[1], "--list-ops") == 0))
    bad_usage("%s: unexpected argument '%s'", argv[1], argv[2]);
  if (help) usage_to(stdout, 0);
  if (argc == 2 && strcmp(argv[1], "--list-ops") == 0) {
    for (size_t k = 0; k < fz_op_count; k++)
      printf("%-16s %-6s %-11s %s\n", fz_ops[k].name, fz_ops[k].where == FZ_ON_MAIN ? "main" : "worker",
             fz_ops[k].binary ? "binary+text" : "text only", fz_ops[k].doc);
    return 0;
  }
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
    if (strcmp(argv[i], "-v") == 0) verbose = true;
    else if (strcmp(argv[i], "--no-fork") == 0) fork_each = false;
    else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc &&
             (strcmp(argv[i + 1], "sim") == 0 || strcmp(argv[i + 1], "real") == 0)) {
      mode = strcmp(argv[++i], "sim") == 0 ? FZ_MODE_SIM : FZ_MODE_REAL;
    } else if (strcmp(argv[i], "--mode") == 0) {
      fprintf(stderr, "lode-replay: --mode takes sim or real\n");
      usage();
    }
    else if (strcmp(argv[i], "--bench") == 0) {
      if (i + 1 >= argc) bad_usage("%s needs a number of runs", argv[i]);
      if (!parse_runs(argv[i + 1], &bench))
        bad_usage("%s: bad number of runs '%s' (a whole number > 0)", argv[i], argv[i + 1]);
      fork_each = false;
      i++;
    }
    else if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--list-ops") == 0 ||
               strcmp(argv[i], "--to-text") == 0 || strcmp(argv[i], "--to-bin") == 0 || strcmp(argv[i], "--dict") == 0) {
      bad_usage("%s goes first, without the replay options", argv[i]);
    } else {
      fprintf(stderr, "lode-replay: unknown option '%s'\n", argv[i]);
      usage();
    }
  }
  if (i >= argc) usage();
  list_t files = {0};
  int status = 0;
  for (; i < argc; i++)
    if (collect(argv[i], &files, NULL) != 0) status = 1;

  char quoted[4200], replay_cmd[sizeof(quoted) + 4];
  fz_shell_quote(argv[0], quoted, sizeof(quoted));
  snprintf(replay_cmd, sizeof(replay_cmd), "%s -v", quoted);
  fz_config_t cfg = {.fail_mode = FZ_FAIL_EXIT, .mode = mode, .verbose = verbose, .replay_cmd = replay_cmd};
  if (verbose) setvbuf(stdout, NULL, _IONBF, 0); /* a crash mid-op keeps the trace */
  if (!fz_init(&cfg)) return 2;
  fz_install_crash_report();

  size_t failed = 0;
  for (size_t k = 0; k < files.count; k++) {
    const char* path = files.items[k];
    fz_set_input_name(path);
    if (verbose) printf("== %s\n", path);
    fflush(stdout);
    if (load(path, is_text(path)) != 0) {
      failed++;
      status = 1;
      continue;
    }
    if (bench > 0) {
      struct timespec t0, t1;
      fz_run(&prog); /* warm: the first run maps what the others recycle */
      lode_stats_t st0, st1;
      lode_sim_os_stats_t so0, so1;
      lode_stats_get(&st0);
      lode_sim_os_stats(&so0);
      clock_gettime(CLOCK_MONOTONIC, &t0);
      for (long r = 0; r < bench; r++) fz_run(&prog);
      clock_gettime(CLOCK_MONOTONIC, &t1);
      lode_stats_get(&st1);
      lode_sim_os_stats(&so1);
      double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, n = (double)bench;
      printf("%s: %zu ops, %s mode, %ld runs in %.3f s: %.0f runs/s, %.0f ops/s\n", path, prog.count,
             fz_mode_name(mode), bench, secs, n / secs, n * (double)prog.count / secs);
      printf("  per run: mmap %.1f munmap %.1f purge %.1f commit %.1f; simulated OS: reserve %.1f, "
             "zeroed %.0f KiB, poisoned %.0f KiB\n",
             (double)(st1.mmaps - st0.mmaps) / n, (double)(st1.munmaps - st0.munmaps) / n,
             (double)(st1.purges - st0.purges) / n, (double)(st1.commits - st0.commits) / n,
             (double)(so1.reserves - so0.reserves) / n, (double)(so1.zeroed_bytes - so0.zeroed_bytes) / n / 1024,
             (double)(so1.poisoned_bytes - so0.poisoned_bytes) / n / 1024);
      continue;
    }
    if (!fork_each) {
      fz_run(&prog); /* a failure exits 1 from inside */
      continue;
    }
    pid_t pid = fork();
    if (pid < 0) {
      perror("lode-replay: fork");
      return 1;
    }
    if (pid == 0) {
      fz_run(&prog);
      fflush(stdout);
      _exit(0);
    }
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) continue;
    failed++;
    status = 1;
    if (WIFSIGNALED(ws))
      fprintf(stderr, "lode-replay: FAIL %s: killed by signal %d\n", path, WTERMSIG(ws));
    else
      fprintf(stderr, "lode-replay: FAIL %s: exit status %d\n", path, WEXITSTATUS(ws));
    fz_shell_quote(path, quoted, sizeof(quoted));
    fprintf(stderr, "lode-replay: replay with: %s%s %s\n", replay_cmd, mode == FZ_MODE_REAL ? " --mode real" : "", quoted);
  }
  printf("lode-replay: %zu input(s), %zu failed (%s mode)\n", files.count, failed, fz_mode_name(mode));
  return status;
}
