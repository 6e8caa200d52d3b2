//! SIGTERM and Ctrl-C become one cancellation token, as in the product's roles: `serve` and
//! `eager` drain and exit 0, the bench cleans up its topics and scratch database.

use tokio_util::sync::CancellationToken;

/// Must be called inside the runtime. Once installed, the signals no longer end the process
/// by themselves: whoever holds the token has to stop.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}
