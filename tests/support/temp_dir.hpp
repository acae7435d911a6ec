// A fresh directory under the system's temporary directory, removed with everything in it when the
// object goes out of scope. Names are unique per process and per object, so that tests running in
// parallel (ctest -j) and several temp_dirs in one test never collide.
#pragma once
#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>

#include <unistd.h>

namespace graft_test {
struct temp_dir {
  std::filesystem::path path;
  explicit temp_dir(const std::string& prefix = "graft_test") {
    static unsigned counter = 0;
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = std::filesystem::temp_directory_path() /
           (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(stamp) + "_" +
            std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};
}  // namespace graft_test
