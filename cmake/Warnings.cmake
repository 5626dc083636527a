# Warnings for our own targets: fastsync_warnings(<target>)
function(fastsync_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor
                                           -Wno-missing-field-initializers)
endfunction()
