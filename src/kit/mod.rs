//! Kits: sources (`kit.toml` and folders), the manifest, archive paths, the deterministic builder
//! and the strict streaming reader. This module does not decide trust; see [`crate::trust`].

pub mod builder;
pub mod config;
pub mod layout;
pub mod manifest;
pub mod path;
pub mod reader;
pub mod source;
pub mod stream;
pub mod tar;

pub use config::KitConfig;
pub use path::KitPath;
