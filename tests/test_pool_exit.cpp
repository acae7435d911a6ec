// The thread pool (kernels/parallel.hpp) lets the program exit whenever a worker starts: a worker
// that the OS schedules only after the pool's destructor has signalled stop used to read that
// signal as its starting point and wait for the next one forever, so the process hung at exit
// (found by test_attention_threads, about one run in two). Each child process here starts the pool
// (its worker thread is created by the first split) and exits at once; all must end within a
// few seconds. Plain main(): the test is about process exit.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <graft/kernels/parallel.hpp>

namespace gp = graft::parallel;

int main() {
  constexpr int children = 40;
  int hung = 0, failed = 0;
  for (int c = 0; c < children; ++c) {
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      return 2;
    }
    if (pid == 0) {
      gp::set_threads(2);
      volatile std::size_t sink = 0;
      gp::for_range(1000, 1, [&](std::size_t b, std::size_t e) { sink = sink + (e - b); });
      std::exit(sink == 1000 ? 0 : 3);  // static destructors run: the pool's too
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    int status = 0;
    for (;;) {
      const pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
        break;
      }
      if (std::chrono::steady_clock::now() > until) {
        ++hung;
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  std::printf("pool exit: %d of %d processes hung at exit, %d failed\n", hung, children, failed);
  return hung == 0 && failed == 0 ? 0 : 1;
}
