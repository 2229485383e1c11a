//! SPDX 2.3 documents. offkit writes one per kit (`sboms/kit.spdx.json`) listing every payload
//! file; shipped SBOMs are carried as they are. Reading third-party SBOMs is not this module's job.

pub mod spdx;
