//! Shared harness for the integration tests: `mod support;` at the top of a test file.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod aws;
pub mod cloud;
pub mod daemon;
pub mod emulator;
pub mod html_errors;
pub mod moto;
pub mod process;
pub mod reconcile;
pub mod relay;
pub mod wait;
