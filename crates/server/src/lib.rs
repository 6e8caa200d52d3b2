//! The HTTP side of coffee-rt. [`Application::build`] is shared by `main` and the tests.

mod app;
mod config;
pub mod dashboard;
pub mod edge;
mod error;
mod routes;
mod state;
pub mod telemetry;

pub use app::Application;
pub use config::ServerConfig;
pub use edge::Token;
pub use state::{AppState, Services};
