//! Cold pulls of a 5-layer image of about 80 MiB compressed (half random, half text) from a
//! loopback registry: crius against containerd 1.6 from Debian, in the same run, each pull into
//! a fresh root so every run is cold. Only the PullImage call is timed.
//!
//! Run: `cargo build --release --bins && cargo bench -p crius-conformance --bench image_pull`
//! (`BENCH_RUNS` sets the number of runs, 5 by default).

#![allow(clippy::print_stdout)] // the report on stdout is this program's output

use std::time::{Duration, Instant};

use anyhow::Context;
use crius_conformance::bench::{count_from_env, report};
use crius_conformance::client::CriClient;
use crius_conformance::containerd::Containerd;
use crius_conformance::daemon::Crius;
use crius_conformance::image::bulky_image;
use crius_conformance::registry::TestRegistry;
use k8s_cri::v1 as cri;

const LAYERS: usize = 5;
const RANDOM_BYTES_PER_LAYER: usize = 8 * 1024 * 1024;
const TEXT_BYTES_PER_LAYER: usize = 32 * 1024 * 1024;

async fn timed_pull(client: &mut CriClient, image: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    client
        .image
        .pull_image(cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .context("PullImage")?;
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs = count_from_env("BENCH_RUNS", 5);
    let registry = TestRegistry::start().await?;
    let image = bulky_image(LAYERS, RANDOM_BYTES_PER_LAYER, TEXT_BYTES_PER_LAYER)?;
    let compressed: usize = image.layers.iter().map(|l| l.bytes.len()).sum();
    registry.push("bench/bulky", "1", &image).await?;
    let name = format!("{}/bench/bulky:1", registry.host());
    println!(
        "image: {LAYERS} layers, {:.1} MiB compressed, {} runs",
        compressed as f64 / (1024.0 * 1024.0),
        runs
    );

    let registries_dir = tempfile::tempdir()?;
    let registries_conf = registries_dir.path().join("registries.conf");
    std::fs::write(
        &registries_conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            registry.host()
        ),
    )?;
    let conf_arg = format!("--registries-conf={}", registries_conf.display());

    let mut crius_times = Vec::new();
    let mut containerd_times = Vec::new();
    for run in 0..runs {
        // Alternate who goes first, so neither always meets a warmer page cache.
        for crius_turn in [run % 2 == 0, run % 2 != 0] {
            if crius_turn {
                let crius =
                    Crius::start_configured("[log]\nlevel = \"warn\"\n", &[conf_arg.as_str()])
                        .await?;
                let mut client = crius.client().await?;
                crius_times.push(timed_pull(&mut client, &name).await?);
            } else {
                let containerd = Containerd::start(&registry.host(), None).await?;
                let mut client = containerd.client().await?;
                containerd_times.push(timed_pull(&mut client, &name).await?);
            }
        }
    }
    let report = report(
        "cold PullImage",
        &crius_times,
        "containerd",
        &containerd_times,
    );
    print!("{report}");
    Ok(())
}
