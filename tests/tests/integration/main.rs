mod alerts;
mod auth;
mod bad_input;
mod browser;
mod config;
mod e2e;
mod overload;
mod storage;
