# farutech_add_plugin(<target> <product_code> SOURCES <files...>)
#
# Builds <product_code>.so as a loadable module the way the host expects: C11, hidden
# visibility, only ftp_plugin_entry exported (version script), no undefined symbols beyond
# libc, compiled against Farutech::plugin (the ABI header), and output into
# ${FARUTECH_PLUGIN_OUTPUT_DIR} (default: the project's build directory). find_package(FarutechPlugin)
# defines Farutech::plugin and includes this file; ftp.map lies beside it.
get_filename_component(_ftp_dir "${CMAKE_CURRENT_LIST_FILE}" DIRECTORY)
set(_FARUTECH_PLUGIN_API_DIR "${_ftp_dir}" CACHE INTERNAL "where FarutechPlugin.cmake and ftp.map live")

function(farutech_add_plugin target product)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  set(out "${FARUTECH_PLUGIN_OUTPUT_DIR}")
  if(NOT out)
    set(out "${PROJECT_BINARY_DIR}")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${product}
    C_STANDARD 11
    C_STANDARD_REQUIRED ON
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY "${out}")
  target_link_libraries(${target} PRIVATE Farutech::plugin)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-unused-parameter)
  # In the farutech tree, plugins get the same sanitizer build as the host.
  if(TARGET ft_build_flags)
    target_link_libraries(${target} PRIVATE ft_build_flags)
  endif()
  target_link_options(${target} PRIVATE "-Wl,--version-script=${_FARUTECH_PLUGIN_API_DIR}/ftp.map")
  # clang links its sanitizer runtime into the executable only: a sanitized module leaves
  # __asan_* undefined until dlopen resolves them against the host.
  if(NOT (FT_SANITIZE AND CMAKE_C_COMPILER_ID MATCHES "Clang"))
    target_link_options(${target} PRIVATE "-Wl,-z,defs")
  endif()
endfunction()
