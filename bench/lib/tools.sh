# What a benchmark script needs before it starts. Source it, then
#   bench_tools CMD...   installs the missing ones (each Debian package is named as its command)
#   bench_berth [BIN]    sets B to BIN, made absolute, or else builds release berth and uses it
bench_tools() {
  local c need=()
  for c in "$@"; do command -v "$c" >/dev/null || need+=("$c"); done
  [ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
}

bench_berth() {
  if [ -n "${1:-}" ]; then
    B=$(realpath "$1")
  else
    cargo build --release -q
    B=$PWD/target/release/berth
  fi
}
