//! CRI messages from the leaf crates' plain values, and back.

#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "CreateContainer is its caller, not wired yet: remove this when it is"
    )
)]
pub mod container;
pub mod image;
pub mod sandbox;
