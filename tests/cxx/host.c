/* A C program (no C++ runtime of its own) that loads a C++ plugin, runs it,
 * unloads it, and does it again: what lode found of the plugin's runtime
 * the first time must still be good the second. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc != 2) return fprintf(stderr, "usage: cxx-host PLUGIN.so\n"), 2;
  /* nothing has failed yet: lode's own lookups leave no error behind */
  const char* pending = dlerror();
  if (pending != NULL) return fprintf(stderr, "cxx-host: a dlerror() pending at main: %s\n", pending), 1;
  for (int round = 1; round <= 2; round++) {
    void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) return fprintf(stderr, "cxx-host: %s\n", dlerror()), 1;
    int (*run)(void) = (int (*)(void))dlsym(h, "plugin_run");
    if (run == NULL) return fprintf(stderr, "cxx-host: no plugin_run\n"), 1;
    int rc = run();
    if (rc != 0) return fprintf(stderr, "cxx-host: round %d: plugin_run FAILED (%d, see plugin.cpp)\n", round, rc), 1;
    dlclose(h);
  }
  printf("cxx-host: twice, new threw std::bad_alloc and nothrow new returned NULL, each after one handler call\n");
  return 0;
}
