//! `kit.toml` parsing and checking (`offkit::build::config::KitConfig::parse`).
//!
//! Oracles: no panic; every refusal displays; what parses reads back through its own accessors
//! (each `[destructive]` declaration is again a `module/name` key of a valid module and
//! migration name; every configured module has a schema).
#![no_main]

use libfuzzer_sys::fuzz_target;
use offkit::build::config::KitConfig;
use offkit::kit::migration_name::MigrationName;
use offkit::kit::names::Identifier;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match KitConfig::parse(text, "kit.toml") {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for module in config.configured_modules() {
        let _ = config.schema_of(module);
    }
    for (key, reason) in config.declarations() {
        let (module, name) = key.split_once('/').expect("module/name");
        assert!(Identifier::new(module).is_ok(), "{key}");
        assert!(MigrationName::parse(name).is_ok(), "{key}");
        assert!(!reason.is_empty());
    }
});
