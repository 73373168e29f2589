//! Integration tests of the breaker through its public API: one binary, one module per topic.

mod model;
mod threads;
mod tidy;
