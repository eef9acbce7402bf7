/* What an OS page holds (os.c, _lode_os_page_states): the pagemap tells a
 * page never written (or discarded) from one in memory, where mincore says
 * only "not in memory".  The LODE_SECURE wipe leaves the first kind alone
 * instead of discarding it.  The descriptor lode keeps must not be trusted
 * blindly: a program may close it and get the number back for another file
 * (lode then neither reads nor closes that file), and a fork's child must
 * read its own pages, not its parent's. */
#include "internal.h"
#include "test.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PAGES = 8 };
#define PS LODE_OS_PAGE_SIZE

static bool have_pagemap;

static uint8_t* fresh_pages(void) {
  void* m = mmap(NULL, PAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(m != MAP_FAILED);
  return m == MAP_FAILED ? NULL : m;
}

static unsigned char state_of(const uint8_t* page) {
  unsigned char v = 0xff;
  CHECK(_lode_os_page_states(page, PS, &v));
  return v;
}

static void states_of_fresh_memory(void) {
  uint8_t* m = fresh_pages();
  if (m == NULL) return;
  m[1 * PS] = 1;
  m[3 * PS + 100] = 1;
  unsigned char vec[PAGES];
  have_pagemap = _lode_os_page_states(m, PAGES * PS, vec);
  CHECK_EQ(have_pagemap, _lode_os_pagemap_fd() >= 0);
  if (!have_pagemap) {
    printf("note: no /proc/self/pagemap here: the wipe discards every page out of memory\n");
    munmap(m, PAGES * PS);
    return;
  }
  for (int i = 0; i < PAGES; i++) CHECK_EQ(vec[i], i == 1 || i == 3 ? LODE_PAGE_PRESENT : LODE_PAGE_ABSENT);
  CHECK_EQ(madvise(m + PS, PS, MADV_DONTNEED), 0);
  CHECK_EQ(state_of(m + PS), LODE_PAGE_ABSENT);
  CHECK_EQ(state_of(m + 3 * PS), LODE_PAGE_PRESENT);
  munmap(m, PAGES * PS);
}

/* The program closes lode's descriptor and its number comes back as
 * /dev/zero: read blindly, every page would read as holding nothing. */
static void closed_descriptor_is_not_used(void) {
  if (!have_pagemap) return;
  uint8_t* m = fresh_pages();
  if (m == NULL) return;
  m[0] = 1;
  CHECK_EQ(state_of(m), LODE_PAGE_PRESENT);
  int fd = _lode_os_pagemap_fd();
  CHECK(fd >= 0);
  int zero = open("/dev/zero", O_RDONLY);
  CHECK(zero >= 0);
  CHECK_EQ(dup2(zero, fd), fd); /* closes lode's, the number is /dev/zero's now */
  close(zero);
  struct stat before, after;
  CHECK_EQ(fstat(fd, &before), 0);
  CHECK_EQ(state_of(m), LODE_PAGE_PRESENT);
  CHECK_EQ(state_of(m + PS), LODE_PAGE_ABSENT);
  /* closed outright: a fresh one is opened, and errno is the caller's (a
   * LODE_SECURE free asks here, and free leaves errno alone) */
  int mine = _lode_os_pagemap_fd();
  CHECK(mine >= 0);
  CHECK_EQ(close(mine), 0);
  errno = EDOM;
  CHECK_EQ(state_of(m), LODE_PAGE_PRESENT);
  CHECK_EQ(errno, EDOM);
  /* the program's file is still open, under its number */
  CHECK_EQ(fstat(fd, &after), 0);
  CHECK(after.st_ino == before.st_ino && after.st_dev == before.st_dev);
  CHECK(_lode_os_pagemap_fd() != fd);
  close(fd);
  munmap(m, PAGES * PS);
}

/* The child discards a page its parent keeps: a descriptor inherited from
 * the parent would still see it in memory. */
static void fork_child_reads_its_own_pages(void) {
  if (!have_pagemap) return;
  uint8_t* m = fresh_pages();
  if (m == NULL) return;
  memset(m, 1, 2 * PS);
  CHECK_EQ(state_of(m), LODE_PAGE_PRESENT); /* the parent's descriptor is open */
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int bad = 0;
    if (madvise(m, PS, MADV_DONTNEED) != 0) bad |= 1;
    unsigned char vec[2] = {0xff, 0xff};
    if (!_lode_os_page_states(m, 2 * PS, vec)) bad |= 2;
    if (vec[0] != LODE_PAGE_ABSENT) bad |= 4;
    if (vec[1] != LODE_PAGE_PRESENT) bad |= 8;
    _exit(bad);
  }
  int status = 0;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  CHECK_EQ(state_of(m), LODE_PAGE_PRESENT);
  munmap(m, PAGES * PS);
}

/* The same in a child made without the fork handlers (a raw fork, as
 * _Fork or a clone makes one): lode must see the process is another. */
static void raw_fork_child_reads_its_own_pages(void) {
  if (!have_pagemap) return;
  uint8_t* m = fresh_pages();
  if (m == NULL) return;
  memset(m, 1, PS);
  CHECK_EQ(state_of(m), LODE_PAGE_PRESENT); /* the parent's descriptor is open */
  CHECK_EQ(state_of(m + PS), LODE_PAGE_ABSENT);
  pid_t pid = (pid_t)syscall(SYS_fork);
  CHECK(pid >= 0);
  if (pid == 0) {
    int bad = 0;
    m[PS] = 1; /* written in the child only */
    unsigned char vec[2] = {0xff, 0xff};
    if (!_lode_os_page_states(m, 2 * PS, vec)) bad |= 2;
    if (vec[1] != LODE_PAGE_PRESENT) bad |= 4;
    _exit(bad);
  }
  int status = 0;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  CHECK_EQ(state_of(m + PS), LODE_PAGE_ABSENT);
  munmap(m, PAGES * PS);
}

int main(void) {
  lode_free(lode_malloc(16)); /* lode's process init: its fork handler */
  RUN(states_of_fresh_memory);
  RUN(closed_descriptor_is_not_used);
  RUN(fork_child_reads_its_own_pages);
  RUN(raw_fork_child_reads_its_own_pages);
  return test_done();
}
