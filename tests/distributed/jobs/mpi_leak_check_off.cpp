// Linked into the programs that run as MPI ranks when built with AddressSanitizer (tests/CMakeLists):
// Open MPI's dlopen'ed components leak small strings and are unloaded before LeakSanitizer can
// name them, so no suppression can aim at them; leak checking is off in these processes only.
// ASan's other checks stay on, and ASAN_OPTIONS from the environment still overrides this.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
