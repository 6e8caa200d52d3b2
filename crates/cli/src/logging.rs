//! Installs the process's one tracing subscriber from [`Log`]: the filter, text or JSON lines
//! on stderr, and, in a build with the `otlp` feature, trace export to an OpenTelemetry
//! collector.

use tracing_subscriber::{EnvFilter, Layer, Registry, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::Log;

/// Flushes exported spans when dropped (at the end of `main`).
pub struct Guard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("OTLP export did not flush: {e}");
        }
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

pub fn init(log: &Log) -> anyhow::Result<Guard> {
    let filter = || EnvFilter::try_new(&log.filter).map_err(|e| anyhow::anyhow!("COFFEE_RT_LOG {:?}: {e}", log.filter));
    let output: BoxedLayer = if log.format == "json" {
        Box::new(tracing_subscriber::fmt::layer().json().with_current_span(true).with_span_list(false).with_writer(std::io::stderr))
    } else {
        Box::new(
            tracing_subscriber::fmt::layer().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_writer(std::io::stderr),
        )
    };
    let (export, guard) = otlp(log.otlp_endpoint.as_deref())?;
    // Each layer with its own copy of the filter: a filter on the pair would hide spans from the
    // exporter that the output layer has no interest in.
    let mut layers: Vec<BoxedLayer> = vec![output.with_filter(filter()?).boxed()];
    if let Some(export) = export {
        layers.push(export.with_filter(filter()?).boxed());
    }
    tracing_subscriber::registry().with(layers).init();
    Ok(guard)
}

#[cfg(feature = "otlp")]
fn otlp(endpoint: Option<&str>) -> anyhow::Result<(Option<BoxedLayer>, Guard)> {
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};

    let Some(endpoint) = endpoint else { return Ok((None, Guard { provider: None })) };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(5))
        .with_headers(Default::default())
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name("coffee-rt").build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let layer: BoxedLayer = Box::new(tracing_opentelemetry::layer().with_tracer(provider.tracer("coffee-rt")));
    Ok((Some(layer), Guard { provider: Some(provider) }))
}

#[cfg(not(feature = "otlp"))]
fn otlp(endpoint: Option<&str>) -> anyhow::Result<(Option<BoxedLayer>, Guard)> {
    anyhow::ensure!(endpoint.is_none(), "COFFEE_RT_OTLP_ENDPOINT is set, but this coffee-rt was built without the `otlp` feature");
    Ok((None, Guard {}))
}
