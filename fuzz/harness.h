/* The fuzz harness core shared by the three engines (libFuzzer, AFL++
 * persistent mode, lode-replay): operations, their binary and text forms,
 * the shadow model, the deterministic scheduler and the run of one input. */
#ifndef LODE_FUZZ_HARNESS_H
#define LODE_FUZZ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* --- limits ------------------------------------------------------------------ */
#define FZ_MAX_OPS 1000        /* operations decoded from one input, at most */
#define FZ_SLOTS 64            /* numbered block slots s0..s63 */
#define FZ_THREADS 4           /* worker threads t0..t3 */
#define FZ_HEAPS 8             /* heap handles h0..h7 (each owned by its creator) */
#define FZ_MAX_FAIL_OS 15      /* fail-os K: K <= 15 */
#define FZ_LIVE_CAP ((size_t)64 << 20) /* requested bytes live at once; beyond: op skipped */
#define FZ_ALIGN_LOG_MIN 4     /* aligned-alloc alignments 16 B .. 1 MiB */
#define FZ_ALIGN_LOG_MAX 20
#define FZ_CLOCK_START 1000    /* virtual clock (ms) at the start of every input */
#define FZ_PURGE_DELAY_DEFAULT 10

/* --- operations ---------------------------------------------------------------
 * Binary form: an opcode byte, then the arguments.  Opcode byte: bits 0-3 the
 * kind (taken modulo FZ_OP_GOOD_COUNT), bits 4-5 the thread, bit 6 a flag
 * (collect: force; calloc: an overflowing count*size), bit 7 unused.  Every
 * byte string decodes; a truncated last op is dropped.  Sizes are a 16-bit
 * little-endian code: below 0x8000 the size itself, else (code & 0x7fff) << 7
 * (up to 4 MiB, so huge blocks are reached). */
typedef enum {
  FZ_OP_MALLOC = 0,     /* op slot size16 */
  FZ_OP_CALLOC,         /* op slot count-1(low 4 bits) size16 */
  FZ_OP_REALLOC,        /* op slot size16 */
  FZ_OP_ALIGNED,        /* op slot alignlog size16 */
  FZ_OP_FREE,           /* op slot */
  FZ_OP_HEAP_NEW,       /* op heap */
  FZ_OP_HEAP_MALLOC,    /* op heap slot size16 */
  FZ_OP_HEAP_DELETE,    /* op heap */
  FZ_OP_HEAP_DESTROY,   /* op heap */
  FZ_OP_COLLECT,        /* op (flag = force) */
  FZ_OP_EXIT,           /* op */
  FZ_OP_CLOCK,          /* op ms16 */
  FZ_OP_PURGE_DELAY,    /* op s16 */
  FZ_OP_FAIL_OS,        /* op count */
  FZ_OP_GOOD_COUNT,
  /* Deliberately wrong operations, only from .ops text (never from the fuzz
   * engines' binary decoder): they prove the oracle fires. */
  FZ_OP_BAD_DOUBLE_FREE = FZ_OP_GOOD_COUNT, /* free a slot twice */
  FZ_OP_BAD_OVERFLOW,   /* write N bytes past a slot's requested size */
  FZ_OP_BAD_SCRIBBLE,   /* overwrite N bytes at offset OFF inside a slot (lode writing into a live block) */
  FZ_OP_KIND_COUNT
} fz_kind_t;

typedef struct {
  uint8_t kind;   /* fz_kind_t */
  uint8_t thread; /* acting worker (ops run by the main thread ignore it) */
  uint8_t flag;   /* collect force / calloc overflow */
  uint8_t slot;
  uint8_t heap;
  uint8_t count;  /* calloc count, fail-os count */
  uint8_t align_log;
  uint32_t size;  /* bytes (malloc, calloc element, realloc, aligned, overflow N) */
  int32_t value;  /* clock ms, purge delay */
} fz_op_t;

typedef struct {
  fz_op_t ops[FZ_MAX_OPS];
  size_t count;
} fz_program_t;

/* ops.c: binary and text forms. */
void fz_decode(const uint8_t* data, size_t size, fz_program_t* out);
/* Canonical binary encoding; returns bytes written, or 0 when an op has no
 * binary form (bad ops, unrepresentable sizes).  buf must hold 6 bytes/op. */
size_t fz_encode(const fz_program_t* prog, uint8_t* buf, size_t cap, char* err, size_t errcap);
/* Parse .ops text; returns 0, or -1 with "line N: ..." in err. */
int fz_parse_text(const char* text, fz_program_t* out, char* err, size_t errcap);
void fz_format_op(const fz_op_t* op, char* buf, size_t cap);
void fz_write_text(const fz_program_t* prog, FILE* out);
bool fz_op_on_worker(const fz_op_t* op); /* runs on a worker (else on main) */
bool fz_size_encodable(uint32_t size);
uint32_t fz_size_decode(uint16_t code);

/* --- running ------------------------------------------------------------------ */
typedef enum {
  FZ_FAIL_ABORT, /* fuzz engines: print, then abort() (the crash is the signal) */
  FZ_FAIL_EXIT   /* lode-replay: print, then _exit(1) (it runs each input in a child) */
} fz_fail_mode_t;

typedef struct {
  fz_fail_mode_t fail_mode;
  bool verbose;             /* print each op as it runs, with its results */
  const char* input_name;   /* for the replay command in failure reports */
  const char* replay_cmd;   /* e.g. "build/dbg/fuzz/lode-replay -v" */
} fz_config_t;

void fz_init(const fz_config_t* cfg);       /* once per process */
void fz_set_input_name(const char* name);
void fz_run(const fz_program_t* prog);      /* one input; returns only when clean */
void fz_run_bytes(const uint8_t* data, size_t size);
/* On SIGSEGV/SIGBUS/SIGABRT/SIGFPE (lode's own aborts included) print the op
 * being run and the replay command, then die of the signal as before. */
void fz_install_crash_report(void);

/* harness.c: failure reporting (never returns). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
void fz_fail(const char* fmt, ...);
extern const fz_config_t* fz_cfg;

/* shadow.c: the model of the live slots. */
typedef struct {
  uint8_t* p;
  size_t size;    /* requested */
  size_t usable;  /* lode_usable_size at allocation */
  uint8_t fill;
  int8_t heap;    /* heap handle it came from, -1 for a thread's default heap */
  bool live;
  uintptr_t fill_base; /* where it was filled (the samples' alignment), and */
  size_t fill_len;     /* over how many bytes: a realloc keeps both */
} fz_slot_t;

/* Filling: whole blocks up to FZ_FULL_FILL, larger ones sampled (shadow.c). */
#define FZ_FULL_FILL ((size_t)8 << 10)
#define FZ_EDGE ((size_t)4096)
#define FZ_STAMP ((size_t)64)
#define FZ_STAMP_EVERY ((size_t)256 << 10)

void fz_shadow_reset(void);
fz_slot_t* fz_slot(unsigned i);
size_t fz_shadow_live_bytes(void);
/* Register a new block: checks usable size, alignment, no overlap; fills it
 * (verifying zeros first when zeroed); fill byte derived from seq. */
void fz_shadow_add(unsigned slot, void* p, size_t size, size_t align, int heap, bool zeroed, unsigned seq);
void fz_shadow_verify(unsigned slot, size_t prefix, const char* when); /* prefix SIZE_MAX: whole */
void fz_shadow_drop(unsigned slot);
uint8_t fz_fill_byte(unsigned seq, unsigned slot);

/* sched.c: the deterministic scheduler.  Real pthreads, exactly one of
 * which runs at a time: main hands a job to a worker and sleeps until
 * control comes back to it (workers may pass the job along first), a worker
 * that exits having been joined. */
typedef bool (*fz_job_fn)(unsigned thread, void* arg); /* true: the worker exits */
bool fz_sched_alive(unsigned thread);
/* Starts the worker when it is not running, runs job on it, returns after. */
void fz_sched_run(unsigned thread, fz_job_fn job, void* arg);
/* Direct hand-over between workers: after a job returns false, the worker
 * asks `next` (called with the scheduler lock held, every other thread
 * parked) which live worker runs the same job next; FZ_THREADS hands back to
 * main.  Saves main a wake-up per thread change.  NULL: always main. */
typedef unsigned (*fz_next_fn)(void);
void fz_sched_set_next(fz_next_fn next);
unsigned fz_sched_current(void); /* acting worker, FZ_THREADS on main */

#endif
