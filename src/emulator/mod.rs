//! The built-in Personalize: a local, wire-compatible Amazon Personalize (control plane, runtime, events).

pub mod engine;
