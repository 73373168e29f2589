//! Tuning: recommendations from the engine over a breaker's history, auto mode, the engine's
//! runs on blocking threads, and `fusebox tune`.

pub mod autotune;
pub mod engine_run;
pub mod recommend;
pub mod tune;
