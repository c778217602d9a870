//! Reading a seed from a file or text, and checking it the way the simulator will: apart from
//! [`super::seed`] (plain data) because checking means building the [`super::state::World`].

use std::path::Path;

use super::seed::{Seed, SeedError};

impl Seed {
    /// Reads a YAML or JSON seed file (JSON is chosen by a `.json` extension) and validates it.
    pub fn from_file(path: &Path) -> Result<Seed, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            Self::from_json_str(&text)
        } else {
            Self::from_yaml_str(&text)
        }
    }

    /// Parses and validates a YAML seed (JSON is valid YAML too).
    pub fn from_yaml_str(text: &str) -> Result<Seed, SeedError> {
        let seed: Seed =
            serde_saphyr::from_str(text).map_err(|e| SeedError::Parse(e.to_string()))?;
        seed.validate()?;
        Ok(seed)
    }

    /// Parses and validates a JSON seed.
    pub fn from_json_str(text: &str) -> Result<Seed, SeedError> {
        let seed: Seed = serde_json::from_str(text).map_err(|e| SeedError::Parse(e.to_string()))?;
        seed.validate()?;
        Ok(seed)
    }

    /// The demo tenant shipped as `examples/tenant.yaml`, compiled in.
    pub fn demo() -> Seed {
        // The file is part of the crate and a unit test proves it loads; an empty seed beats a
        // panic should that ever regress.
        Self::from_yaml_str(super::DEMO_SEED_YAML).unwrap_or_default()
    }

    /// Checks cross-references (installations name known users, apps and versions), uniqueness of
    /// ids, certificates that parse — everything [`super::SimServer::start`] would refuse.
    pub fn validate(&self) -> Result<(), SeedError> {
        self.faults
            .validate()
            .map_err(|e| SeedError::Invalid(format!("faults: {e}")))?;
        super::state::World::from_seed(self).map(|_| ())
    }
}
