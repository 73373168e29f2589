//! Tests of the features.
