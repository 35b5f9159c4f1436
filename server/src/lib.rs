//! crius-server: the `crius` daemon.
//!
//! The only crate that composes the others: it loads the configuration, serves the CRI
//! `RuntimeService` and `ImageService` over gRPC on a unix socket, and turns each leaf crate's
//! plain values and errors into CRI messages and gRPC codes.

mod blocking;
pub mod cli;
pub mod config;
mod containers;
mod convert;
mod creations;
pub mod daemon;
mod image_service;
pub mod logging;
mod network;
mod pods;
mod runtime_service;
mod socket;
mod status;
mod streaming;
