# Sourced by dev.sh and test.sh: fail early, with the fix, when RocksDB's build prerequisites are missing.
if ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 && [ -z "${LIBCLANG_PATH:-}" ]; then
  echo "error: libclang not found (RocksDB's bindings need it): sudo apt-get install libclang-dev g++" >&2
  echo "       (or set LIBCLANG_PATH to the directory holding libclang.so)" >&2
  exit 1
fi
if ! command -v c++ >/dev/null && ! command -v g++ >/dev/null; then
  echo "error: no C++ compiler (RocksDB is C++): sudo apt-get install g++" >&2
  exit 1
fi
