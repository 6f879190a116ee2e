//! A policy's configuration (`spec.policies[].config`), read the same way in the module and in
//! native tests.

/// Deserialises a configuration; the error names the field that is wrong (`tenants.acme[0]`),
/// not a line and column of JSON the author never wrote (the host re-serialises the YAML).
pub fn from_json<C: serde::de::DeserializeOwned>(json: &[u8]) -> Result<C, String> {
    let mut de = serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde_json ends its messages with the position in the re-serialised text.
        let inner = inner
            .rsplit_once(" at line ")
            .map_or(inner.as_str(), |(m, _)| m);
        if path == "." {
            format!("invalid config: {inner}")
        } else {
            format!("invalid config at `{path}`: {inner}")
        }
    })
}
