//! Kits: sources (`kit.toml` and folders), the manifest, archive paths, the deterministic builder
//! and the strict streaming reader. This module does not decide trust; see [`crate::trust`].

pub mod config;
pub mod path;

pub use config::KitConfig;
pub use path::KitPath;
