//! What the café sells and where. Orders naming anything else are rejected.

use std::path::Path;

use serde::Deserialize;

/// The drinks and stores an order may name. Loaded from a TOML file
/// (`drinks = [...]`, `stores = [...]`) or the built-in café's defaults (the ones the design papers use).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub drinks: Vec<String>,
    pub stores: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("reading catalog {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("parsing catalog {path}: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("catalog {0}: needs at least one drink and one store")]
    Empty(String),
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            drinks: ["cappuccino", "americano", "latte"].map(String::from).to_vec(),
            stores: ["uptown", "downtown", "central", "southend"].map(String::from).to_vec(),
        }
    }
}

impl Catalog {
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog = toml::from_str(text).map_err(|source| CatalogError::Parse { path: origin.to_owned(), source })?;
        if catalog.drinks.is_empty() || catalog.stores.is_empty() {
            return Err(CatalogError::Empty(origin.to_owned()));
        }
        Ok(catalog)
    }

    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io { path: origin.clone(), source })?;
        Self::from_toml_str(&text, &origin)
    }

    pub fn has_drink(&self, drink: &str) -> bool {
        self.drinks.iter().any(|d| d == drink)
    }

    pub fn has_store(&self, store: &str) -> bool {
        self.stores.iter().any(|s| s == store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_custom_catalog() {
        let c = Catalog::from_toml_str("drinks = [\"mocha\"]\nstores = [\"pier\"]\n", "t").unwrap();
        assert!(c.has_drink("mocha") && !c.has_drink("latte") && c.has_store("pier"));
    }

    #[test]
    fn rejects_empty_or_unknown_keys() {
        assert!(Catalog::from_toml_str("drinks = []\nstores = [\"a\"]", "t").is_err());
        assert!(Catalog::from_toml_str("drinks = [\"a\"]\nstores = [\"a\"]\nfoo = 1", "t").is_err());
    }
}
