/* The fuzz harness core shared by the three engines (libFuzzer, AFL++
 * persistent mode, lode-replay): the operation table and its binary and text
 * forms, the shadow model, the two schedulers (simulated threads on one OS
 * thread, and real pthreads run one at a time) and the run of one input. */
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
#define FZ_MAIN FZ_THREADS     /* the thread that runs the clock, option and fail-os ops */
#define FZ_HEAPS 8             /* heap handles h0..h7 (each owned by its creator) */
#define FZ_MAX_FAIL_OS 15      /* fail-os K: K <= 15 */
#define FZ_MAX_ARGS 4
#define FZ_LIVE_CAP ((size_t)64 << 20)   /* requested bytes live at once; beyond: op skipped */
#define FZ_CALLOC_CAP ((size_t)16 << 20) /* calloc bytes per input (calloc clears them) */
#define FZ_BIG_MIN ((size_t)64 << 10)    /* a block above this is large or huge */
#define FZ_BIG_CAP ((size_t)16 << 20)    /* bytes of such blocks allocated per input: programs
                                            make few, and each costs what hundreds of small ops do */
#define FZ_ALIGN_LOG_MIN 4     /* aligned-alloc alignments 16 B .. 1 MiB */
#define FZ_ALIGN_LOG_MAX 20
#define FZ_CLOCK_START 1000    /* virtual clock (ms) at the start of every input */
#define FZ_PURGE_DELAY_DEFAULT 10
#define FZ_SIZE_MAX ((uint32_t)8 << 20) /* the largest size the binary form holds */

/* --- operations ---------------------------------------------------------------
 * One row of the table (optable.c) per operation: its name in the text form,
 * its arguments, which thread runs it, whether the fuzz engines' binary form
 * has it, and the function that runs it (ops.c).  The decoder, the encoder,
 * the text form and fuzz/lode.dict all follow the table. */
typedef enum {
  FZ_A_NONE = 0,
  FZ_A_SLOT,    /* sN, a live slot (1 byte) */
  FZ_A_OUT,     /* -> sN, the slot a new block goes to (1 byte) */
  FZ_A_SIZE,    /* a size (2 bytes: a code biased toward small sizes, see fz_size_decode) */
  FZ_A_HEAP,    /* hN (1 byte) */
  FZ_A_ALIGN,   /* an alignment, a power of two 16 .. 1 MiB (1 byte) */
  FZ_A_COUNT,   /* calloc's count 1..16 (1 byte) */
  FZ_A_MS,      /* +MS, clock advance 0..65535 (2 bytes) */
  FZ_A_DELAY,   /* a purge delay, -32768..32767 ms (2 bytes) */
  FZ_A_FAILS,   /* fail-os [OPS] count 0..15, after 0..15 calls let through (1 byte: skip << 4 | count;
                   OPS, which OS operations, in bits 5-7 of the opcode: fz_osop_names) */
  FZ_A_FORCE,   /* the word "force" or nothing (bit 7 of the opcode byte) */
  FZ_A_OFFSET,  /* where in a block a bad pointer points (2 bytes: see ops.c) */
  FZ_A_FOREIGN, /* which foreign pointer (1 byte) */
  FZ_A_POINT,   /* a test point's name (1 byte) */
  FZ_A_OPTION,  /* option name and value: an extreme or a small number (2 bytes) */
  FZ_A_TEXT,    /* option name and a text value from a fixed list (2 bytes) */
  FZ_A_N,       /* a byte count (text only) */
  FZ_A_OFF,     /* a byte offset (text only) */
  FZ_A_KINDS
} fz_arg_t;

typedef struct fz_op_s {
  uint8_t kind;   /* index in the table */
  uint8_t thread; /* acting worker; FZ_MAIN for main ops */
  uint8_t flag;   /* collect: force */
  uint8_t slot;
  uint8_t heap;
  uint8_t count;  /* calloc count, fail-os count */
  uint8_t skip;   /* fail-os: OS calls let through first */
  uint8_t osop;   /* fail-os: which OS operations fail (FZ_OSOP_*: bits 5-7 of its opcode) */
  uint8_t align_log;
  uint8_t foreign;
  uint8_t point;
  uint8_t option;   /* option ops: which option */
  uint8_t text;     /* option-text: which text */
  uint16_t offset;  /* bad-pointer ops: the offset code */
  uint32_t size;    /* bytes (malloc, calloc element, realloc, aligned, overflow N) */
  int64_t value;    /* clock ms, purge delay, option value, scribble offset */
} fz_op_t;

typedef struct fz_program_s {
  fz_op_t ops[FZ_MAX_OPS];
  size_t count;
} fz_program_t;

typedef enum { FZ_ON_WORKER, FZ_ON_MAIN } fz_where_t;
typedef void (*fz_run_fn)(const fz_op_t* op);

typedef struct fz_op_desc_s {
  const char* name;
  uint8_t args[FZ_MAX_ARGS];
  uint8_t where;   /* fz_where_t */
  bool binary;     /* the engines' decoder produces it */
  fz_run_fn run;   /* ops.c */
  const char* doc; /* one line for fuzz/README.md and --list-ops */
} fz_op_desc_t;

extern const fz_op_desc_t fz_ops[];
extern const size_t fz_op_count;
int fz_op_lookup(const char* name);

/* optable.c: the binary and text forms. */
void fz_decode(const uint8_t* data, size_t size, fz_program_t* out);
/* Canonical binary encoding; returns bytes written, or 0 with err when an op
 * has no binary form (text-only ops, unrepresentable sizes). */
size_t fz_encode(const fz_program_t* prog, uint8_t* buf, size_t cap, char* err, size_t errcap);
/* Parse .ops text; returns 0, or -1 with "line N: ..." in err. */
int fz_parse_text(const char* text, fz_program_t* out, char* err, size_t errcap);
void fz_format_op(const fz_op_t* op, char* buf, size_t cap);
void fz_write_text(const fz_program_t* prog, FILE* out);
void fz_write_dict(FILE* out); /* AFL++/libFuzzer dictionary from the table */
uint32_t fz_size_decode(uint16_t code);
bool fz_size_encodable(uint32_t size);
static inline bool fz_op_on_worker(const fz_op_t* op) { return fz_ops[op->kind].where == FZ_ON_WORKER; }

/* --- running ------------------------------------------------------------------ */
typedef enum {
  FZ_FAIL_ABORT, /* fuzz engines: print, then abort() (the crash is the signal) */
  FZ_FAIL_EXIT   /* lode-replay: print, then _exit(1) (it runs each input in a child) */
} fz_fail_mode_t;

typedef enum {
  FZ_MODE_SIM,  /* simulated threads and OS on one OS thread (default) */
  FZ_MODE_REAL  /* real pthreads, one running at a time, and the real OS */
} fz_mode_t;

typedef struct {
  fz_fail_mode_t fail_mode;
  fz_mode_t mode;
  bool verbose;             /* print each op as it runs, with its results */
  const char* input_name;   /* for the replay command in failure reports */
  const char* replay_cmd;   /* e.g. "build/dbg/fuzz/lode-replay -v" */
} fz_config_t;

/* Once per process; false (with a message) when the mode is not available
 * in this build (sim needs LODE_SIM). */
bool fz_init(const fz_config_t* cfg);
void fz_set_input_name(const char* name);
/* s as one shell word (quoted only when it must be): a printed replay command pastes. */
void fz_shell_quote(const char* s, char* buf, size_t cap);
/* "REPLAY_BIN -v", the path quoted for a shell (a build directory may have
 * spaces); a static buffer. */
const char* fz_replay_command(const char* replay_bin);
void fz_run(const fz_program_t* prog); /* one input; returns only when clean */
void fz_run_bytes(const uint8_t* data, size_t size);
const char* fz_mode_name(fz_mode_t mode);

/* fail.c: failure reports (never return) and the crash report. */
extern const fz_config_t* fz_cfg;
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
void fz_fail(const char* fmt, ...);
/* What is running, for reports: op (NULL outside ops) or the phase. */
void fz_where(const char* phase, const fz_op_t* op, size_t index);
void fz_replay_changed(void); /* the input name or mode changed */
void fz_install_crash_report(void);

/* --- the model ------------------------------------------------------------------ */
typedef struct {
  uint8_t* p;
  size_t size;    /* requested */
  size_t usable;  /* lode_usable_size at allocation */
  uint8_t fill;
  int8_t heap;    /* heap handle it came from, -1 for a thread's default heap */
  uint8_t thread; /* the thread that allocated it */
  bool live;
  bool busy;      /* an op on it is parked mid-way: no other op touches it */
  uint8_t* freed; /* empty slot: the block its last free gave back (double-free's second chance) */
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
void fz_shadow_add(unsigned slot, void* p, size_t size, size_t align, int heap, bool zeroed, unsigned seq);
void fz_shadow_verify(unsigned slot, size_t prefix, const char* when); /* prefix SIZE_MAX: whole */
void fz_shadow_verify_all(const char* when);
void fz_shadow_drop(unsigned slot);
uint8_t fz_fill_byte(unsigned seq, unsigned slot);

/* --- harness.c: the run, as ops.c sees it --------------------------------------- */
typedef struct {
  void* heap; /* lode_heap_t* */
  unsigned owner;
  bool live;
} fz_heap_t;
fz_heap_t* fz_heap(unsigned h);
void fz_trace(const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
bool fz_over_cap(size_t add);        /* live bytes: the op is skipped (traced) */
bool fz_calloc_over_cap(size_t add); /* calloc bytes of this input */
void fz_new_block(unsigned slot, void* p, size_t size, size_t align, int heap, bool zeroed, const char* what);
/* the same, and the block must lie in a segment the acting thread owns */
void fz_new_own_block(unsigned slot, void* p, size_t size, size_t align, int heap, bool zeroed, const char* what);
void fz_free_slot(unsigned slot, const char* why);
void fz_expect_enomem(const char* what);
unsigned fz_next_seq(void);
void fz_clock_advance(int64_t ms);
void fz_fail_os_armed(void);
/* The op must make lode report a pointer error whose text starts with
 * `what` (exactly one), and change nothing else. */
void fz_expect_error(const char* what);
/* The reports expected so far came, exactly one: checked now, not at the op's end. */
void fz_errors_check(void);
bool fz_thread_owns(const void* p); /* the acting thread owns p's segment */
void fz_heap_destroy(unsigned h);
void fz_heap_delete(unsigned h);
void fz_exit_heaps(unsigned thread); /* the thread's heaps die with it */
void fz_exit_current(void);          /* lode's thread exit for the acting thread */
void fz_end_current(void);           /* the acting thread ends; its lode exit ran already */
/* Thread t ends holding thread data whose exit never ran (exit-malloc as
 * its first op): at the end of the input a thread on t runs it. */
void fz_ended_holding(unsigned t);
void fz_check_no_message(const char* when); /* lode wrote nothing since the last look */
void fz_enter_fork_child(void);           /* from here on, the other threads do not exist */
unsigned long fz_input_number(void);      /* which input this is (a count of fz_run calls) */
void fz_check_thread(const char* which);  /* full checks now (the process one: unless a thread is parked) */
void fz_check_process(const char* which);
void fz_park_arm(unsigned thread, int point);
void fz_resume(unsigned thread);

/* ops.c: the operations' functions (the table's run column) */
void fz_op_malloc(const fz_op_t* op);
void fz_op_calloc(const fz_op_t* op);
void fz_op_impossible(const fz_op_t* op);
void fz_op_realloc(const fz_op_t* op);
void fz_op_aligned(const fz_op_t* op);
void fz_op_free(const fz_op_t* op);
void fz_op_heap_new(const fz_op_t* op);
void fz_op_heap_malloc(const fz_op_t* op);
void fz_op_heap_delete(const fz_op_t* op);
void fz_op_heap_destroy(const fz_op_t* op);
void fz_op_collect(const fz_op_t* op);
void fz_op_exit(const fz_op_t* op);
void fz_op_exit_malloc(const fz_op_t* op);
void fz_op_clock(const fz_op_t* op);
void fz_op_purge_delay(const fz_op_t* op);
void fz_op_fail_os(const fz_op_t* op);
/* fail-os's OS operation classes, by the 3 bits of its opcode: 0 (no word)
 * reserve, commit and mremap as ever; then one class each; 7 every one. */
enum { FZ_OSOPS = 8 };
extern const char* const fz_osop_names[FZ_OSOPS];
unsigned fz_osop_mask(unsigned osop); /* lode_test_fail_os_ops's mask */
void fz_op_bad_free(const fz_op_t* op);
void fz_op_bad_realloc(const fz_op_t* op);
void fz_op_bad_usable(const fz_op_t* op);
void fz_op_double_free(const fz_op_t* op);
void fz_op_foreign_free(const fz_op_t* op);
void fz_op_option(const fz_op_t* op);
void fz_op_posix_memalign(const fz_op_t* op);
void fz_op_reallocarray(const fz_op_t* op);
void fz_op_heap_calloc(const fz_op_t* op);
void fz_op_heap_realloc(const fz_op_t* op);
void fz_op_heap_collect(const fz_op_t* op);
void fz_op_park(const fz_op_t* op);
void fz_op_resume(const fz_op_t* op);
void fz_op_heap_aligned(const fz_op_t* op);
void fz_op_option_text(const fz_op_t* op);
void fz_op_stats(const fz_op_t* op);
void fz_op_fork(const fz_op_t* op);
void fz_op_raw_double_free(const fz_op_t* op);
void fz_op_overflow(const fz_op_t* op);
void fz_op_scribble(const fz_op_t* op);

/* test points and foreign pointers (ops.c) */
int fz_point_count(void);
const char* fz_point_name(int point);
int fz_point_lookup(const char* name);
int fz_foreign_count(void);
const char* fz_foreign_name(int kind);
const char* fz_option_name(int id);
int fz_text_option_count(void);
const char* fz_text_option_name(int id);
int fz_text_count(void);
const char* fz_text_alias(int id); /* the text as the .ops form writes it */

/* --- schedulers -------------------------------------------------------------------
 * Both run exactly one thread at a time, in the order of the input, so an
 * input always gives the same interleaving, thread exits and re-creations.
 * A job (one op and its checks) runs to its end unless its thread was told to
 * park at a test point (the park op): then the job stops there, the next ops
 * run, and it goes on when its thread is resumed (the resume op, its next
 * op, a thread that waits for it, or the end of the input). */
typedef void (*fz_job_fn)(const fz_op_t* op);
typedef struct fz_sched_s {
  const char* name;
  bool (*init)(void);                                   /* once per process */
  void (*run)(unsigned thread, fz_job_fn job, const fz_op_t* op); /* starts the thread if needed */
  bool (*alive)(unsigned thread);
  bool (*parked)(unsigned thread);
  void (*park)(void);                                   /* from a test point on the running thread */
  void (*resume)(unsigned thread);                      /* from main, or from a waiting thread */
  void (*exit_current)(bool explicit_exit);             /* the running thread exits at its job's end */
  unsigned (*current)(void);                            /* the thread running now, FZ_MAIN for main */
  void (*end_input)(void);                              /* every thread has exited */
  void (*end_current)(void); /* the running thread ends at its job's end; lode's exit ran on it already */
} fz_sched_t;
extern const fz_sched_t fz_sched_sim, fz_sched_real;

#endif
