# -DFASTSYNC_SANITIZE=ON: ASan + UBSan for everything built here. UBSan stays
# recoverable so a suppression file can silence third-party headers
# (tests/ubsan.supp); run with UBSAN_OPTIONS=halt_on_error=1 to make the rest fatal.
# -DFASTSYNC_TSAN=ON: ThreadSanitizer.
if(FASTSYNC_SANITIZE AND FASTSYNC_TSAN)
  message(FATAL_ERROR "FASTSYNC_SANITIZE and FASTSYNC_TSAN cannot be combined")
endif()
if(FASTSYNC_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(FASTSYNC_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
