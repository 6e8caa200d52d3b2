//! The helpers of this test binary: the workspace's one test kit.

pub use coffee_testkit::*;
