/* Operations: the binary decoder (robust to any byte string), the canonical
 * binary encoder, and the readable .ops text form both ways. */
#include "harness.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Argument bytes after the opcode byte, per kind. */
static const uint8_t arg_len[FZ_OP_GOOD_COUNT] = {
    [FZ_OP_MALLOC] = 3,      [FZ_OP_CALLOC] = 4,      [FZ_OP_REALLOC] = 3,      [FZ_OP_ALIGNED] = 4,
    [FZ_OP_FREE] = 1,        [FZ_OP_HEAP_NEW] = 1,    [FZ_OP_HEAP_MALLOC] = 4,  [FZ_OP_HEAP_DELETE] = 1,
    [FZ_OP_HEAP_DESTROY] = 1, [FZ_OP_COLLECT] = 0,    [FZ_OP_EXIT] = 0,         [FZ_OP_CLOCK] = 2,
    [FZ_OP_PURGE_DELAY] = 2, [FZ_OP_FAIL_OS] = 1,
};

uint32_t fz_size_decode(uint16_t code) {
  return code < 0x8000 ? code : (uint32_t)(code & 0x7fff) << 7;
}

bool fz_size_encodable(uint32_t size) {
  return size < 0x8000 || (size % 128 == 0 && (size >> 7) <= 0x7fff);
}

static uint16_t size_encode(uint32_t size) {
  return size < 0x8000 ? (uint16_t)size : (uint16_t)(0x8000 | (size >> 7));
}

bool fz_op_on_worker(const fz_op_t* op) {
  return op->kind != FZ_OP_CLOCK && op->kind != FZ_OP_PURGE_DELAY && op->kind != FZ_OP_FAIL_OS;
}

static uint16_t rd16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }

void fz_decode(const uint8_t* data, size_t size, fz_program_t* out) {
  size_t pos = 0;
  out->count = 0;
  while (pos < size && out->count < FZ_MAX_OPS) {
    uint8_t b = data[pos];
    unsigned kind = (b & 15u) % FZ_OP_GOOD_COUNT;
    if (pos + 1 + arg_len[kind] > size) break; /* truncated last op */
    const uint8_t* a = data + pos + 1;
    pos += 1 + (size_t)arg_len[kind];
    fz_op_t op;
    memset(&op, 0, sizeof(op));
    op.kind = (uint8_t)kind;
    op.thread = (uint8_t)((b >> 4) & 3);
    bool flag = (b >> 6) & 1;
    switch (kind) {
      case FZ_OP_MALLOC:
      case FZ_OP_REALLOC:
        op.slot = a[0] & (FZ_SLOTS - 1);
        op.size = fz_size_decode(rd16(a + 1));
        break;
      case FZ_OP_CALLOC:
        op.slot = a[0] & (FZ_SLOTS - 1);
        op.flag = flag;
        if (!flag) {
          op.count = (uint8_t)(1 + (a[1] & 15));
          op.size = fz_size_decode(rd16(a + 2));
        }
        break;
      case FZ_OP_ALIGNED:
        op.slot = a[0] & (FZ_SLOTS - 1);
        op.align_log = (uint8_t)(FZ_ALIGN_LOG_MIN + a[1] % (FZ_ALIGN_LOG_MAX - FZ_ALIGN_LOG_MIN + 1));
        op.size = fz_size_decode(rd16(a + 2));
        break;
      case FZ_OP_FREE: op.slot = a[0] & (FZ_SLOTS - 1); break;
      case FZ_OP_HEAP_NEW:
      case FZ_OP_HEAP_DELETE:
      case FZ_OP_HEAP_DESTROY: op.heap = a[0] & (FZ_HEAPS - 1); break;
      case FZ_OP_HEAP_MALLOC:
        op.heap = a[0] & (FZ_HEAPS - 1);
        op.slot = a[1] & (FZ_SLOTS - 1);
        op.size = fz_size_decode(rd16(a + 2));
        break;
      case FZ_OP_COLLECT: op.flag = flag; break;
      case FZ_OP_EXIT: break;
      case FZ_OP_CLOCK: op.value = rd16(a); break;
      case FZ_OP_PURGE_DELAY: op.value = (int16_t)rd16(a); break;
      case FZ_OP_FAIL_OS: op.count = a[0] & FZ_MAX_FAIL_OS; break;
      default: break;
    }
    if (!fz_op_on_worker(&op)) op.thread = 0;
    out->ops[out->count++] = op;
  }
}

static void errf(char* err, size_t cap, const char* fmt, ...) {
  if (err == NULL || cap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

size_t fz_encode(const fz_program_t* prog, uint8_t* buf, size_t cap, char* err, size_t errcap) {
  size_t pos = 0;
  for (size_t i = 0; i < prog->count; i++) {
    const fz_op_t* op = &prog->ops[i];
    if (op->kind >= FZ_OP_GOOD_COUNT) {
      errf(err, errcap, "op #%zu is a deliberately bad op: it has no binary form", i);
      return 0;
    }
    if (!fz_size_encodable(op->size)) {
      errf(err, errcap, "op #%zu: size %u has no binary form (< 32768, or a multiple of 128 up to 4 MiB)", i,
           op->size);
      return 0;
    }
    if (pos + 1 + arg_len[op->kind] > cap) {
      errf(err, errcap, "output buffer too small");
      return 0;
    }
    bool flag = (op->kind == FZ_OP_COLLECT || op->kind == FZ_OP_CALLOC) && op->flag;
    unsigned thread = fz_op_on_worker(op) ? op->thread : 0;
    buf[pos++] = (uint8_t)(op->kind | (thread << 4) | (flag ? 0x40 : 0));
    uint16_t sz = size_encode(op->size);
    switch (op->kind) {
      case FZ_OP_MALLOC:
      case FZ_OP_REALLOC:
        buf[pos++] = op->slot;
        buf[pos++] = (uint8_t)sz;
        buf[pos++] = (uint8_t)(sz >> 8);
        break;
      case FZ_OP_CALLOC:
        buf[pos++] = op->slot;
        buf[pos++] = flag ? 0 : (uint8_t)(op->count - 1);
        buf[pos++] = flag ? 0 : (uint8_t)sz;
        buf[pos++] = flag ? 0 : (uint8_t)(sz >> 8);
        break;
      case FZ_OP_ALIGNED:
        buf[pos++] = op->slot;
        buf[pos++] = (uint8_t)(op->align_log - FZ_ALIGN_LOG_MIN);
        buf[pos++] = (uint8_t)sz;
        buf[pos++] = (uint8_t)(sz >> 8);
        break;
      case FZ_OP_FREE: buf[pos++] = op->slot; break;
      case FZ_OP_HEAP_NEW:
      case FZ_OP_HEAP_DELETE:
      case FZ_OP_HEAP_DESTROY: buf[pos++] = op->heap; break;
      case FZ_OP_HEAP_MALLOC:
        buf[pos++] = op->heap;
        buf[pos++] = op->slot;
        buf[pos++] = (uint8_t)sz;
        buf[pos++] = (uint8_t)(sz >> 8);
        break;
      case FZ_OP_CLOCK:
      case FZ_OP_PURGE_DELAY:
        buf[pos++] = (uint8_t)((uint32_t)op->value & 0xff);
        buf[pos++] = (uint8_t)(((uint32_t)op->value >> 8) & 0xff);
        break;
      case FZ_OP_FAIL_OS: buf[pos++] = op->count; break;
      default: break;
    }
  }
  return pos;
}

/* --- text -------------------------------------------------------------------- */
void fz_format_op(const fz_op_t* op, char* buf, size_t cap) {
  unsigned t = op->thread;
  switch (op->kind) {
    case FZ_OP_MALLOC: snprintf(buf, cap, "t%u malloc %u -> s%u", t, op->size, op->slot); break;
    case FZ_OP_CALLOC:
      if (op->flag) snprintf(buf, cap, "t%u calloc-overflow -> s%u", t, op->slot);
      else snprintf(buf, cap, "t%u calloc %u %u -> s%u", t, op->count, op->size, op->slot);
      break;
    case FZ_OP_REALLOC: snprintf(buf, cap, "t%u realloc s%u %u", t, op->slot, op->size); break;
    case FZ_OP_ALIGNED:
      snprintf(buf, cap, "t%u aligned-alloc %lu %u -> s%u", t, 1ul << op->align_log, op->size, op->slot);
      break;
    case FZ_OP_FREE: snprintf(buf, cap, "t%u free s%u", t, op->slot); break;
    case FZ_OP_HEAP_NEW: snprintf(buf, cap, "t%u heap-new h%u", t, op->heap); break;
    case FZ_OP_HEAP_MALLOC:
      snprintf(buf, cap, "t%u heap-malloc h%u %u -> s%u", t, op->heap, op->size, op->slot);
      break;
    case FZ_OP_HEAP_DELETE: snprintf(buf, cap, "t%u heap-delete h%u", t, op->heap); break;
    case FZ_OP_HEAP_DESTROY: snprintf(buf, cap, "t%u heap-destroy h%u", t, op->heap); break;
    case FZ_OP_COLLECT: snprintf(buf, cap, "t%u collect%s", t, op->flag ? " force" : ""); break;
    case FZ_OP_EXIT: snprintf(buf, cap, "t%u exit", t); break;
    case FZ_OP_CLOCK: snprintf(buf, cap, "clock +%d", (int)op->value); break;
    case FZ_OP_PURGE_DELAY: snprintf(buf, cap, "purge-delay %d", (int)op->value); break;
    case FZ_OP_FAIL_OS: snprintf(buf, cap, "fail-os %u", op->count); break;
    case FZ_OP_BAD_DOUBLE_FREE: snprintf(buf, cap, "t%u double-free s%u", t, op->slot); break;
    case FZ_OP_BAD_OVERFLOW: snprintf(buf, cap, "t%u overflow s%u %u", t, op->slot, op->size); break;
    case FZ_OP_BAD_SCRIBBLE:
      snprintf(buf, cap, "t%u scribble s%u %d %u", t, op->slot, (int)op->value, op->size);
      break;
    default: snprintf(buf, cap, "?"); break;
  }
}

void fz_write_text(const fz_program_t* prog, FILE* out) {
  char line[128];
  for (size_t i = 0; i < prog->count; i++) {
    fz_format_op(&prog->ops[i], line, sizeof(line));
    fprintf(out, "%s\n", line);
  }
}

/* Tokens of one line. */
typedef struct {
  char* tok[8];
  int n;
  int at;
} toks_t;

static const char* next_tok(toks_t* t) { return t->at < t->n ? t->tok[t->at++] : NULL; }

/* "<prefix><number>" with number <= max. */
static bool parse_num(const char* s, const char* prefix, long min, long max, long* out) {
  if (s == NULL) return false;
  size_t pl = strlen(prefix);
  if (strncmp(s, prefix, pl) != 0) return false;
  s += pl;
  if (*s == '\0') return false;
  char* end;
  long v = strtol(s, &end, 10);
  if (*end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

#define NEED(cond, what)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      errf(err, errcap, "line %d: expected %s", lineno, what); \
      return -1;                                             \
    }                                                        \
  } while (0)

static int parse_size(toks_t* t, fz_op_t* op, char* err, size_t errcap, int lineno) {
  long v;
  NEED(parse_num(next_tok(t), "", 0, 0x7fffL << 7, &v), "a size");
  NEED(fz_size_encodable((uint32_t)v), "a size below 32768 or a multiple of 128 up to 4 MiB");
  op->size = (uint32_t)v;
  return 0;
}

static int parse_arrow_slot(toks_t* t, fz_op_t* op, char* err, size_t errcap, int lineno) {
  long v;
  const char* a = next_tok(t);
  NEED(a != NULL && strcmp(a, "->") == 0, "'->'");
  NEED(parse_num(next_tok(t), "s", 0, FZ_SLOTS - 1, &v), "a slot s0..s63");
  op->slot = (uint8_t)v;
  return 0;
}

static int parse_line(toks_t* t, fz_op_t* op, char* err, size_t errcap, int lineno) {
  long v;
  memset(op, 0, sizeof(*op));
  const char* w = next_tok(t);
  if (w[0] == 't' && isdigit((unsigned char)w[1])) {
    NEED(parse_num(w, "t", 0, FZ_THREADS - 1, &v), "a thread t0..t3");
    op->thread = (uint8_t)v;
    w = next_tok(t);
    NEED(w != NULL, "an operation after the thread");
  }
  if (strcmp(w, "malloc") == 0) {
    op->kind = FZ_OP_MALLOC;
    if (parse_size(t, op, err, errcap, lineno) || parse_arrow_slot(t, op, err, errcap, lineno)) return -1;
  } else if (strcmp(w, "calloc") == 0) {
    op->kind = FZ_OP_CALLOC;
    NEED(parse_num(next_tok(t), "", 1, 16, &v), "a count 1..16");
    op->count = (uint8_t)v;
    if (parse_size(t, op, err, errcap, lineno) || parse_arrow_slot(t, op, err, errcap, lineno)) return -1;
  } else if (strcmp(w, "calloc-overflow") == 0) {
    op->kind = FZ_OP_CALLOC;
    op->flag = 1;
    if (parse_arrow_slot(t, op, err, errcap, lineno)) return -1;
  } else if (strcmp(w, "realloc") == 0) {
    op->kind = FZ_OP_REALLOC;
    NEED(parse_num(next_tok(t), "s", 0, FZ_SLOTS - 1, &v), "a slot s0..s63");
    op->slot = (uint8_t)v;
    if (parse_size(t, op, err, errcap, lineno)) return -1;
  } else if (strcmp(w, "aligned-alloc") == 0) {
    op->kind = FZ_OP_ALIGNED;
    NEED(parse_num(next_tok(t), "", 1L << FZ_ALIGN_LOG_MIN, 1L << FZ_ALIGN_LOG_MAX, &v) && (v & (v - 1)) == 0,
         "an alignment, a power of two from 16 to 1048576");
    op->align_log = (uint8_t)__builtin_ctzl((unsigned long)v);
    if (parse_size(t, op, err, errcap, lineno) || parse_arrow_slot(t, op, err, errcap, lineno)) return -1;
  } else if (strcmp(w, "free") == 0 || strcmp(w, "double-free") == 0) {
    op->kind = strcmp(w, "free") == 0 ? FZ_OP_FREE : FZ_OP_BAD_DOUBLE_FREE;
    NEED(parse_num(next_tok(t), "s", 0, FZ_SLOTS - 1, &v), "a slot s0..s63");
    op->slot = (uint8_t)v;
  } else if (strcmp(w, "overflow") == 0) {
    op->kind = FZ_OP_BAD_OVERFLOW;
    NEED(parse_num(next_tok(t), "s", 0, FZ_SLOTS - 1, &v), "a slot s0..s63");
    op->slot = (uint8_t)v;
    NEED(parse_num(next_tok(t), "", 1, 4096, &v), "a byte count 1..4096");
    op->size = (uint32_t)v;
  } else if (strcmp(w, "scribble") == 0) {
    op->kind = FZ_OP_BAD_SCRIBBLE;
    NEED(parse_num(next_tok(t), "s", 0, FZ_SLOTS - 1, &v), "a slot s0..s63");
    op->slot = (uint8_t)v;
    NEED(parse_num(next_tok(t), "", 0, 1L << 22, &v), "an offset 0..4194304");
    op->value = (int32_t)v;
    NEED(parse_num(next_tok(t), "", 1, 1L << 22, &v), "a byte count 1..4194304");
    op->size = (uint32_t)v;
  } else if (strcmp(w, "heap-new") == 0 || strcmp(w, "heap-delete") == 0 || strcmp(w, "heap-destroy") == 0) {
    op->kind = strcmp(w, "heap-new") == 0      ? FZ_OP_HEAP_NEW
               : strcmp(w, "heap-delete") == 0 ? FZ_OP_HEAP_DELETE
                                               : FZ_OP_HEAP_DESTROY;
    NEED(parse_num(next_tok(t), "h", 0, FZ_HEAPS - 1, &v), "a heap h0..h7");
    op->heap = (uint8_t)v;
  } else if (strcmp(w, "heap-malloc") == 0) {
    op->kind = FZ_OP_HEAP_MALLOC;
    NEED(parse_num(next_tok(t), "h", 0, FZ_HEAPS - 1, &v), "a heap h0..h7");
    op->heap = (uint8_t)v;
    if (parse_size(t, op, err, errcap, lineno) || parse_arrow_slot(t, op, err, errcap, lineno)) return -1;
  } else if (strcmp(w, "collect") == 0) {
    op->kind = FZ_OP_COLLECT;
    const char* f = next_tok(t);
    if (f != NULL) {
      NEED(strcmp(f, "force") == 0, "'force' or nothing after collect");
      op->flag = 1;
    }
  } else if (strcmp(w, "exit") == 0) {
    op->kind = FZ_OP_EXIT;
  } else if (strcmp(w, "clock") == 0) {
    op->kind = FZ_OP_CLOCK;
    const char* a = next_tok(t);
    NEED(a != NULL && a[0] == '+' && parse_num(a + 1, "", 0, 65535, &v), "+MS (0..65535)");
    op->value = (int32_t)v;
  } else if (strcmp(w, "purge-delay") == 0) {
    op->kind = FZ_OP_PURGE_DELAY;
    NEED(parse_num(next_tok(t), "", -32768, 32767, &v), "a delay in ms (-32768..32767)");
    op->value = (int32_t)v;
  } else if (strcmp(w, "fail-os") == 0) {
    op->kind = FZ_OP_FAIL_OS;
    NEED(parse_num(next_tok(t), "", 0, FZ_MAX_FAIL_OS, &v), "a count 0..15");
    op->count = (uint8_t)v;
  } else {
    errf(err, errcap, "line %d: unknown operation '%s'", lineno, w);
    return -1;
  }
  NEED(t->at == t->n, "the end of the line");
  if (!fz_op_on_worker(op)) op->thread = 0;
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
      errf(err, errcap, "line %d: too long", lineno);
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
      if (t.n == 8) {
        errf(err, errcap, "line %d: too many words", lineno);
        return -1;
      }
      t.tok[t.n++] = tok;
    }
    if (t.n == 0) continue;
    if (out->count == FZ_MAX_OPS) {
      errf(err, errcap, "line %d: more than %d operations", lineno, FZ_MAX_OPS);
      return -1;
    }
    if (parse_line(&t, &out->ops[out->count], err, errcap, lineno) != 0) return -1;
    out->count++;
  }
  return 0;
}
