# Warnings and code-generation flags every native target of Kiln shares.
function(kiln_target_defaults target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:C,CXX>:-Wall -Wextra -Wno-unused-parameter>
    # Bit-exact verification replays kernels on one element: the compiler must not fuse a*b+c
    # differently in the vector loop and in the replay.
    $<$<COMPILE_LANGUAGE:C,CXX>:-ffp-contract=off>)
  set_target_properties(${target} PROPERTIES C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden
                                             VISIBILITY_INLINES_HIDDEN ON)
endfunction()
