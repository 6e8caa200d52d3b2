//! The workspace's binaries, for tests that run them as child processes.

use std::path::PathBuf;

/// The path of binary `name` (e.g. `coffee-rt`) in the target directory the running test was
/// built into. Cargo builds a package's own binaries before its integration tests; another
/// package's need `cargo build --workspace --bins` first, as `scripts/test` does.
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("test binary in target/<profile>/deps");
    let bin = dir.join(name);
    assert!(bin.exists(), "{} is not built: run `cargo build --workspace --bins` (scripts/test does)", bin.display());
    bin
}
