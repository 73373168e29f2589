//! The adaptive engine: learns each breaker's normal behaviour from its history and proposes
//! thresholds with the evidence for them.

pub mod anomaly;
pub mod defaults;
pub mod features;
pub mod history;
pub mod replay;
pub mod scenario;
