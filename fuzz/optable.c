/* The operation table and everything that follows from it: the binary
 * decoder (robust to any byte string), the canonical encoder, the readable
 * .ops text form both ways and the fuzzing dictionary.  A new operation is
 * one row here and one function in ops.c.
 *
 * Binary form: an opcode byte, then each argument's bytes.  Opcode byte:
 * bits 0-4 the operation (modulo the operations that have a binary form),
 * bits 5-6 the thread t0..t3, bit 7 the "force" flag of collect; fail-os,
 * a main op, has bits 5-7 for which OS operations fail.  A truncated last
 * op is dropped.
 *
 * Text form: one op per line, `#` comments:  [tN] NAME ARG... [-> sK]  */
#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define W FZ_ON_WORKER
#define M FZ_ON_MAIN
/* Rows with a binary form come first: the opcode indexes them. */
const fz_op_desc_t fz_ops[] = {
    {"malloc", {FZ_A_SIZE, FZ_A_OUT}, W, true, fz_op_malloc, "a block of SIZE bytes into slot K"},
    {"calloc", {FZ_A_COUNT, FZ_A_SIZE, FZ_A_OUT}, W, true, fz_op_calloc, "COUNT x SIZE zeroed bytes (zeros checked)"},
    {"impossible", {FZ_A_OUT}, W, true, fz_op_impossible,
     "by K mod 6: calloc overflow, malloc, aligned_alloc, posix_memalign or realloc of slot K to SIZE_MAX/2, "
     "aligned_alloc(48, 64): NULL, ENOMEM (EINVAL), nothing changed"},
    {"realloc", {FZ_A_SLOT, FZ_A_SIZE}, W, true, fz_op_realloc, "resize slot K (its prefix kept); an empty slot: malloc"},
    {"aligned-alloc", {FZ_A_ALIGN, FZ_A_SIZE, FZ_A_OUT}, W, true, fz_op_aligned, "SIZE bytes aligned to ALIGN"},
    {"free", {FZ_A_SLOT}, W, true, fz_op_free, "free slot K (its contents checked first)"},
    {"heap-new", {FZ_A_HEAP}, W, true, fz_op_heap_new, "a heap of the acting thread as hN"},
    {"heap-malloc", {FZ_A_HEAP, FZ_A_SIZE, FZ_A_OUT}, W, true, fz_op_heap_malloc, "SIZE bytes from hN (its owner only)"},
    {"heap-delete", {FZ_A_HEAP}, W, true, fz_op_heap_delete, "delete hN: its blocks move to the default heap"},
    {"heap-destroy", {FZ_A_HEAP}, W, true, fz_op_heap_destroy, "destroy hN: exactly its blocks die"},
    {"collect", {FZ_A_FORCE}, W, true, fz_op_collect, "lode_collect(false), or (force) lode_collect(true)"},
    {"exit", {0}, W, true, fz_op_exit, "the thread exits: lode's thread exit abandons its segments"},
    {"clock", {FZ_A_MS}, M, true, fz_op_clock, "advance the virtual clock by MS"},
    {"purge-delay", {FZ_A_DELAY}, M, true, fz_op_purge_delay, "set LODE_OPTION_PURGE_DELAY"},
    {"fail-os", {FZ_A_FAILS}, M, true, fz_op_fail_os,
     "the next N OS reserve/commit/mremap calls fail (`after K`: once K more succeeded); with a word first, those "
     "of purge, discard, reset, protect, unmap, map (the segment map's), or any"},
    {"bad-free", {FZ_A_SLOT, FZ_A_OFFSET}, W, true, fz_op_bad_free,
     "free a pointer inside slot K: lode must report it and change nothing"},
    {"bad-realloc", {FZ_A_SLOT, FZ_A_OFFSET}, W, true, fz_op_bad_realloc,
     "realloc a pointer inside slot K: reported, NULL with EINVAL, nothing changed"},
    {"bad-usable-size", {FZ_A_SLOT, FZ_A_OFFSET}, W, true, fz_op_bad_usable,
     "malloc_usable_size of a pointer inside slot K: reported, 0"},
    {"double-free", {FZ_A_SLOT}, W, true, fz_op_double_free,
     "free slot K on the thread that owns its page, then realloc, malloc_usable_size and free it: each is reported "
     "and refused; an empty slot: its last block again, by any thread, once that block's page went back (reported)"},
    {"foreign-free", {FZ_A_FOREIGN}, W, true, fz_op_foreign_free,
     "free a pointer lode never handed out (stack, global, libc, a segment header): reported"},
    {"option", {FZ_A_OPTION}, M, true, fz_op_option, "set an option to an extreme (or invalid: refused) value"},
    {"posix-memalign", {FZ_A_ALIGN, FZ_A_SIZE, FZ_A_OUT}, W, true, fz_op_posix_memalign,
     "lode_posix_memalign: SIZE bytes aligned to ALIGN"},
    {"reallocarray", {FZ_A_SLOT, FZ_A_COUNT, FZ_A_SIZE}, W, true, fz_op_reallocarray,
     "resize slot K to COUNT x SIZE (and once in a while a product that overflows: NULL, the block kept)"},
    {"heap-calloc", {FZ_A_HEAP, FZ_A_COUNT, FZ_A_SIZE, FZ_A_OUT}, W, true, fz_op_heap_calloc,
     "COUNT x SIZE zeroed bytes from hN"},
    {"heap-realloc", {FZ_A_HEAP, FZ_A_SLOT, FZ_A_SIZE}, W, true, fz_op_heap_realloc,
     "resize slot K with hN (a moved block comes from hN)"},
    {"heap-collect", {FZ_A_HEAP, FZ_A_FORCE}, W, true, fz_op_heap_collect, "lode_heap_collect(hN[, force])"},
    {"park", {FZ_A_POINT}, W, true, fz_op_park,
     "the thread's next op stops at the test point; the ops after it run meanwhile"},
    {"resume", {0}, W, true, fz_op_resume, "a parked op goes on to its end"},
    {"heap-aligned-alloc", {FZ_A_HEAP, FZ_A_ALIGN, FZ_A_SIZE, FZ_A_OUT}, W, true, fz_op_heap_aligned,
     "SIZE bytes aligned to ALIGN from hN (its owner only)"},
    {"option-text", {FZ_A_TEXT}, M, true, fz_op_option_text,
     "lode_option_set_text: a number, a name or garbage, as the environment gives it; refused ones change nothing"},
    {"stats", {0}, W, true, fz_op_stats, "lode_stats_print_fd: every number printed is lode_stats_get's"},
    {"exit-malloc", {FZ_A_SIZE, FZ_A_OUT}, W, true, fz_op_exit_malloc,
     "the thread exits, then a pthread key destructor of its last round allocates SIZE into slot K (K % 5: "
     "malloc, calloc, aligned_alloc(64), realloc(NULL), lode_heap_malloc(lode_heap_get_default()))"},
    /* Text only: a fork costs 15 ms or more here (the child's copy and exit of
     * the fuzz process), an input without one 0.2-3 ms: the engines would
     * fork in nearly every input and run 20 inputs/s.  Corpus inputs fork at
     * the moments that matter; the stress fork workload forks at random. */
    {"fork", {0}, W, false, fz_op_fork,
     "the thread forks (once per input); the child checks, frees every slot, allocates, collects, checks, exits"},
    /* Text only: deliberately wrong, to prove the oracle fires. */
    {"raw-double-free", {FZ_A_SLOT}, W, false, fz_op_raw_double_free,
     "free slot K twice without telling the oracle (it must report lode's error)"},
    {"overflow", {FZ_A_SLOT, FZ_A_N}, W, false, fz_op_overflow, "write N bytes past slot K's requested size"},
    {"scribble", {FZ_A_SLOT, FZ_A_OFF, FZ_A_N}, W, false, fz_op_scribble, "overwrite N bytes at OFF inside slot K"},
};
#undef W
#undef M
const size_t fz_op_count = sizeof(fz_ops) / sizeof(fz_ops[0]);

static size_t binary_count(void) {
  static size_t n;
  if (n == 0)
    while (n < fz_op_count && fz_ops[n].binary) n++;
  return n;
}

int fz_op_lookup(const char* name) {
  for (size_t i = 0; i < fz_op_count; i++)
    if (strcmp(fz_ops[i].name, name) == 0) return (int)i;
  return -1;
}

/* --- option values ------------------------------------------------------------- */
typedef struct {
  const char* name;
  long values[8];
  int nvalues;
} fz_option_desc_t;
/* lode_option_t values (lode.h) of the options the fuzzer sets, and their
 * values worth trying: the extremes of their ranges, just beyond them (lode
 * must refuse those), and the usual ones. */
static const fz_option_desc_t option_table[] = {
    {"purge-delay", {LONG_MIN, -1, 0, 1, 10, 1000, LONG_MAX - 1, LONG_MAX}, 8},
    {"purge-mode", {-1, 0, 1, 2, 3}, 5},
    {"purge-backoff", {-1, 0, 1, 6, 16, 17}, 6},
};
#define OPTION_KINDS (int)(sizeof(option_table) / sizeof(option_table[0]))

const char* fz_option_name(int id) { return option_table[id].name; }

/* --- sizes ----------------------------------------------------------------------
 * A 16-bit code, biased as programs allocate: each class takes a range of
 * codes and scales it by a step.  81 % of the codes are sizes up to 1 KiB,
 * 12.5 % up to 8 KiB, 4.7 % up to 48 KiB, 1.2 % up to 768 KiB (medium and
 * large blocks), 0.3 % up to 3.5 MiB, 0.05 % up to 7.75 MiB (huge).  Large
 * and huge blocks cost what hundreds of small ops cost, and programs make
 * few. */
static const struct {
  uint16_t first, end; /* codes [first, end) */
  uint8_t shift;       /* size = (code - first) << shift, but the first class wraps */
} size_classes[] = {
    {0x0000, 0xd000, 0},  /* (code & 0x3ff): 0 .. 1023 */
    {0xd000, 0xf000, 0},  /* 0 .. 8191 */
    {0xf000, 0xfc00, 4},  /* 0 .. 48 KiB */
    {0xfc00, 0xff00, 10}, /* 0 .. 767 KiB */
    {0xff00, 0xffe0, 14}, /* 0 .. 3.5 MiB */
    {0xffe0, 0xffff, 18}, /* 0 .. 7.5 MiB (the last code too: below) */
};
#define SIZE_CLASSES (sizeof(size_classes) / sizeof(size_classes[0]))

uint32_t fz_size_decode(uint16_t code) {
  if (code < 0xd000) return code & 0x3ffu;
  for (size_t i = 1; i < SIZE_CLASSES; i++)
    if (code < size_classes[i].end || i + 1 == SIZE_CLASSES)
      return (uint32_t)(code - size_classes[i].first) << size_classes[i].shift;
  return 0;
}

static bool size_encode(uint32_t size, uint16_t* code) {
  if (size <= 0x3ff) {
    *code = (uint16_t)size;
    return true;
  }
  for (size_t i = 1; i < SIZE_CLASSES; i++) {
    uint32_t step = (uint32_t)1 << size_classes[i].shift;
    uint32_t n = size >> size_classes[i].shift, last = (uint32_t)(size_classes[i].end - size_classes[i].first);
    if (i + 1 == SIZE_CLASSES) last++; /* 0xffff */
    if (size % step == 0 && n < last) {
      *code = (uint16_t)(size_classes[i].first + n);
      return true;
    }
  }
  return false;
}

bool fz_size_encodable(uint32_t size) {
  uint16_t c;
  return size_encode(size, &c);
}

/* --- per-argument codecs -------------------------------------------------------- */
static const uint8_t arg_bytes[FZ_A_KINDS] = {
    [FZ_A_SLOT] = 1, [FZ_A_OUT] = 1,    [FZ_A_SIZE] = 2,    [FZ_A_HEAP] = 1,    [FZ_A_ALIGN] = 1,
    [FZ_A_COUNT] = 1, [FZ_A_MS] = 2,    [FZ_A_DELAY] = 2,   [FZ_A_FAILS] = 1,   [FZ_A_FORCE] = 0,
    [FZ_A_OFFSET] = 2, [FZ_A_FOREIGN] = 1, [FZ_A_POINT] = 1, [FZ_A_OPTION] = 2,
    [FZ_A_TEXT] = 2,
};

static uint16_t rd16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static void decode_arg(fz_arg_t a, const uint8_t* b, fz_op_t* op) {
  switch (a) {
    case FZ_A_SLOT:
    case FZ_A_OUT: op->slot = b[0] & (FZ_SLOTS - 1); break;
    case FZ_A_SIZE: op->size = fz_size_decode(rd16(b)); break;
    case FZ_A_HEAP: op->heap = b[0] & (FZ_HEAPS - 1); break;
    case FZ_A_ALIGN: op->align_log = (uint8_t)(FZ_ALIGN_LOG_MIN + b[0] % (FZ_ALIGN_LOG_MAX - FZ_ALIGN_LOG_MIN + 1)); break;
    case FZ_A_COUNT: op->count = (uint8_t)(1 + (b[0] & 15)); break;
    case FZ_A_MS: op->value = rd16(b); break;
    case FZ_A_DELAY: op->value = (int16_t)rd16(b); break;
    case FZ_A_FAILS:
      op->count = b[0] & FZ_MAX_FAIL_OS;
      op->skip = (uint8_t)(b[0] >> 4);
      break;
    case FZ_A_OFFSET: op->offset = rd16(b); break;
    case FZ_A_FOREIGN: op->foreign = (uint8_t)(b[0] % fz_foreign_count()); break;
    case FZ_A_POINT: op->point = (uint8_t)(b[0] % fz_point_count()); break;
    case FZ_A_OPTION: {
      op->option = (uint8_t)(b[0] % OPTION_KINDS);
      const fz_option_desc_t* d = &option_table[op->option];
      op->value = d->values[b[1] % d->nvalues];
      break;
    }
    case FZ_A_TEXT:
      op->option = (uint8_t)(b[0] % fz_text_option_count());
      op->text = (uint8_t)(b[1] % fz_text_count());
      break;
    default: break;
  }
}

static bool encode_arg(fz_arg_t a, const fz_op_t* op, uint8_t* b, char* err, size_t errcap) {
  switch (a) {
    case FZ_A_SLOT:
    case FZ_A_OUT: b[0] = op->slot; return true;
    case FZ_A_SIZE: {
      uint16_t c;
      if (!size_encode(op->size, &c)) {
        snprintf(err, errcap,
                 "size %u has no binary form (<= 8191, or a multiple of 16 below 48 KiB, of 1 KiB below 768 KiB, "
                 "of 16 KiB below 3.5 MiB, of 256 KiB below 8 MiB)",
                 op->size);
        return false;
      }
      b[0] = (uint8_t)c;
      b[1] = (uint8_t)(c >> 8);
      return true;
    }
    case FZ_A_HEAP: b[0] = op->heap; return true;
    case FZ_A_ALIGN: b[0] = (uint8_t)(op->align_log - FZ_ALIGN_LOG_MIN); return true;
    case FZ_A_COUNT: b[0] = (uint8_t)(op->count - 1); return true;
    case FZ_A_MS:
    case FZ_A_DELAY:
      b[0] = (uint8_t)((uint64_t)op->value & 0xff);
      b[1] = (uint8_t)(((uint64_t)op->value >> 8) & 0xff);
      return true;
    case FZ_A_FAILS: b[0] = (uint8_t)(op->skip << 4 | op->count); return true;
    case FZ_A_OFFSET:
      b[0] = (uint8_t)op->offset;
      b[1] = (uint8_t)(op->offset >> 8);
      return true;
    case FZ_A_FOREIGN: b[0] = op->foreign; return true;
    case FZ_A_POINT: b[0] = op->point; return true;
    case FZ_A_TEXT:
      b[0] = op->option;
      b[1] = op->text;
      return true;
    case FZ_A_OPTION: {
      const fz_option_desc_t* d = &option_table[op->option];
      for (int i = 0; i < d->nvalues; i++) {
        if (d->values[i] == op->value) {
          b[0] = op->option;
          b[1] = (uint8_t)i;
          return true;
        }
      }
      snprintf(err, errcap, "option %s value %lld has no binary form", d->name, (long long)op->value);
      return false;
    }
    default: return true;
  }
}

void fz_decode(const uint8_t* data, size_t size, fz_program_t* out) {
  size_t pos = 0, nbin = binary_count();
  out->count = 0;
  while (pos < size && out->count < FZ_MAX_OPS) {
    uint8_t b = data[pos];
    unsigned kind = (b & 31u) % nbin;
    const fz_op_desc_t* d = &fz_ops[kind];
    size_t len = 0;
    for (int i = 0; i < FZ_MAX_ARGS && d->args[i]; i++) len += arg_bytes[d->args[i]];
    if (pos + 1 + len > size) break; /* truncated last op */
    fz_op_t op;
    memset(&op, 0, sizeof(op));
    op.kind = (uint8_t)kind;
    op.thread = d->where == FZ_ON_MAIN ? FZ_MAIN : (uint8_t)((b >> 5) & 3);
    const uint8_t* a = data + pos + 1;
    for (int i = 0; i < FZ_MAX_ARGS && d->args[i]; i++) {
      if (d->args[i] == FZ_A_FORCE) op.flag = b >> 7;
      if (d->args[i] == FZ_A_FAILS) op.osop = (uint8_t)(b >> 5);
      decode_arg((fz_arg_t)d->args[i], a, &op);
      a += arg_bytes[d->args[i]];
    }
    pos += 1 + len;
    out->ops[out->count++] = op;
  }
}

size_t fz_encode(const fz_program_t* prog, uint8_t* buf, size_t cap, char* err, size_t errcap) {
  size_t pos = 0;
  char why[160];
  for (size_t i = 0; i < prog->count; i++) {
    const fz_op_t* op = &prog->ops[i];
    const fz_op_desc_t* d = &fz_ops[op->kind];
    if (!d->binary) {
      snprintf(err, errcap, "op #%zu (%s) is text only: it has no binary form", i + 1, d->name);
      return 0;
    }
    if (pos + 1 + 2 * FZ_MAX_ARGS > cap) {
      snprintf(err, errcap, "output buffer too small");
      return 0;
    }
    unsigned thread = d->where == FZ_ON_MAIN ? 0 : op->thread;
    unsigned high = (thread << 5) | (op->flag ? 0x80 : 0);
    for (int k = 0; k < FZ_MAX_ARGS && d->args[k]; k++)
      if (d->args[k] == FZ_A_FAILS) high = (unsigned)(op->osop % FZ_OSOPS) << 5;
    buf[pos++] = (uint8_t)(op->kind | high);
    for (int k = 0; k < FZ_MAX_ARGS && d->args[k]; k++) {
      if (!encode_arg((fz_arg_t)d->args[k], op, buf + pos, why, sizeof(why))) {
        snprintf(err, errcap, "op #%zu (%s): %s", i + 1, d->name, why);
        return 0;
      }
      pos += arg_bytes[d->args[k]];
    }
  }
  return pos;
}

/* --- text ------------------------------------------------------------------------- */
static size_t format_arg(fz_arg_t a, const fz_op_t* op, char* buf, size_t cap) {
  switch (a) {
    case FZ_A_SLOT: return (size_t)snprintf(buf, cap, " s%u", op->slot);
    case FZ_A_OUT: return (size_t)snprintf(buf, cap, " -> s%u", op->slot);
    case FZ_A_SIZE:
    case FZ_A_N: return (size_t)snprintf(buf, cap, " %u", op->size);
    case FZ_A_HEAP: return (size_t)snprintf(buf, cap, " h%u", op->heap);
    case FZ_A_ALIGN: return (size_t)snprintf(buf, cap, " %lu", 1ul << op->align_log);
    case FZ_A_COUNT: return (size_t)snprintf(buf, cap, " %u", op->count);
    case FZ_A_FAILS: {
      const char* ops = fz_osop_names[op->osop % FZ_OSOPS];
      return op->skip ? (size_t)snprintf(buf, cap, "%s%s %u after %u", *ops ? " " : "", ops, op->count, op->skip)
                      : (size_t)snprintf(buf, cap, "%s%s %u", *ops ? " " : "", ops, op->count);
    }
    case FZ_A_MS: return (size_t)snprintf(buf, cap, " +%lld", (long long)op->value);
    case FZ_A_DELAY:
    case FZ_A_OFF: return (size_t)snprintf(buf, cap, " %lld", (long long)op->value);
    case FZ_A_FORCE: return op->flag ? (size_t)snprintf(buf, cap, " force") : 0;
    case FZ_A_OFFSET:
      return op->offset & 0x8000 ? (size_t)snprintf(buf, cap, " aligned%u", op->offset & 0x7fff)
                                 : (size_t)snprintf(buf, cap, " %u", op->offset);
    case FZ_A_FOREIGN: return (size_t)snprintf(buf, cap, " %s", fz_foreign_name(op->foreign));
    case FZ_A_POINT: return (size_t)snprintf(buf, cap, " %s", fz_point_name(op->point));
    case FZ_A_TEXT:
      return (size_t)snprintf(buf, cap, " %s %s", fz_text_option_name(op->option), fz_text_alias(op->text));
    case FZ_A_OPTION: {
      const char* n = option_table[op->option].name;
      if (op->value == LONG_MAX) return (size_t)snprintf(buf, cap, " %s max", n);
      if (op->value == LONG_MIN) return (size_t)snprintf(buf, cap, " %s min", n);
      return (size_t)snprintf(buf, cap, " %s %lld", n, (long long)op->value);
    }
    default: return 0;
  }
}

void fz_format_op(const fz_op_t* op, char* buf, size_t cap) {
  const fz_op_desc_t* d = &fz_ops[op->kind];
  size_t n = d->where == FZ_ON_MAIN ? (size_t)snprintf(buf, cap, "%s", d->name)
                                    : (size_t)snprintf(buf, cap, "t%u %s", op->thread, d->name);
  for (int i = 0; i < FZ_MAX_ARGS && d->args[i] && n < cap; i++) n += format_arg((fz_arg_t)d->args[i], op, buf + n, cap - n);
}

void fz_write_text(const fz_program_t* prog, FILE* out) {
  char line[160];
  for (size_t i = 0; i < prog->count; i++) {
    fz_format_op(&prog->ops[i], line, sizeof(line));
    fprintf(out, "%s\n", line);
  }
}

/* "<prefix><number>" with min <= number <= max. */
static bool parse_num(const char* s, const char* prefix, long long min, long long max, long long* out) {
  if (s == NULL) return false;
  size_t pl = strlen(prefix);
  if (strncmp(s, prefix, pl) != 0) return false;
  s += pl;
  if (*s == '\0') return false;
  char* end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

typedef struct {
  char* tok[10];
  int n, at;
} toks_t;

static const char* next_tok(toks_t* t) { return t->at < t->n ? t->tok[t->at++] : NULL; }

/* Parses one argument; NULL, or what was expected. */
static const char* parse_arg(fz_arg_t a, toks_t* t, fz_op_t* op) {
  long long v;
  const char* w;
  switch (a) {
    case FZ_A_SLOT:
      if (!parse_num(next_tok(t), "s", 0, FZ_SLOTS - 1, &v)) return "a slot s0..s63";
      op->slot = (uint8_t)v;
      return NULL;
    case FZ_A_OUT:
      w = next_tok(t);
      if (w == NULL || strcmp(w, "->") != 0) return "'->'";
      if (!parse_num(next_tok(t), "s", 0, FZ_SLOTS - 1, &v)) return "a slot s0..s63 after '->'";
      op->slot = (uint8_t)v;
      return NULL;
    case FZ_A_SIZE:
      if (!parse_num(next_tok(t), "", 0, FZ_SIZE_MAX, &v)) return "a size 0..8388608";
      op->size = (uint32_t)v;
      return NULL;
    case FZ_A_N:
      if (!parse_num(next_tok(t), "", 1, 1 << 22, &v)) return "a byte count 1..4194304";
      op->size = (uint32_t)v;
      return NULL;
    case FZ_A_OFF:
      if (!parse_num(next_tok(t), "", 0, 1 << 22, &v)) return "an offset 0..4194304";
      op->value = v;
      return NULL;
    case FZ_A_HEAP:
      if (!parse_num(next_tok(t), "h", 0, FZ_HEAPS - 1, &v)) return "a heap h0..h7";
      op->heap = (uint8_t)v;
      return NULL;
    case FZ_A_ALIGN:
      if (!parse_num(next_tok(t), "", 1LL << FZ_ALIGN_LOG_MIN, 1LL << FZ_ALIGN_LOG_MAX, &v) || (v & (v - 1)) != 0)
        return "an alignment, a power of two from 16 to 1048576";
      op->align_log = (uint8_t)__builtin_ctzll((unsigned long long)v);
      return NULL;
    case FZ_A_COUNT:
      if (!parse_num(next_tok(t), "", 1, 16, &v)) return "a count 1..16";
      op->count = (uint8_t)v;
      return NULL;
    case FZ_A_FAILS:
      w = next_tok(t);
      for (unsigned k = 1; w != NULL && k < FZ_OSOPS; k++)
        if (strcmp(w, fz_osop_names[k]) == 0) {
          op->osop = (uint8_t)k;
          w = next_tok(t);
          break;
        }
      if (!parse_num(w, "", 0, FZ_MAX_FAIL_OS, &v))
        return "[purge|discard|reset|protect|unmap|map|any] then a count 0..15";
      op->count = (uint8_t)v;
      w = next_tok(t);
      if (w == NULL) return NULL;
      if (strcmp(w, "after") != 0 || !parse_num(next_tok(t), "", 0, FZ_MAX_FAIL_OS, &v))
        return "a count 0..15, then nothing or 'after K' (0..15)";
      op->skip = (uint8_t)v;
      return NULL;
    case FZ_A_MS:
      w = next_tok(t);
      if (w == NULL || w[0] != '+' || !parse_num(w + 1, "", 0, 65535, &v)) return "+MS (0..65535)";
      op->value = v;
      return NULL;
    case FZ_A_DELAY:
      if (!parse_num(next_tok(t), "", -32768, 32767, &v)) return "a delay in ms (-32768..32767)";
      op->value = v;
      return NULL;
    case FZ_A_FORCE:
      w = next_tok(t);
      if (w == NULL) return NULL;
      if (strcmp(w, "force") != 0) return "'force' or nothing";
      op->flag = 1;
      return NULL;
    case FZ_A_OFFSET:
      w = next_tok(t);
      if (w != NULL && strncmp(w, "aligned", 7) == 0 && parse_num(w, "aligned", 0, 0x7fff, &v)) {
        op->offset = (uint16_t)(0x8000 | v);
        return NULL;
      }
      if (!parse_num(w, "", 0, 0x7fff, &v)) return "an offset code 0..32767, or alignedN";
      op->offset = (uint16_t)v;
      return NULL;
    case FZ_A_FOREIGN:
      w = next_tok(t);
      for (int i = 0; w != NULL && i < fz_foreign_count(); i++)
        if (strcmp(w, fz_foreign_name(i)) == 0) {
          op->foreign = (uint8_t)i;
          return NULL;
        }
      return "a foreign pointer kind (stack, global, libc, header)";
    case FZ_A_POINT: {
      int p = fz_point_lookup(next_tok(t) ? t->tok[t->at - 1] : NULL);
      if (p < 0) return "a test point (remote-freeing, abandon-unlisted, reclaim-popped, ...)";
      op->point = (uint8_t)p;
      return NULL;
    }
    case FZ_A_OPTION: {
      w = next_tok(t);
      const char* val = next_tok(t);
      for (int i = 0; w != NULL && i < OPTION_KINDS; i++) {
        if (strcmp(w, option_table[i].name) != 0) continue;
        op->option = (uint8_t)i;
        if (val != NULL && strcmp(val, "max") == 0) op->value = LONG_MAX;
        else if (val != NULL && strcmp(val, "min") == 0) op->value = LONG_MIN;
        else if (!parse_num(val, "", LONG_MIN, LONG_MAX, &v)) return "an option value (a number, min or max)";
        else op->value = v;
        return NULL;
      }
      return "an option: purge-delay, purge-mode or purge-backoff";
    }
    case FZ_A_TEXT: {
      w = next_tok(t);
      const char* val = next_tok(t);
      int o = -1, x = -1;
      for (int i = 0; w != NULL && i < fz_text_option_count(); i++)
        if (strcmp(w, fz_text_option_name(i)) == 0) o = i;
      for (int i = 0; val != NULL && i < fz_text_count(); i++)
        if (strcmp(val, fz_text_alias(i)) == 0) x = i;
      if (o < 0 || x < 0) return "an option (purge-delay, purge-mode, purge-backoff, huge-os-pages) and a text of the list";
      op->option = (uint8_t)o;
      op->text = (uint8_t)x;
      return NULL;
    }
    default: return NULL;
  }
}

static int parse_line(toks_t* t, fz_op_t* op, char* err, size_t errcap, int lineno) {
  long long v;
  memset(op, 0, sizeof(*op));
  const char* w = next_tok(t);
  bool has_thread = false;
  if (w[0] == 't' && isdigit((unsigned char)w[1])) {
    if (!parse_num(w, "t", 0, FZ_THREADS - 1, &v)) {
      snprintf(err, errcap, "line %d: expected a thread t0..t3", lineno);
      return -1;
    }
    op->thread = (uint8_t)v;
    has_thread = true;
    w = next_tok(t);
  }
  int kind = w ? fz_op_lookup(w) : -1;
  if (kind < 0) {
    snprintf(err, errcap, "line %d: unknown operation '%s'", lineno, w ? w : "");
    return -1;
  }
  const fz_op_desc_t* d = &fz_ops[kind];
  op->kind = (uint8_t)kind;
  if (d->where == FZ_ON_MAIN) {
    if (has_thread) {
      snprintf(err, errcap, "line %d: %s runs on main: no thread", lineno, d->name);
      return -1;
    }
    op->thread = FZ_MAIN;
  }
  for (int i = 0; i < FZ_MAX_ARGS && d->args[i]; i++) {
    const char* want = parse_arg((fz_arg_t)d->args[i], t, op);
    if (want != NULL) {
      snprintf(err, errcap, "line %d: %s: expected %s", lineno, d->name, want);
      return -1;
    }
  }
  if (t->at != t->n) {
    snprintf(err, errcap, "line %d: %s: expected the end of the line at '%s'", lineno, d->name, t->tok[t->at]);
    return -1;
  }
  return 0;
}

int fz_parse_text(const char* text, fz_program_t* out, char* err, size_t errcap) {
  out->count = 0;
  int lineno = 0;
  const char* p = text;
  while (*p != '\0') {
    lineno++;
    const char* eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    char line[256];
    if (len >= sizeof(line)) {
      snprintf(err, errcap, "line %d: too long", lineno);
      return -1;
    }
    memcpy(line, p, len);
    line[len] = '\0';
    p += len + (eol ? 1 : 0);
    char* hash = strchr(line, '#');
    if (hash != NULL) *hash = '\0';
    toks_t t = {.n = 0, .at = 0};
    char* save = NULL;
    for (char* tok = strtok_r(line, " \t\r", &save); tok != NULL; tok = strtok_r(NULL, " \t\r", &save)) {
      if (t.n == 10) {
        snprintf(err, errcap, "line %d: too many words", lineno);
        return -1;
      }
      t.tok[t.n++] = tok;
    }
    if (t.n == 0) continue;
    if (out->count == FZ_MAX_OPS) {
      snprintf(err, errcap, "line %d: more than %d operations", lineno, FZ_MAX_OPS);
      return -1;
    }
    if (parse_line(&t, &out->ops[out->count], err, errcap, lineno) != 0) return -1;
    out->count++;
  }
  return 0;
}

/* --- the dictionary ------------------------------------------------------------ */
void fz_write_dict(FILE* out) {
  fprintf(out, "# lode fuzz dictionary (AFL++ / libFuzzer), generated from fuzz/optable.c by\n"
               "# `lode-replay --dict`: opcode bytes of every operation on every thread,\n"
               "# and whole operations that start the interesting states.\n");
  for (size_t k = 0; k < binary_count(); k++) {
    const fz_op_desc_t* d = &fz_ops[k];
    for (unsigned t = 0; t < (d->where == FZ_ON_MAIN ? 1u : (unsigned)FZ_THREADS); t++) {
      char name[48];
      snprintf(name, sizeof(name), "%s", d->name);
      for (char* c = name; *c; c++)
        if (*c == '-') *c = '_';
      if (d->where == FZ_ON_MAIN) fprintf(out, "%s=\"\\x%02x\"\n", name, (unsigned)k);
      else fprintf(out, "%s_t%u=\"\\x%02x\"\n", name, t, (unsigned)(k | (t << 5)));
    }
  }
  fprintf(out, "collect_force_t1=\"\\x%02x\"\n", (unsigned)(fz_op_lookup("collect") | (1 << 5) | 0x80));
  /* Whole operations: a small malloc, a free of slot 0, an exit, parks at each point. */
  static const char* const samples[] = {"t1 malloc 24 -> s0", "t2 free s0", "t1 exit", "t0 collect force",
                                        "t2 bad-free s0 aligned0", "t1 double-free s0", "purge-delay 0",
                                        "option purge-delay max", "t2 park remote-freeing", "t3 park reclaim-popped",
                                        "option-text purge-delay 9223372036854775808", "t1 stats"};
  for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
    fz_program_t* one = calloc(1, sizeof(*one));
    char err[200];
    uint8_t buf[16];
    if (one == NULL) return;
    if (fz_parse_text(samples[i], one, err, sizeof(err)) == 0) {
      size_t n = fz_encode(one, buf, sizeof(buf), err, sizeof(err));
      fprintf(out, "# %s\nop%zu=\"", samples[i], i);
      for (size_t j = 0; j < n; j++) fprintf(out, "\\x%02x", buf[j]);
      fprintf(out, "\"\n");
    }
    free(one);
  }
}
