//! The helpers of this test binary: the workspace's one test kit.

pub use coffee_testkit::{TestApp, TestEnv, ws::*};

/// A world of its own running the API, the v2 worker and the v1 aggregator, optionally with
/// the catalog in a TOML file.
pub async fn spawn(catalog: Option<&std::path::Path>) -> TestApp {
    let env = TestEnv::new();
    TestApp::up(match catalog {
        Some(path) => env.with_catalog(path),
        None => env,
    })
    .await
}
