/* lode's test interface: present only in builds configured with
 * LODE_TESTING=ON (the test trees); an installed liblode exports none of it.
 * Tests, the stress drivers and the fuzz harness include this header. */
#ifndef LODE_TESTING_H
#define LODE_TESTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lode.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* Deterministic time: a clock in milliseconds, monotonic; NULL restores
 * CLOCK_MONOTONIC.  Installing one restarts what remembers times of the old
 * clock (the purge backoff). */
typedef int64_t(lode_clock_fn)(void* arg);
void lode_test_set_clock(lode_clock_fn* fn, void* arg);

/* LODE_SECURE: the process secret that page keys, canaries and the
 * quarantine's draws mix in (0: draw a fresh one at next use).  A harness
 * that replays inputs fixes it; pages already claimed keep their keys.
 * Builds without LODE_SECURE mix it into nothing. */
void lode_test_set_secret(uint64_t secret);

/* OS failure injection: one mask says which OS operations may fail; after
 * `skip` calls of those operations succeed, the next `count` of them fail
 * (as the OS would: the call reports its error, nothing changed).  Real OS
 * and simulated OS (LODE_SIM) alike: the injection sits in os.c, before
 * either is asked. */
typedef enum lode_os_op_e {
  LODE_OS_RESERVE = 1 << 0, /* mmap of a segment's reservation */
  LODE_OS_COMMIT = 1 << 1,  /* a commit (with the mprotect it may make) */
  LODE_OS_REMAP = 1 << 2,   /* mremap of a huge block's mapping */
  LODE_OS_PURGE = 1 << 3,   /* madvise of a purge or decommit (DONTNEED, FREE) */
  LODE_OS_DISCARD = 1 << 4, /* madvise DONTNEED of bytes nothing counts (a reused cached
                               mapping, a LODE_SECURE wipe, a failed commit's warm bytes) */
  LODE_OS_RESET = 1 << 5,   /* madvise DONTNEED of a huge block freed by another thread */
  LODE_OS_PROTECT = 1 << 6, /* mprotect: a decommit's PROT_NONE, a reuse, a guard page */
  LODE_OS_RELEASE = 1 << 7, /* munmap of a segment's mapping */
  LODE_OS_MAP = 1 << 8,     /* the segment map's reservation (the first allocation) */
  LODE_OS_CLASSIC = LODE_OS_RESERVE | LODE_OS_COMMIT | LODE_OS_REMAP,
  LODE_OS_ALL = (1 << 9) - 1
} lode_os_op_t;
/* Arm: `ops` a mask of lode_os_op_t; count 0 cancels.  Returns how many
 * injected failures were still pending. */
long lode_test_fail_os_ops(unsigned ops, long skip, long count);
/* The classic ones: reserve, commit, remap (allocation returns NULL with
 * ENOMEM).  _after: the same after `skip` such calls succeed (a failure of
 * the second of two commits). */
long lode_test_fail_os(long count);
long lode_test_fail_os_after(long skip, long count);

/* mremap of a huge block's mapping as on a kernel before Linux 6.17: a call
 * longer than `limit` fails with EFAULT (0: no limit), as one over more than
 * one mapping did there; and the fail_at-th call after this fails with
 * ENOMEM (0: none), so a move made in pieces must undo the pieces moved. */
void lode_test_remap_pieces(size_t limit, long fail_at);

/* Read the LODE_* environment variables again, as the first allocation does. */
void lode_test_options_reload(void);

/* LODE_SECURE guard pages: false makes lode act as on a kernel without guard
 * markers (before Linux 6.13: mprotect, within a budget of mappings);
 * true tries markers again.  lode_test_guard_protects: mprotect guards alive. */
void lode_test_guard_markers(bool on);
/* LODE_HUGE_OS_PAGES=auto asks the virtio balloon drivers under `dir`
 * (NULL: /sys/bus/virtio/drivers/virtio_balloon) again, at its next use. */
void lode_test_balloon_dir(const char* dir);
/* The warm tail all live huge blocks may hold past twice their size (the
 * warm bound's room decides below it; SIZE_MAX: that alone, 0: none). */
void lode_test_huge_hold_limit(size_t bytes);
long lode_test_guard_protects(void);

/* Corrupt state on purpose so that `invariant`'s check must fire.  Returns 0
 * when done, -1 when unknown or unsupported.  The process state is broken
 * afterwards: call it in a child process. */
int lode_test_corrupt(const char* invariant);

/* lode_check_thread in part: the heaps' pages and queues and the purge
 * queue, and a page's free lists only when its list heads or counts changed
 * since the last walk; not the segments' pages (free pages, spans, counts)
 * nor what the last collect promised.  A fuzzer checks after every op, and
 * the full check every time was most of its time: it must call
 * lode_check_thread now and then, and after collects. */
size_t lode_test_check_thread_quick(void);
size_t lode_test_check_process_quick(void); /* likewise the pages of abandoned segments */

/* Every pointer error lode reports (invalid pointer, double free) also goes
 * to this hook, before LODE_ON_ERROR decides (so with "ignore" a test sees
 * it and stderr does not).  NULL: none. */
typedef void(lode_error_hook_fn)(const char* func, const char* what, const void* p);
void lode_test_set_error_hook(lode_error_hook_fn* fn);
/* lode's messages (errors, waits, verbose) go to fd instead of 2. */
void lode_test_set_message_fd(int fd);
/* Or to this function, each message whole in one call (NULL: to the fd). */
typedef void(lode_message_sink_fn)(const char* msg, size_t len);
void lode_test_set_message_sink(lode_message_sink_fn* fn);

/* Whether the calling thread owns the segment of p (a free of p would be an
 * owner free); false for a pointer that is not lode's. */
bool lode_test_owns(const void* p);
/* Whether p lies in a page of a lode segment that is in use (a block there
 * may be live), or in LODE_SECURE's malloc(0) range; false for a page that
 * went back to its segment, or a pointer that is not lode's (any more). */
bool lode_test_page_in_use(const void* p);
/* Live blocks on p's page (remote frees not merged count): the owner asks;
 * SIZE_MAX when p is not lode's, not the caller's, or its page is free. */
size_t lode_test_page_live(const void* p);
uintptr_t lode_test_thread_id(void); /* lode's id of the calling thread */
bool lode_test_thread_has_data(void); /* whether the calling thread has thread data now */
/* Frees whose block looked free (its first word a block boundary of its page)
 * and so walked the free lists for a double free: live blocks must not. */
size_t lode_test_double_free_walks(void);
/* LODE_SECURE: malloc(0) bitmap words looked at so far (its searches' cost). */
size_t lode_test_zero_scanned(void);
/* Run lode's thread exit for the calling thread now (as its pthread key
 * destructor would at its end); the thread must not allocate afterwards. */
void lode_test_thread_exit(void);

/* Test points: named places inside lode where the hook is called with the
 * object at hand.  A hook may stop the calling thread there and let other
 * threads run (unit tests, the fuzz scheduler), or learn that the thread
 * waits for another one.  The hook runs inside lode: it must not allocate
 * through lode on the calling thread's heap. */
typedef enum lode_point_e {
  LODE_POINT_REMOTE_FREEING,   /* a remote free holds the page FREEING and is about to push its
                                  block to the owner heap's delayed list (obj: the page) */
  LODE_POINT_ABANDON_UNLISTED, /* thread exit: a segment has lost its owner and is not yet on
                                  the abandoned list (obj: the segment) */
  LODE_POINT_RECLAIM_POPPED,   /* a reclaim took a segment off the abandoned list and has not
                                  claimed it yet (obj: the segment) */
  LODE_POINT_RECLAIM_ADOPTING, /* a reclaim owns the segment, its pages not yet adopted (obj) */
  LODE_POINT_COLLECT_DETACHED, /* a forced collect holds the abandoned list detached (obj NULL) */
  LODE_POINT_WAIT_FREEING,     /* a thread waits for a remote free in flight on the page (obj):
                                  a scheduler that stopped that free must let it go on */
  LODE_POINT_CLAIM_FAILED,     /* taking a free page failed (the OS refused a commit) and the
                                  slices it committed went to the purge policy (obj: the
                                  segment, NULL when that released it) */
  LODE_POINT_REMOTE_PUSHING,   /* a remote free holds the page FREEING and has read the owner
                                  heap's address, about to push to its delayed list (obj: the
                                  page): the owner must not retire that heap under it */
  LODE_POINT_PURGING,          /* a purge has marked free pages purged and not yet asked the OS
                                  (obj: the segment): another thread may change the purge mode */
  LODE_POINT_HUGE_MAPPED,      /* a huge block's segment is mapped, its block not yet sized
                                  (obj: the segment): another thread may change LODE_HUGE_OS_PAGES */
  LODE_POINT_COUNT
} lode_point_t;
typedef void(lode_point_fn)(lode_point_t point, const void* obj);
void lode_test_set_point_hook(lode_point_fn* fn); /* NULL: none */
const char* lode_test_point_name(lode_point_t point);
/* The point named `name` (as lode_test_point_name prints it), or -1. */
int lode_test_point_lookup(const char* name);

/* --- deterministic simulation (builds with LODE_SIM=ON) ------------------------
 * Threads: every per-thread variable of lode lives in a context; an OS thread
 * runs as context `id` after lode_sim_thread_switch(id), and id -1 is its own.
 * lode_sim_thread_exit(id) runs lode's real thread-exit path for that context
 * (heaps fold into the backing heap, segments are abandoned) and leaves it
 * fresh, as a new thread; lode_sim_thread_end(id) leaves it fresh without
 * running anything (a thread whose last destructor round is over: what it
 * still holds stays, as on a real thread).  The OS: after lode_sim_os_enable(true), called
 * before lode's first allocation, segments come from one address range
 * reserved once and recycled, purges follow their mode's semantics in memory
 * (purged memory reads back as zero, or keeps its bytes for MADV_FREE) and
 * purged memory is filled with a pattern checked when it is committed again:
 * a write into purged memory is reported by the checker as invariant O1. */
#define LODE_SIM_THREADS 16
bool lode_sim_available(void); /* false unless built with LODE_SIM */
void lode_sim_thread_switch(int id);
int lode_sim_thread_current(void);
void lode_sim_thread_exit(int id);
void lode_sim_thread_end(int id);
bool lode_sim_os_enable(bool on); /* false when too late or not a LODE_SIM build */
typedef struct lode_sim_os_stats_s {
  size_t reserves, releases, commits, purges, zeroed_bytes, poisoned_bytes;
  size_t poison_errors;    /* writes into purged memory found at re-commit */
  const void* first_error; /* the first such address */
  size_t arena_high;       /* bytes of the arena ever handed out */
  size_t purges_kept;      /* MADV_FREE purges whose coin kept the bytes */
} lode_sim_os_stats_t;
void lode_sim_os_stats(lode_sim_os_stats_t* out);
/* The MADV_FREE coins start over: an input run after others (libFuzzer,
 * AFL++'s persistent mode, lode-replay --no-fork) takes the same coins as
 * in a process of its own, where its replay command runs it. */
void lode_sim_os_new_input(void);
/* The program is about to access [p, p + size) of a lode block: memory lode
 * committed but never wrote is cleared now, as the kernel faults it in at
 * first access.  Harness code that reads or writes block bytes calls it. */
void lode_sim_os_touch(const void* p, size_t size);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* LODE_TESTING_H */
