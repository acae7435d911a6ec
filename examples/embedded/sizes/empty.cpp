// The baseline of tools/sizes.sh: the same libc, flags and printf as the size programs, no graft.
#include <cstdio>

int main(int argc, char**) {
  std::printf("class %d\n", argc);
  return 0;
}
