// fastsync: mirror an OpenShift release into a private registry.
#include <signal.h>

#include <cstdio>
#include <exception>

#include "cli/mirror_command.h"
#include "cli/options.h"
#include "cli/signals.h"

int main(int argc, char** argv) {
  // Before any thread exists, so only the watcher thread receives SIGINT/SIGTERM.
  fastsync::cli::SignalWatcher::block_signals();
  // A pipe whose reader is gone (gpg run by GPGME, a closed stdout) fails that
  // write; it must not kill the run, as GPGME's manual asks of its callers.
  signal(SIGPIPE, SIG_IGN);
  try {
    auto parsed = fastsync::cli::parse_command_line(argc, argv);
    if (!parsed.options) {
      std::fputs((parsed.exit_code == 0 ? parsed.text : "fastsync: error: " + parsed.text + "\n").c_str(),
                 parsed.exit_code == 0 ? stdout : stderr);
      return parsed.exit_code;
    }
    return fastsync::cli::run_mirror_command(*parsed.options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fastsync: internal error: %s\n", e.what());
    return 70;
  }
}
