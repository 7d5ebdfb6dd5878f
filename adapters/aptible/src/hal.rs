//! HAL pieces (spec §2.2): `_links` maps of relation to absolute href.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// The `_links` of a resource: relation name → absolute href (spec §2.2: hrefs include the API
/// root and are followed as given). A relation that is absent, `null`, or has an empty/null
/// href is simply not present here (the dashboard tolerates both forms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links(BTreeMap<String, String>);

impl Links {
    /// The href of relation `rel`, if present and non-empty.
    #[must_use]
    pub fn href(&self, rel: &str) -> Option<&str> {
        self.0.get(rel).map(String::as_str)
    }

    /// Every relation with an href.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Links built from pairs (tests, fixtures).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

impl<'de> Deserialize<'de> for Links {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw =
            Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
        Ok(Self(
            raw.into_iter()
                .filter_map(|(rel, v)| {
                    let href = v.get("href")?.as_str()?;
                    (!href.is_empty()).then(|| (rel, href.to_owned()))
                })
                .collect(),
        ))
    }
}

/// The last path segment of an href as a number (the dashboard's `extractIdFromLink`, spec
/// §2.2), e.g. `https://api.aptible.com/accounts/42` → `42`.
#[must_use]
pub fn id_from_href(href: &str) -> Option<u64> {
    let path = href.split(['?', '#']).next()?;
    path.trim_end_matches('/').rsplit('/').next()?.parse().ok()
}

/// Deserialize an id that may come as a number or a string (spec §3.9: portal connection ids
/// are strings in one spec version).
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or a number, found {}",
            kind_of(&other)
        ))),
    }
}

/// As [`string_or_number`], for an optional (nullable) field.
pub(crate) fn opt_string_or_number<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string or a number, found {}",
            kind_of(&other)
        ))),
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_tolerate_null_and_empty() {
        let l: Links = serde_json::from_value(serde_json::json!({
            "self": {"href": "https://api/x/1"},
            "empty": {"href": ""},
            "null_href": {"href": null},
            "null": null
        }))
        .unwrap();
        assert_eq!(l.href("self"), Some("https://api/x/1"));
        assert_eq!(l.href("empty"), None);
        assert_eq!(l.href("null_href"), None);
        assert_eq!(l.href("null"), None);
        let none: Links = serde_json::from_value(serde_json::Value::Null).unwrap();
        assert_eq!(none.iter().count(), 0);
    }

    #[test]
    fn ids_from_hrefs() {
        assert_eq!(
            id_from_href("https://api.aptible.com/accounts/42"),
            Some(42)
        );
        assert_eq!(id_from_href("https://api/databases/100/"), Some(100));
        assert_eq!(
            id_from_href("https://api/databases/100?with_deleted=true"),
            Some(100)
        );
        assert_eq!(id_from_href("https://api/databases"), None);
    }
}
