//! creditd: prepaid credits and Stripe billing for AI apps.

pub mod admin;
pub mod app;
pub mod bench;
pub mod billing;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod key_cache;
pub mod operator;
pub mod ops;
pub mod outbound;
pub mod pages;
pub mod tokens;
