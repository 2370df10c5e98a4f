//! End-to-end tests live in `e2e/`: they run the real `invhost` binary against the real plugin
//! libraries. Run them with `cargo xtask test`, which builds the libraries first.
