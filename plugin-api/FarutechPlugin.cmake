# farutech_add_plugin(<target> <product_code> SOURCES <files...>)
#
# Builds <product_code>.so as a loadable module the way the host expects: C11, hidden
# visibility, only ftp_plugin_entry exported (version script), no undefined symbols beyond
# libc, and output into ${FARUTECH_PLUGIN_OUTPUT_DIR} (default: ${CMAKE_BINARY_DIR}/products).
get_filename_component(_ftp_dir "${CMAKE_CURRENT_LIST_FILE}" DIRECTORY)
set(_FARUTECH_PLUGIN_API_DIR "${_ftp_dir}" CACHE INTERNAL "where FarutechPlugin.cmake lives")

function(farutech_add_plugin target product)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${product}
    C_STANDARD 11
    C_STANDARD_REQUIRED ON
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY "${FARUTECH_PLUGIN_OUTPUT_DIR}")
  if(NOT FARUTECH_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/products")
  endif()
  # the source tree keeps the header beside this file; an installed tree in <prefix>/include
  if(EXISTS "${_FARUTECH_PLUGIN_API_DIR}/include/farutech/plugin.h")
    target_include_directories(${target} PRIVATE "${_FARUTECH_PLUGIN_API_DIR}/include")
  else()
    get_filename_component(_ftp_prefix "${_FARUTECH_PLUGIN_API_DIR}/../../.." ABSOLUTE)
    target_include_directories(${target} PRIVATE "${_ftp_prefix}/include")
  endif()
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
