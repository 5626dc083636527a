# -DFASTSYNC_SANITIZE=ON: ASan + UBSan for everything built here. UBSan stays
# recoverable so a suppression file can silence third-party headers
# (tests/ubsan.supp); run with UBSAN_OPTIONS=halt_on_error=1 to make the rest fatal.
# -DFASTSYNC_TSAN=ON: ThreadSanitizer.
#
# CI builds these trees with clang at -O1 and line tables only (.ci/sanitize):
# the same checks as GCC's at a third of its compile time. clang 14's
# -fsanitize=function (a check GCC does not have) cannot compile our coroutines
# ("Cannot represent a difference across sections"), so it is left out there.
if(FASTSYNC_SANITIZE AND FASTSYNC_TSAN)
  message(FATAL_ERROR "FASTSYNC_SANITIZE and FASTSYNC_TSAN cannot be combined")
endif()
if(FASTSYNC_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  add_compile_definitions(FASTSYNC_ASAN)  # tests that measure memory or CPU skip those checks (GCC and clang alike)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    add_compile_options(-fno-sanitize=function)
  endif()
endif()
if(FASTSYNC_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
  add_compile_definitions(FASTSYNC_TSAN_BUILD)
endif()
