mod auth;
mod bad_input;
mod browser;
mod e2e;
mod storage;
