//! The tracing subscriber: installed once, here, for the daemon. Libraries only emit events.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat, LogLevel};

/// crius's own crates log at the configured level; dependencies (h2, hyper, tower) only warnings,
/// so that `debug` shows crius's decisions rather than HTTP/2 frames.
const CRIUS_CRATES: &[&str] = &[
    "crius",
    "crius_server",
    "crius_runtime",
    "crius_cni",
    "crius_image_store",
];

pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let level = match config.level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let directives = std::iter::once("warn".to_string())
        .chain(CRIUS_CRATES.iter().map(|krate| format!("{krate}={level}")))
        .collect::<Vec<_>>()
        .join(",");
    let filter = EnvFilter::try_new(directives).context("log filter")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("install log subscriber: {e}"))
}
