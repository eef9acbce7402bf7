/* A C program (no C++ runtime of its own) that loads a C++ plugin. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc != 2) return fprintf(stderr, "usage: cxx-host PLUGIN.so\n"), 2;
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return fprintf(stderr, "cxx-host: %s\n", dlerror()), 1;
  int (*run)(void) = (int (*)(void))dlsym(h, "plugin_run");
  if (run == NULL) return fprintf(stderr, "cxx-host: no plugin_run\n"), 1;
  int rc = run();
  printf("cxx-host: plugin_run %s\n", rc == 0 ? "caught std::bad_alloc after one handler call" : "FAILED");
  return rc;
}
