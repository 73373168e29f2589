//! Tests of the anomaly labels.
