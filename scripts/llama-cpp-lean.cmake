# Included by CMake right after llama.cpp's own project() call while pip builds llama-cpp-python
# (the Makefile passes it as CMAKE_PROJECT_llama.cpp_INCLUDE in CMAKE_ARGS).
#
# llama-cpp-python forces LLAMA_BUILD_COMMON on (a cache variable set with FORCE, so -D cannot
# turn it off), and llama.cpp then builds `llama-common` and cpp-httplib: its command-line tools'
# library (argument parsing, chat templates, downloads, an HTTP client). The Python bindings never
# load it: they load libllama and libggml. Measured on 2 cores (ninja's log of one build): it was
# 482 of the build's 903 CPU-seconds. A normal variable shadows the cache one, so llama.cpp's
# `if (LLAMA_BUILD_COMMON)` skips it.
set(LLAMA_BUILD_COMMON OFF)
