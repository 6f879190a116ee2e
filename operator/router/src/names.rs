//! What the spec accepts as a name, a header, a model glob or a URL: the syntax checks that
//! validation applies field by field.

/// `^[a-z0-9][a-z0-9-]{0,62}$`
pub fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A DNS-1123 subdomain (what Kubernetes allows as a Secret or ConfigMap name): dot-separated
/// labels of lowercase alphanumerics and `-`, each starting and ending alphanumeric, at most
/// 253 bytes. No `/`, no `..`: safe as one path component.
pub fn is_dns_subdomain(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && alnum(b[0])
                && alnum(b[b.len() - 1])
                && b.iter().all(|&c| alnum(c) || c == b'-')
        })
}

/// An RFC 9110 token (what HTTP allows as a header name).
pub fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Model globs support `*` (any run, including `/`) and `?` (one character); everything else
/// is literal. Brackets, braces and backslashes are refused so that a pattern means the same
/// thing to every evaluator (the reference one and the compiled WASM one).
pub fn check_model_glob(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if pattern.len() > 256 {
        return Err("is longer than 256 bytes".to_owned());
    }
    match pattern
        .chars()
        .find(|c| matches!(c, '[' | ']' | '{' | '}' | '\\'))
    {
        Some(ch) => Err(format!(
            "{pattern:?} uses {ch:?}; model globs support only '*' and '?'"
        )),
        None => Ok(()),
    }
}

/// An `http://` or `https://` URL with a host and no user info or whitespace.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') || rest.contains(char::is_whitespace) {
        return Err(format!("{url:?} is not a valid URL with a host"));
    }
    Ok(())
}
