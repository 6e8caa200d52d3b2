//! Puts the git revision into `coffee-rt --version` and `coffee_rt_build_info`: from
//! `COFFEE_RT_REVISION` when set (an image built without `.git`), else `git rev-parse`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=COFFEE_RT_REVISION");
    // The checkout's HEAD and the ref it points at; a commit or a checkout rebuilds.
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
    let revision = std::env::var("COFFEE_RT_REVISION").ok().filter(|r| !r.is_empty()).unwrap_or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into())
    });
    println!("cargo:rustc-env=COFFEE_RT_REVISION={revision}");
}
