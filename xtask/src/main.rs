//! Workspace automation: `cargo xtask experiments`, `cargo xtask bench`, `cargo xtask ci`.
fn main() {}
