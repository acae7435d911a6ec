// What the host generators (train_export.cpp, finetune_export.cpp) share: floats as exact
// hexadecimal literals, and a file written whole or not at all.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

namespace embedded {
/// Appends n floats as hex-float literals ("0x1.8p+1f,"), eight per line.
inline void put_floats(std::string& out, const float* v, std::size_t n) {
  char buf[64];
  for (std::size_t k = 0; k < n; ++k) {
    if (k % 8 == 0) out += "\n      ";
    std::snprintf(buf, sizeof buf, "%af,", static_cast<double>(v[k]));
    out += buf;
  }
}
/// Writes text to path through a temporary file and a rename; exits with a message naming the
/// program and the file on failure.
inline void write_file(const std::string& path, const std::string& text, const char* program) {
  const std::string tmp = path + ".part";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr || std::fwrite(text.data(), 1, text.size(), f) != text.size() ||
      std::fclose(f) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "%s: cannot write %s\n", program, path.c_str());
    std::exit(1);
  }
}
}  // namespace embedded
