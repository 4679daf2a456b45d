# Sourced by the scripts: puts the project's own tools first on PATH.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# wasm-opt for release builds comes from the npm package binaryen (version
# 132); Debian's is too old for today's Rust WASM output.
export PATH="$root/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
